"""Post-training conversion in every mode, export with metadata, and verification through the runtime."""

import numpy as np
import pytest

from edgesmith.converters import record_of
from edgesmith.converters.errors import AccuracyDropError, NoCalibrationDataError, UnknownOptionError
from edgesmith.converters.export import export
from edgesmith.converters.ptq import ptq
from edgesmith.converters.verify import verify
from edgesmith.runtime import Model, read_metadata
from tests.converters.trained import accuracy

pytestmark = pytest.mark.slow  # converts trained models with the TFLite converter


@pytest.mark.parametrize("mode", ["float32", "fp16", "dynamic", "int8", "int16x8"])
def test_every_mode_converts_and_keeps_accuracy(residual_cnn, digits, mode, tmp_path):
    tflite = ptq(residual_cnn, digits, mode=mode)
    path = export(tflite, digits, tmp_path / "m.tflite", recipe={"name": mode})
    result = verify(path, digits, keras_model=residual_cnn)
    assert result.keras_accuracy == pytest.approx(accuracy(residual_cnn))
    assert result.tflite_accuracy >= result.keras_accuracy - 0.02
    assert result.top1_agreement >= 0.97
    assert record_of(tflite).details["mode"] == mode


def test_int8_is_smaller_and_integer(residual_cnn, digits):
    float_size = len(ptq(residual_cnn, digits).content)
    int8 = ptq(residual_cnn, digits, mode="int8", io="int8")
    assert len(int8.content) < 0.7 * float_size  # a tiny model: graph structure is a large share
    assert int8.content[4:8] == b"TFL3"


def test_int8_io_types(residual_cnn, digits, tmp_path):
    for io_type, dtype in (("int8", np.int8), ("uint8", np.uint8)):
        path = export(ptq(residual_cnn, digits, mode="int8", io=io_type), digits, tmp_path / f"{io_type}.tflite")
        model = Model(path)
        assert model.inputs[0].dtype == dtype and model.outputs[0].dtype == dtype
        assert verify(path, digits).tflite_accuracy > 0.8


def test_int8_without_calibration_data_is_refused(residual_cnn):
    with pytest.raises(NoCalibrationDataError, match="calibration data"):
        ptq(residual_cnn, None, mode="int8")


def test_unknown_mode_lists_the_valid_ones(residual_cnn, digits):
    with pytest.raises(UnknownOptionError, match="float32, fp16, dynamic, int8, int16x8"):
        ptq(residual_cnn, digits, mode="int4")


def test_metadata_carries_labels_preprocessing_and_recipe(sequential_mlp, digits, tmp_path):
    path = export(ptq(sequential_mlp, digits, mode="dynamic"), digits, tmp_path / "m.tflite",
                  recipe={"name": "dynamic-int8"}, source_sha256="ab" * 32, metrics={"tflite_accuracy": 0.9})
    metadata = read_metadata(path)
    assert metadata["labels"] == [str(i) for i in range(10)]
    assert metadata["preprocessing"] == {"size": [8, 8], "color": "grayscale", "mean": [0.0], "std": [255.0],
                                         "preset": "unit", "chosen_by": "default"}
    assert metadata["recipe"]["name"] == "dynamic-int8"
    assert metadata["source_sha256"] == "ab" * 32
    assert metadata["data"]["val_samples"] == len(digits.x_val)


def test_verify_fails_on_too_large_a_drop_and_keeps_the_file(sequential_mlp, digits, tmp_path):
    path = export(ptq(sequential_mlp, digits), digits, tmp_path / "m.tflite")
    with pytest.raises(AccuracyDropError, match="max_accuracy_drop"):
        verify(path, digits, keras_model=sequential_mlp, max_accuracy_drop=0.5, reference_accuracy=1.01)
    assert path.is_file()
