"""``edgesmith debug``: per-layer error of a quantized .tflite against its float Keras model.

The fast tests use the session's small classifier and its int8 twin (tests/conftest.py, no training): matching by
name and by shape, the refusals, the CLI and the plot. The slow one trains the "outlier" model of
tests/sdk/test_optimize_models.py and checks that the debugger's worst layer is among the two that
``edgesmith sensitivity`` (the accuracy lost when one layer alone is int8, measured on .tflite files) finds most
sensitive.
"""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import flatbuffers
import numpy as np
import pytest

from edgesmith.cli import main
from edgesmith.converters.debug import debug_quantization, format_debug
from edgesmith.converters.errors import NotFromThisModelError, NotQuantizedError
from edgesmith.runtime.metadata import write_metadata
from edgesmith.runtime.tflite_file import TFLITE_IDENTIFIER, read_model


@pytest.fixture(scope="module")
def classifier(tflite_models):
    samples = tflite_models["samples"]
    return tflite_models["keras"], tflite_models, SimpleNamespace(x_val=samples, x_train=samples)


def test_every_layer_is_matched_by_name_and_measured(classifier):
    model, paths, data = classifier
    report = debug_quantization(model, paths["int8"], data, samples=16)
    rows = {row["layer"]: row for row in report["layers"]}
    assert set(rows) == {layer.name for layer in model.layers[1:]} and report["unmatched"] == []
    assert rows["probs"]["matched_by"] == "output"
    assert all(row["matched_by"] in ("name", "output") for row in rows.values())
    assert all(row["dtype"] == "int8" and row["quantized_range"] is not None for row in rows.values())
    # an int8 model of a float one: small but real error, ranked worst first
    assert all(10 < row["channel_snr_db"] < 100 and row["cosine"] > 0.99 for row in rows.values())
    # ranked by what each layer's own error costs the output: finite, and above what all of them cost together
    ranks = [row["output_snr_db"] for row in report["layers"]]
    assert ranks == sorted(ranks) and [row["rank"] for row in report["layers"]] == [1, 2, 3]
    assert all(rows["probs"]["channel_snr_db"] - 1 < value < 100 for value in ranks)
    text = format_debug(report)
    assert text.splitlines()[0].split()[:3] == ["rank", "layer", "dtype"] and "16 samples" in text


def test_a_file_without_layer_names_is_matched_by_shape_and_order(classifier, tmp_path):
    model, paths, data = classifier
    graph = read_model(paths["int8"].read_bytes())
    for number, tensor in enumerate(graph.subgraphs[0].tensors):
        tensor.name = f"t{number}"
    builder = flatbuffers.Builder(1 << 16)
    builder.Finish(graph.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    anonymous = tmp_path / "anonymous.tflite"
    anonymous.write_bytes(bytes(builder.Output()))
    named = {row["layer"]: row for row in debug_quantization(model, paths["int8"], data, samples=8)["layers"]}
    report = debug_quantization(model, anonymous, data, samples=8)
    rows = {row["layer"]: row for row in report["layers"]}
    assert {row["matched_by"] for row in rows.values()} == {"shape", "output"} and set(rows) == set(named)
    assert all(abs(rows[name]["snr_db"] - named[name]["snr_db"]) < 1e-6 for name in rows)  # the same tensors


def test_refuses_a_float_file_another_models_file_and_another_source(classifier, tmp_path):
    model, paths, data = classifier
    with pytest.raises(NotQuantizedError, match="no quantized tensors"):
        debug_quantization(model, paths["float"], data)
    with pytest.raises(NotFromThisModelError, match="input shapes"):
        debug_quantization(model, paths["two_io"], data)
    stamped = write_metadata(paths["int8"], {"source_sha256": "a" * 64}, output=tmp_path / "stamped.tflite")
    with pytest.raises(NotFromThisModelError, match="another model"):
        debug_quantization(model, stamped, data, source_sha256="b" * 64)
    assert debug_quantization(model, stamped, data, samples=4, source_sha256="a" * 64)["samples"] == 4


def test_cli_prints_the_table_json_and_plot_and_refuses_in_one_line(classifier, tmp_path, capsys):
    model, paths, _ = classifier
    model.save(tmp_path / "classifier.keras")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x=rng.uniform(0, 1, (40, 16, 16, 3)).astype(np.float32), y=rng.integers(0, 4, 40))
    args = [str(tmp_path / "classifier.keras"), str(paths["int8"]), "--data", str(tmp_path / "data.npz"),
            "--samples", "8"]
    main(["debug", *args, "--plot", str(tmp_path / "snr.png")])
    out = capsys.readouterr().out
    assert out.startswith("rank") and "probs" in out and "wrote" in out
    assert (tmp_path / "snr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    main(["debug", *args, "--json"])
    printed = capsys.readouterr().out
    assert json.loads(printed)["samples"] == 8
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "debug.json").write_text(printed)  # `edgesmith report` draws a saved debug run
    main(["report", str(tmp_path / "run"), "-o", str(tmp_path / "report.html")])
    page = (tmp_path / "report.html").read_text()
    assert "Quantization error by layer" in page and "data:image/png;base64," in page and "probs" in page
    assert "output SNR dB" in page  # the column the layers are ranked by
    shutil.copyfile(paths["float"], tmp_path / "float.tflite")
    with pytest.raises(SystemExit) as exit_info:
        main(["debug", str(tmp_path / "classifier.keras"), str(tmp_path / "float.tflite"), "--data",
              str(tmp_path / "data.npz")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "no quantized tensors" in error and len(error.splitlines()) == 1


@pytest.mark.slow  # trains a model and quantizes it once per layer (about 30 s)
def test_worst_layer_agrees_with_measured_keep_float_sensitivity(tmp_path):
    from edgesmith.converters import export, ptq
    from edgesmith.optimize.sensitivity import quantization_sensitivity
    from tests.sdk.test_optimize_models import digits, tiny_model

    data = digits()
    model = tiny_model(data, outlier=True)  # fc1 has one huge unit: its int8 output rounds the others away
    path = export(ptq(model, data, mode="int8"), data, tmp_path / "int8.tflite")
    report = debug_quantization(model, path, data, samples=128)
    measured = quantization_sensitivity(model, data)["layers"]
    # int8 alone: the drop when only that layer is int8 (measured: fc1 4.5 pt, head 5.0 pt, as head's int8 input
    # is fc1's output; conv1, conv2 0). Keeping one layer float among int8 ones gains nothing here (0 or -0.3 pt
    # for every layer): with fc1 float, head's int8 input still rounds fc1's output on the same huge range.
    by_drop = sorted(measured, key=lambda row: -row["int8_alone_drop_pt"])
    top2 = [row["layer"] for row in by_drop[:2]]
    weighted = [row for row in report["layers"] if row["layer"] in {r["layer"] for r in measured}]
    assert weighted[0]["layer"] in top2, (weighted[0]["layer"], by_drop)
    assert set(top2) == {"fc1", "head"} and min(row["int8_alone_drop_pt"] for row in by_drop[:2]) > 2.0
    assert report["layers"][0]["layer"] == "fc1"
    assert report["layers"][0]["channel_snr_db"] < 25 < report["layers"][0]["snr_db"]  # one unit hides the rest
    assert report["layers"][0]["advice"][0].startswith("int16x8")
