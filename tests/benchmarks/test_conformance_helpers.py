"""The conformance benchmark's pure helpers (benchmarks/conformance.py), without training or converting anything:
plateau training's stopping rule, the interleaved latency pass, the ratio columns, the cells a walk-back or an
unresolved verdict produced, the targets' counts, and ``--collect`` over cells written earlier."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def conformance(load_benchmark):
    return load_benchmark("conformance")


def verified(raw, drop, status="verified", **more):
    return {"status": status, "error": None, "tflite_bytes": raw, "tflite_gzip_bytes": raw // 2,
            "accuracy_drop_pt": drop, "top1_agreement": 0.99, "budget_pt": 1.0, "seconds": 12.0, **more}


def test_training_stops_at_the_plateau_and_keeps_the_best_epoch(conformance):
    scores, restored = iter([0.5, 0.8, 0.7, 0.79, 0.6, 0.95]), []
    fit = conformance.train_to_plateau(lambda: None, lambda: next(scores), lambda: "weights", restored.append,
                                       max_epochs=30, patience=3)
    assert fit == {"epochs_run": 5, "best_epoch": 2, "val_accuracy": 0.8, "stopped": "plateau"}
    assert restored == ["weights"]
    rising = iter(range(10))
    capped = conformance.train_to_plateau(lambda: None, lambda: next(rising), lambda: 0, lambda kept: None, 4, 3)
    assert capped["stopped"] == "max epochs" and capped["epochs_run"] == capped["best_epoch"] == 4


def test_cached_sources_are_keyed_on_how_they_were_trained(conformance):
    plateau, fixed = conformance.SourceTraining(30), conformance.SourceTraining(5, patience=0)
    assert plateau.key() != fixed.key() == "e5"  # the names the fixed-epoch caches always had
    assert "." not in plateau.key()  # Path.with_suffix would cut the key at a "."
    old_record = {"accuracy": 0.9, "train_seconds": 10}
    assert conformance.same_training(old_record, fixed) and not conformance.same_training(old_record, plateau)
    record = {"training": {**plateau.settings(), "epochs_run": 9}}
    assert conformance.same_training(record, plateau)
    assert not conformance.same_training(record, conformance.SourceTraining(30, patience=5))


def test_latency_rounds_interleave_every_file(conformance):
    order = []
    rounds = conformance.interleaved_p50({"int8-ptq": "a", "fast-int8": "b", "fp16": "c"},
                                         lambda path: order.append(path) or 1.0, rounds=3)
    assert order == list("abc" "bca" "cab") and all(len(values) == 3 for values in rounds.values())


def test_cells_show_the_walk_back_and_an_unresolved_verdict(conformance):
    walked = verified(300 * 1024, 0.4, walk_back={"chosen": "int8-qat", "steps": []})
    assert conformance.cell_text(walked).startswith("300 KiB (150 gz) / +0.4 pt")
    assert "walked back to int8-qat" in conformance.cell_text(walked)
    assert "unresolved" in conformance.cell_text(verified(1024, 0.9, verdict="unresolved"))
    plain = conformance.cell_text(verified(2048, 0.2))
    assert "(" in plain and "walked" not in plain and "missed" not in plain


def test_ratios_and_targets_are_computed_from_the_row(conformance):
    rows = {
        "A": {"source": None, "cells": {"int8-ptq": verified(1000, 0.1, p50_ms=2.0),
                                        "max-compression": verified(500, 0.5, p50_ms=1.9),
                                        "fast-int8": verified(900, 1.2, p50_ms=1.4)}},
        "B": {"source": None, "cells": {"int8-ptq": verified(1000, 0.1, p50_ms=2.0),
                                        "max-compression": verified(500, 3.0, "budget missed"),
                                        "raw-size-int4": verified(400, 0.9, p50_ms=2.2),
                                        "fast-int8": verified(900, 1.6, p50_ms=1.0)}},
    }
    assert conformance.ratio(rows["A"], "max-compression", "tflite_bytes") == 0.5
    summary = conformance.targets_summary(rows)
    assert summary["size"]["met"] == {"A": ("max-compression", 0.5, 0.5), "B": ("raw-size-int4", 0.9, 0.4)}
    assert summary["speed"]["met"] == {"A": ("fast-int8", 1.2, 0.7)}
    # B x fast-int8 (+1.6 pt) misses the 1.5 pt target; both fast-int8 cells exceed the 1.0 pt budget given here
    assert summary["over budget with exit 0"] == ["A x fast-int8", "B x fast-int8"]
    table = conformance.cells_table(rows, ["int8-ptq", "max-compression", "fast-int8"])
    assert "| A | max-compression | verified | 0 | 0 | +0.5 (1) | 99.0 | 0.50x | 1.900 | 0.95x | 12 |" in table


def test_collect_merges_cells_written_earlier_and_measures_latency_once(conformance, tmp_path, monkeypatch):
    import edgesmith.runtime.bench as bench

    row = tmp_path / "kws-conv1d"
    for recipe in ("int8-ptq", "fast-int8"):
        (row / recipe).mkdir(parents=True)
        (row / recipe / "model.tflite").write_bytes(b"x" * 10)
    entries = [{"recipe": None, "cell": {"accuracy": 0.9}},
               {"recipe": "int8-ptq", "cell": verified(10, 0.0)}, {"recipe": "fast-int8", "cell": verified(10, 0.3)}]
    (row / "cells.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    timed = []
    monkeypatch.setattr(bench, "benchmark", lambda path, **options: timed.append((path, options)) or
                        {"summary": {"latency_ms": {"p50": 3.0 if "int8-ptq" in str(path) else 1.5}}})
    argv = ["--collect", "--models", "kws-conv1d", "--recipes", "int8-ptq,fast-int8", "--out", str(tmp_path),
            "--bench-rounds", "2", "--bench-runs", "7"]
    result = conformance.main(argv)
    cells = result["matrix"]["kws-conv1d"]["cells"]
    assert cells["fast-int8"]["p50_ms"] == 1.5 and conformance.ratio(result["matrix"]["kws-conv1d"], "fast-int8",
                                                                      "p50_ms") == 0.5
    assert len(timed) == 4 and all(options["energy"] == "none" and options["runs"] == 7 for _, options in timed)
    conformance.main(argv)  # the same files: latency.json is reused, nothing timed again
    assert len(timed) == 4


def test_a_reports_walk_back_reaches_the_cell(conformance, tmp_path):
    from edgesmith.runtime.report_schema import ConversionReport, Verification

    checked = Verification(samples=300, tflite_accuracy=0.9, keras_accuracy=0.9, top1_agreement=0.98,
                           accuracy_drop_pt=0.7)
    report = ConversionReport(recipe={"name": "max-compression", "max_accuracy_drop": 1.0}, verification=checked,
                              source_accuracy=0.907, tflite_path=str(tmp_path / "model.tflite"), tflite_bytes=2048,
                              tflite_gzip_bytes=1024)
    numbers = conformance.report_numbers(report, tmp_path)
    assert "walk_back" not in numbers and numbers["budget_pt"] == 1.0 and numbers["tflite_gzip_bytes"] == 1024
    steps = [{"recipe": "max-compression", "verdict": "over", "accuracy_drop_pt": 3.0, "tflite_bytes": 1500}]
    (tmp_path / "report.json").write_text(json.dumps({"walk_back": {"steps": steps, "chosen": "int8-qat"}}))
    walked = {"status": "verified", **conformance.report_numbers(report, tmp_path)}
    assert walked["walk_back"]["chosen"] == "int8-qat"
    assert conformance.cell_text(walked).endswith("(walked back to int8-qat)")


def multi_output_cell(**more):
    """A cell of a model whose outputs were scored one by one (no single accuracy drop)."""
    outputs = [{"name": "digit", "metric": "accuracy", "source_score": 0.98, "tflite_score": 0.976, "change": -0.004,
                "budget": 1.0, "verdict": "holds", "snr_db": 30.0, "top1_agreement": 0.99},
               {"name": "centre", "metric": "mse", "source_score": 0.002, "tflite_score": 0.0021, "change": 0.0001,
                "budget": 10.0, "verdict": "holds", "snr_db": 25.0, "top1_agreement": None}]
    return verified(4096, None, top1_agreement=None, outputs=outputs, **more)


def test_cells_of_several_outputs_show_each_outputs_metric_change_and_verdict(conformance):
    cell = multi_output_cell()
    assert conformance.cell_text(cell) == "4 KiB (2 gz) / digit accuracy +0.4 pt, centre mse +5 %"
    assert conformance.output_text(cell["outputs"][0]) == ("digit: accuracy 0.98 -> 0.976 (worse by 0.4 pt; "
                                                           "budget 1 pt): holds")
    rows = {"M": {"source": {"scores": {"digit accuracy": 0.98, "mse": 0.002}}, "cells": {"int8-ptq": cell}}}
    table = conformance.outputs_table(rows, ["int8-ptq"])
    assert "| M | int8-ptq | verified | 4,096 | digit | accuracy | 0.98 | 0.976 | -0.004 | +0.4 (1 pt) | holds | 12 |" \
        in table
    assert "| centre | mse | 0.002 | 0.0021 | +0.0001 | +5 (10 %) | holds |" in table
    assert "digit accuracy +0.4 pt, centre mse +5 %" in conformance.cells_table(rows, ["int8-ptq"])
    assert conformance.source_score_text(rows["M"]["source"]) == "digit 98.0 % / mse 0.002"
    assert not conformance.delivered(cell)  # not counted against the single-drop targets


def test_report_numbers_carry_each_outputs_check(conformance, tmp_path):
    from edgesmith.runtime.report_schema import ConversionReport, OutputCheck, Verification

    checked = Verification(samples=100, tflite_accuracy=None, outputs=[
        OutputCheck("mask", [32, 32, 3], 24.0, 0.99, metric="miou", source_score=0.81, tflite_score=0.805,
                    change=-0.005, budget=1.0, verdict="holds")])
    report = ConversionReport(recipe={"name": "int8-ptq", "max_accuracy_drop": 1.0}, verification=checked,
                              source_accuracy=None, tflite_path=str(tmp_path / "model.tflite"), tflite_bytes=2048)
    (output,) = conformance.report_numbers(report, tmp_path)["outputs"]
    assert output == {"name": "mask", "shape": [32, 32, 3], "metric": "miou", "source_score": 0.81,
                      "tflite_score": 0.805, "change": -0.005, "budget": 1.0, "verdict": "holds", "snr_db": 24.0,
                      "top1_agreement": None}


def test_datasets_for_several_outputs_segmentation_anomalies_and_keypoints(conformance):
    rng = np.random.default_rng(0)
    digits = np.zeros((40, 28, 28), np.uint8)
    digits[:, 10:18, 12:16] = 255  # a bar: its centre of mass is the middle of the bar
    labels = np.arange(40) % 10
    kinds = conformance.dataset_arrays({"train": (digits, labels, 20), "test": (digits + rng.integers(0, 2, digits.shape,
                                                                                                   dtype=np.uint8),
                                                                                labels, 10)})
    two = kinds["two-heads"]
    assert list(two["y_train_parity"]) == list(two["y_train_digit"] % 2) and "y_train" not in two
    anomaly = kinds["anomaly"]
    assert anomaly["x_train"].shape == (20, 28, 28, 1) and not anomaly["y_train"].any()
    assert list(anomaly["y_test"]) == [0] * 5 + [1] * 5
    segmentation = kinds["segmentation"]
    assert segmentation["y_train"].shape == (20, 32, 32) and set(np.unique(segmentation["y_train"])) == {0, 1, 2}
    stroke = segmentation["y_train"] > 0
    assert ((segmentation["y_train"][stroke] == 2) == np.repeat(labels[:20] >= 5, 32 * 32).reshape(20, 32, 32)[
        stroke]).all()
    points = kinds["keypoints"]
    assert points["x_train"].shape == (20, 32, 32, 3) and points["y_train"].shape == (20, 2)
    for image, (x, y) in zip(points["x_train"][..., 0], points["y_train"]):
        rows, columns = np.nonzero(image > 128)
        assert abs(x * 32 - (columns.mean() + 0.5)) < 1.0 and abs(y * 32 - (rows.mean() + 0.5)) < 1.0
