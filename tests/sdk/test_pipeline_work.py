"""Each piece of work is done once: an int8-qat run converts three times (QAT's dry run, the float32 baseline,
the int8 graph), scores each model once on the evaluation split, and builds QAT's graph once."""

from __future__ import annotations

import collections
import importlib.util
import os
from pathlib import Path

import pytest

from tests.converters.trained import digits, residual_cnn

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def counting_conversions(patch):
    """benchmarks/qat_wall_time.py's conversion counter (the benchmark counts its runs with it)."""
    spec = importlib.util.spec_from_file_location("qat_wall_time", BENCHMARKS / "qat_wall_time.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.counting_conversions(patch)


@pytest.mark.slow
def test_int8_qat_converts_three_times_and_scores_each_model_once(tmp_path, monkeypatch):
    qat = importlib.import_module("edgesmith.converters.qat")  # the modules: the package's names are the passes
    verify = importlib.import_module("edgesmith.converters.verify")
    from edgesmith.pipeline import convert

    conversions = counting_conversions(monkeypatch.setattr)
    data = digits()
    scored = collections.Counter()
    original_outputs = verify.model_outputs

    def counted_outputs(model, samples, batch_size=None):
        if samples is data.x_val:
            scored[str(model) if isinstance(model, (str, os.PathLike)) else id(model)] += 1
        return original_outputs(model, samples, batch_size)

    monkeypatch.setattr(verify, "model_outputs", counted_outputs)
    prepared = []
    original_prepare = qat.prepared_qat
    monkeypatch.setattr(qat, "prepared_qat", lambda *a, **k: prepared.append(1) or original_prepare(*a, **k))

    report = convert(residual_cnn(), "int8-qat", data, tmp_path, walk_back=False)  # the recipe's own work
    assert len(conversions) == 3, conversions
    keras_scores = [count for key, count in scored.items() if not isinstance(key, str)]
    assert sorted(keras_scores) == [1, 1], scored  # the source, and the QAT model (by the verification)
    assert len(prepared) == 1
    assert [stage.accuracy is not None for stage in report.stages] == [True, True, True]
    assert report.stages[1].accuracy == report.verification.keras_accuracy
