"""edgesmith.runtime.Model on real .tflite files: ours (built with TF) and third-party ones."""

import numpy as np
import pytest

from edgesmith.runtime import InputError, Model, ModelLoadError, UnsupportedOpError
from tests.assets import real_tflite


def test_float_model_matches_keras(tflite_models):
    model = Model(tflite_models["float"], threads=1)
    x = tflite_models["samples"][:5]
    expected = tflite_models["keras"].predict(x, verbose=0)
    np.testing.assert_allclose(model.predict(x), expected, atol=1e-5)
    assert model.backend == "ai_edge_litert"


def test_int8_model_takes_floats_and_returns_floats(tflite_models):
    model = Model(tflite_models["int8"])
    spec = model.inputs[0]
    assert spec.dtype == np.int8 and spec.quantized
    x = tflite_models["samples"][:8]
    probabilities = model.predict(x)
    assert probabilities.dtype == np.float32
    expected = tflite_models["keras"].predict(x, verbose=0)
    # an int8 softmax output is quantized in steps of 1/256
    assert np.abs(probabilities - expected).max() < 0.05
    assert (probabilities.argmax(1) == expected.argmax(1)).mean() >= 0.75


def test_int8_quantization_uses_tensor_scale_and_zero_point(tflite_models):
    model = Model(tflite_models["int8"])
    spec = model.inputs[0]
    value = np.full((1, 16, 16, 3), 0.5, np.float32)
    model.set_inputs([value])
    stored = model._interpreter.get_tensor(spec.index)  # what the interpreter really received
    assert stored.dtype == np.int8
    assert int(stored.flat[0]) == int(np.clip(round(0.5 / spec.scale) + spec.zero_point, -128, 127))


def test_batches_of_any_size(tflite_models):
    model = Model(tflite_models["float"])
    x = tflite_models["samples"][:7]
    batched = model.predict(x)
    one_by_one = np.concatenate([model.predict(x[i : i + 1]) for i in range(7)])
    assert batched.shape == (7, 4)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-6)


def test_several_inputs_and_outputs_by_name_and_order(tflite_models):
    model = Model(tflite_models["two_io"])
    assert len(model.inputs) == 2 and len(model.outputs) == 2
    a = np.ones((3, 5), np.float32)
    b = np.zeros((3, 3), np.float32)
    by_spec_order = [a if spec.shape[-1] == 5 else b for spec in model.inputs]
    by_name = {spec.name: array for spec, array in zip(model.inputs, by_spec_order)}
    listed = model.predict(by_spec_order)
    named = model.predict(by_name, as_dict=True)
    assert [o.shape for o in listed] == [tuple([3] + list(s.shape[1:])) for s in model.outputs]
    for spec, value in zip(model.outputs, listed):
        np.testing.assert_array_equal(named[spec.name], value)


def test_wrong_shape_names_the_expected_one(tflite_models):
    model = Model(tflite_models["float"])
    with pytest.raises(InputError, match=r"expected shape \[\?,16,16,3\].*got \[1, 8, 8, 3\]"):
        model.predict(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(InputError, match="expected numbers"):
        model.predict(np.array([["a"]]))


def test_wrong_input_count_and_names(tflite_models):
    model = Model(tflite_models["two_io"])
    with pytest.raises(InputError, match="takes 2 inputs"):
        model.predict(np.zeros((1, 5), np.float32))
    with pytest.raises(InputError, match="input names must be"):
        model.predict({"nope": np.zeros((1, 5), np.float32)})


def test_info_lists_tensors_ops_size(tflite_models):
    info = Model(tflite_models["int8"]).info()
    assert info["inputs"][0]["dtype"] == "int8"
    assert info["inputs"][0]["quantization"]["scale"] > 0
    assert info["ops"]["CONV_2D"] == 1 and "DELEGATE" not in info["ops"]
    assert info["size_bytes"] == tflite_models["int8"].stat().st_size
    assert info["metadata"] is None


def test_third_party_int8_wakeword_model():
    model = Model(real_tflite("okay_nabu"))
    spec = model.inputs[0]
    assert spec.shape == (1, 3, 40) and spec.dtype == np.int8
    out = model.predict(np.zeros((1, 3, 40), np.float32))
    assert out.dtype == np.float32 and out.shape == (1, 1)
    assert 0.0 <= float(out[0, 0]) <= 1.0  # a dequantized uint8 probability


def test_dynamic_input_shape_is_resized_on_use():
    model = Model(real_tflite("melspectrogram"))
    assert model.inputs[0].shape_signature == (-1, -1)
    short = model.predict(np.zeros((1, 1280), np.float32))
    longer = model.predict(np.zeros((1, 2560), np.float32))
    assert short.shape == (1, 1, 5, 32) and longer.shape == (1, 1, 13, 32)  # frames follow the input length


def test_custom_op_is_named():
    with pytest.raises(UnsupportedOpError, match="Landmarks2TransformMatrix"):
        Model(real_tflite("face_landmark_with_attention"))


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        (b"\x00\x01", "too short"),
        (np.random.default_rng(1).bytes(4096), "not a TFLite flatbuffer"),
        (b"PK\x03\x04" + bytes(60), "zip archive .*Keras"),
        (b"\x89HDF\r\n\x1a\n" + bytes(60), "HDF5"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / "model.tflite"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=message) as error:
        Model(path)
    assert "\n" not in str(error.value)


def test_truncated_tflite_is_rejected(tmp_path, tflite_models):
    data = tflite_models["float"].read_bytes()
    path = tmp_path / "truncated.tflite"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="could not load"):
        Model(path)


def test_tflite_runtime_preference_order():
    from edgesmith.runtime.model import BACKENDS, interpreter_class

    assert BACKENDS == ("ai_edge_litert", "tflite_runtime", "tensorflow")
    assert interpreter_class("auto")[1] == "ai_edge_litert"
    assert interpreter_class("tensorflow")[1] == "tensorflow"
    with pytest.raises(InputError, match="unknown backend"):
        interpreter_class("onnx")
