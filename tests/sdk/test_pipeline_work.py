"""Each piece of work is done once: an int8-qat run converts three times (QAT's dry run, the float32 baseline,
the int8 graph), scores each model once on the evaluation split, and builds QAT's graph once."""

from __future__ import annotations

import collections
import importlib
import os

import pytest

from tests.converters.trained import digits, residual_cnn


@pytest.mark.slow
def test_int8_qat_converts_three_times_and_scores_each_model_once(tmp_path, monkeypatch):
    from tensorflow.lite.python import lite

    qat = importlib.import_module("edgesmith.converters.qat")  # the modules: the package's names are the passes
    verify = importlib.import_module("edgesmith.converters.verify")
    from edgesmith.pipeline import convert

    conversions, depth = [], [0]

    def counting(original):
        def convert_graph(self, *args, **kwargs):  # a conversion calls its bases' convert: count the outermost
            if depth[0] == 0:
                conversions.append(type(self).__name__)
            depth[0] += 1
            try:
                return original(self, *args, **kwargs)
            finally:
                depth[0] -= 1
        return convert_graph

    for cls in [getattr(lite, name) for name in dir(lite)]:
        if isinstance(cls, type) and "convert" in vars(cls) and cls.__name__.startswith("TFLite"):
            monkeypatch.setattr(cls, "convert", counting(vars(cls)["convert"]))
    data = digits()
    scored = collections.Counter()
    original_classes = verify.predicted_classes

    def counted_classes(model, samples, batch_size=None):
        if samples is data.x_val:
            scored[str(model) if isinstance(model, (str, os.PathLike)) else id(model)] += 1
        return original_classes(model, samples, batch_size)

    monkeypatch.setattr(verify, "predicted_classes", counted_classes)
    prepared = []
    original_prepare = qat.prepared_qat
    monkeypatch.setattr(qat, "prepared_qat", lambda *a, **k: prepared.append(1) or original_prepare(*a, **k))

    report = convert(residual_cnn(), "int8-qat", data, tmp_path)
    assert len(conversions) == 3, conversions
    keras_scores = [count for key, count in scored.items() if not isinstance(key, str)]
    assert sorted(keras_scores) == [1, 1], scored  # the source, and the QAT model (by the verification)
    assert len(prepared) == 1
    assert [stage.accuracy is not None for stage in report.stages] == [True, True, True]
    assert report.stages[1].accuracy == report.verification.keras_accuracy
