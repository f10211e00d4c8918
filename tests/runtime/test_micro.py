"""TFLite Micro from Python: outputs, the arena measured two ways, and one-line refusals naming the op."""

from pathlib import Path

import numpy as np
import pytest

from edgesmith.runtime.errors import ModelLoadError, UnsupportedOpError
from edgesmith.runtime.micro import MicroModel, fd2_captured, parse_allocations, smallest_arena
from edgesmith.runtime.model import Model
from tests.assets import real_tflite

pytest.importorskip("tflite_micro")


def test_an_int8_model_computes_what_litert_computes(tflite_models):
    micro, litert = MicroModel(tflite_models["int8"]), Model(tflite_models["int8"])
    samples = tflite_models["samples"][:8]
    assert micro.inputs[0]["dtype"] == "int8" and micro.inputs[0]["scale"] > 0
    # LiteRT's default (optimized) kernels may round 1 LSB differently: within one output step
    step = litert.outputs[0].scale
    np.testing.assert_allclose(micro.predict(samples), litert.predict(samples), atol=step + 1e-7)


def test_the_recorded_arena_is_the_smallest_that_runs_for_a_plain_model(tflite_models):
    micro = MicroModel(tflite_models["int8"])
    arena = micro.arena
    assert arena["total"] == arena["head"] + arena["tail"]
    assert set(arena["sections"]) >= {"TfLiteEvalTensor data", "Persistent buffer data"}
    assert smallest_arena(micro.data) == arena["total"]
    with pytest.raises(ModelLoadError, match="arena"):
        MicroModel(tflite_models["int8"], arena_size=arena["total"] // 2)


def test_a_streaming_model_needs_more_than_tflm_records():
    # micro-wakeword keeps its state in resource variables: TFLM's record misses some of their buffers, and
    # some arenas that are too small crash TFLM outright (probes run in a child process)
    model = real_tflite("okay_nabu")
    micro = MicroModel(model)
    assert smallest_arena(micro.data) > micro.arena["total"]


@pytest.mark.parametrize("name, message", [
    ("face_detection_full_range_sparse", "TFLite Micro has no kernel for op DENSIFY$"),
    ("face_landmark_with_attention", "no kernel for custom op.*TransformLandmarks"),
    ("face_detection_short_range", "cannot run op DEQUANTIZE \\(node 0\\): input->type == kTfLiteInt8"),
])
def test_what_tflm_cannot_run_is_one_line_naming_the_op(name, message):
    with pytest.raises(UnsupportedOpError, match=message) as error:
        MicroModel(real_tflite(name))
    assert "\n" not in str(error.value)


def test_fd2_is_captured_and_restored():
    import os

    with fd2_captured() as text:
        os.write(2, b"from C\n")
    assert text() == "from C\n"
    assert os.write(2, b"") == 0


def test_allocations_without_a_total_are_an_error():
    with pytest.raises(ModelLoadError):
        parse_allocations("nothing")
