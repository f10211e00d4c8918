"""Metadata written into .tflite files: exact round trip, stock LiteRT still loads them,
and other tools' readers (TFLite Support flatbuffer, plain zip) see labels and preprocessing."""

import io
import zipfile

import numpy as np
import pytest

from edgesmith.runtime import Model, read_metadata, write_metadata
from edgesmith.runtime.metadata import embed_metadata, read_support_metadata
from tests.assets import real_tflite

METADATA = {
    "name": "digits",
    "labels": ["zero", "one", "two", "three"],
    "preprocessing": {"size": [16, 16], "color": "rgb", "mean": [127.5, 127.0, 126.5], "std": [58.0, 57.5, 57.0]},
    "recipe": {"name": "int8-ptq", "passes": [{"pass": "ptq", "mode": "int8"}]},
    "metrics": {"keras_accuracy": 0.9731, "tflite_accuracy": 0.9725, "nested": {"x": [1, 2.5, None, True]}},
    "source_sha256": "ab" * 32,
    "unicode": "naïve ✓",
}


def test_round_trip_is_exact_and_model_still_runs(tflite_models, tmp_path):
    target = tmp_path / "with_metadata.tflite"
    write_metadata(tflite_models["float"], METADATA, target)
    stored = read_metadata(target)
    assert {k: stored[k] for k in METADATA} == METADATA
    assert stored["metadata_version"] == 1 and stored["edgesmith_version"]
    x = tflite_models["samples"][:3]
    np.testing.assert_array_equal(Model(target).predict(x), Model(tflite_models["float"]).predict(x))


def test_stock_litert_interpreter_loads_it(tflite_models, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    target = write_metadata(tflite_models["int8"], METADATA, tmp_path / "m.tflite")
    interpreter = Interpreter(model_path=str(target))
    interpreter.allocate_tensors()
    interpreter.invoke()


def test_rewriting_replaces_rather_than_accumulates(tflite_models, tmp_path):
    target = write_metadata(tflite_models["float"], METADATA, tmp_path / "m.tflite")
    size_once = target.stat().st_size
    write_metadata(target, METADATA)
    assert target.stat().st_size == size_once
    write_metadata(target, {"labels": ["a", "b", "c", "d"]})
    assert read_metadata(target)["labels"] == ["a", "b", "c", "d"]
    assert "recipe" not in read_metadata(target)


def test_tflite_support_view_for_other_tools(tflite_models, tmp_path):
    target = write_metadata(tflite_models["float"], METADATA, tmp_path / "m.tflite")
    support = read_support_metadata(target)
    image = support.inputs[0]
    assert image.color_space == "rgb" and image.image_size == (16, 16)
    assert image.mean == pytest.approx(METADATA["preprocessing"]["mean"])
    assert image.std == pytest.approx(METADATA["preprocessing"]["std"])
    assert support.outputs[0].label_files == ["labels.txt"]
    assert len(support.inputs) == 1 and len(support.outputs) == 1


def test_appended_zip_is_readable_by_any_zip_reader(tflite_models, tmp_path):
    target = write_metadata(tflite_models["float"], METADATA, tmp_path / "m.tflite")
    with zipfile.ZipFile(target) as archive:
        assert archive.read("labels.txt").decode().splitlines() == METADATA["labels"]
        assert b'"digits"' in archive.read("edgesmith.json")
        # offsets count from the start of the .tflite, as TFLite Support writes them
        first = archive.infolist()[0]
        data = target.read_bytes()
        assert data[first.header_offset : first.header_offset + 4] == b"PK\x03\x04"


def test_zip_fallback_when_no_schema_is_installed(tflite_models, tmp_path, monkeypatch):
    """On 32-bit ARM only tflite_runtime exists: no flatbuffer schema, the zip still works."""
    target = write_metadata(tflite_models["float"], METADATA, tmp_path / "m.tflite")
    monkeypatch.setattr("edgesmith.runtime.metadata.schema", lambda: None)
    assert read_metadata(target)["labels"] == METADATA["labels"]


def test_third_party_metadata_is_read_and_kept(tmp_path):
    """MediaPipe's own TFLite Support metadata parses, and survives adding ours."""
    source = real_tflite("hand_landmark_lite")
    theirs = read_support_metadata(source)
    assert theirs.name == "HandLandmarkDetector"
    assert theirs.inputs[0].std == pytest.approx([255.0] * 3)
    assert theirs.outputs[0].label_files == ["handedness.txt"]
    target = tmp_path / "hand.tflite"
    target.write_bytes(embed_metadata(source.read_bytes(), {"labels": ["left", "right"]}))
    with zipfile.ZipFile(target) as archive:
        assert {"handedness.txt", "labels.txt", "edgesmith.json"} <= set(archive.namelist())
    assert read_metadata(target)["labels"] == ["left", "right"]
    assert read_metadata(source) is None


def test_no_half_written_file_on_failure(tflite_models, tmp_path):
    target = tmp_path / "m.tflite"
    with pytest.raises(TypeError):
        write_metadata(tflite_models["float"], {"labels": object()}, target)
    assert list(tmp_path.iterdir()) == []
