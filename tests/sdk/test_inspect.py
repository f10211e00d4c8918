"""``edgesmith inspect`` on real third-party .tflite files (MediaPipe, micro-wakeword).

Weight statistics are cross-checked against the values LiteRT's own
interpreter holds for the same tensors, a path independent of our flatbuffer
reading.
"""

import json
import shutil

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from click.testing import CliRunner

from edgesmith.cli import cli
from edgesmith.inspect import inspect_model
from edgesmith.runtime.metadata import write_metadata
from edgesmith.runtime.tflite_file import TFLITE_IDENTIFIER, read_model
from tests.assets import real_tflite


@pytest.fixture(scope="module")
def face():
    return real_tflite("face_detection_short_range")


@pytest.fixture(scope="module")
def wakeword():
    return real_tflite("okay_nabu")


def test_size_split_adds_up_and_weights_dominate_a_conv_net(face):
    size = inspect_model(face, xnnpack=False)["size"]
    assert size["weights_bytes"] + size["graph_bytes"] + size["metadata_bytes"] == size["total_bytes"] == face.stat().st_size
    assert size["weights_bytes"] > 0.8 * size["total_bytes"]


def test_weight_statistics_match_the_interpreters_tensors(face):
    report = inspect_model(face, xnnpack=False)
    interpreter = Interpreter(model_path=str(face))
    by_name = {d["name"]: d["index"] for d in interpreter.get_tensor_details()}
    checked = 0
    for weight in report["weights"]:
        if weight["name"] not in by_name or weight["dtype"] != "float16":
            continue
        values = interpreter.get_tensor(by_name[weight["name"]])
        assert weight["unique_values"] == np.unique(values).size
        assert weight["sparsity"] == pytest.approx(np.mean(values == 0), abs=1e-6)
        assert weight["bytes"] == values.nbytes
        checked += 1
    assert checked >= 20
    assert report["tensors"]["dtypes"]["float16"] == report["ops"]["DEQUANTIZE"]  # fp16 weights, dequantized at load


def test_sparsity_is_measured_after_zeroing_half_a_kernel(face, tmp_path):
    model = read_model(face.read_bytes())
    subgraph = model.subgraphs[0]
    kernel = next(t for t in subgraph.tensors if t.name == b"conv2d/Kernel")
    data = model.buffers[kernel.buffer].data.view(np.float16).copy()
    data[: data.size // 2] = 0
    model.buffers[kernel.buffer].data = data.view(np.uint8)
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    pruned = tmp_path / "pruned.tflite"
    pruned.write_bytes(bytes(builder.Output()))
    stats = {w["name"]: w for w in inspect_model(pruned, xnnpack=False)["weights"]}["conv2d/Kernel"]
    assert stats["sparsity"] == pytest.approx(0.5)


def test_an_int8_model_shows_per_channel_weights_and_an_xnnpack_split(wakeword):
    report = inspect_model(wakeword)
    assert report["inputs"][0]["dtype"] == "int8" and report["inputs"][0]["quantization"] == "per-tensor"
    assert report["quantization"]["weights"]["per-channel"] > 0
    assert max(w["unique_values"] or 0 for w in report["weights"] if w["dtype"] == "int8") <= 256
    xnnpack = report["xnnpack"]
    assert xnnpack["available"] and xnnpack["delegate_nodes"] >= 1
    assert "CONV_2D" in xnnpack["delegated_ops"]
    # the streaming-state ops stay on LiteRT's kernels; every op is counted exactly once
    assert "ASSIGN_VARIABLE" in xnnpack["fallback_ops"]
    assert report["macs"] > 0


def test_a_float_model_is_delegated_whole(face):
    xnnpack = inspect_model(face)["xnnpack"]
    assert xnnpack["fallback_ops"] == {} and xnnpack["delegated_fraction"] == 1.0
    assert sum(xnnpack["delegated_ops"].values()) == sum(inspect_model(face, xnnpack=False)["ops"].values())


def test_edgesmith_metadata_is_shown_and_counted_as_metadata(face, tmp_path):
    tagged = tmp_path / "tagged.tflite"
    shutil.copy(face, tagged)
    write_metadata(tagged, {"labels": ["face"], "metrics": {"tflite_accuracy": 0.9}})
    plain, report = inspect_model(face, xnnpack=False), inspect_model(tagged, xnnpack=False)
    assert report["metadata"]["labels"] == ["face"]
    assert report["size"]["weights_bytes"] == plain["size"]["weights_bytes"]
    assert report["size"]["metadata_bytes"] > 0 and "edgesmith" in report["metadata_entries"]


def test_cli_prints_text_and_json(face):
    runner = CliRunner()
    text = runner.invoke(cli, ["inspect", str(face)])
    assert text.exit_code == 0, text.output
    assert "XNNPACK    100% of ops" in text.output and "MACs" in text.output
    as_json = runner.invoke(cli, ["inspect", str(face), "--json", "--no-xnnpack"])
    assert json.loads(as_json.output)["size"]["total_bytes"] == face.stat().st_size


def test_cli_refuses_a_file_that_is_not_tflite(tmp_path):
    from edgesmith.cli import main

    bogus = tmp_path / "model.tflite"
    bogus.write_text("not a model at all")
    with pytest.raises(SystemExit) as done:
        main(["inspect", str(bogus)])
    assert done.value.code == 2


def test_size_leads_with_raw_bytes_as_stored_then_gzip(face):
    from edgesmith.commands.inspect import format_report
    from edgesmith.runtime.tflite_file import gzipped_size

    report = inspect_model(face, xnnpack=False)
    assert list(report["size"])[0] == "total_bytes" and list(report["size"])[-1] == "gzip_bytes"
    assert report["size"]["gzip_bytes"] == gzipped_size(face.read_bytes()) < report["size"]["total_bytes"]
    line = next(line for line in format_report(report).splitlines() if line.startswith("size"))
    assert line.index("as stored") < line.index("weights") < line.index("gzip")
