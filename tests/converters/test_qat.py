"""QAT on Keras 3: a true int8 .tflite that matches the QAT Keras model."""

import dataclasses
import logging

import keras
import numpy as np
import pytest

from edgesmith.converters import record_of
from edgesmith.converters.export import export
from edgesmith.converters.ptq import ptq
from edgesmith.converters.qat import qat
from edgesmith.converters.verify import verify
from edgesmith.runtime import Model


@pytest.fixture(scope="module")
def quantized(residual_cnn, digits):
    return qat(residual_cnn, digits, epochs=2)


def every_sample(data):
    """The data with all 1,797 digits as the evaluation set.

    This test measures conversion fidelity (QAT Keras model vs its .tflite), not generalization, and
    the 359 validation digits alone make one flipped near-tie worth 0.28 pt: the int8 softmax's
    1/256 output steps can tie two classes the float softmax keeps apart.
    """
    return dataclasses.replace(data, x_val=np.concatenate([data.x_train, data.x_val]),
                               y_val=np.concatenate([data.y_train, data.y_val]))


def test_int8_tflite_matches_the_qat_model_within_0_3_pt(quantized, digits, tmp_path):
    path = export(ptq(quantized, digits, mode="int8"), digits, tmp_path / "qat.tflite")
    result = verify(path, every_sample(digits), keras_model=quantized)
    assert result["samples"] == 1797
    assert abs(result["keras_accuracy"] - result["tflite_accuracy"]) <= 0.003
    assert result["top1_agreement"] >= 0.99
    ops = Model(path).op_histogram()
    assert ops.get("CONV_2D", 0) >= 2 and ops.get("DEPTHWISE_CONV_2D", 0) == 1  # separable conv split
    assert "QUANTIZE" in ops and "DEQUANTIZE" in ops  # float I/O around an int8 graph


def test_batchnorm_is_folded_and_no_layer_stays_float(quantized):
    details = record_of(quantized).details
    assert len(details["folded_batchnorm"]) == 2
    assert details["float_layers"] == []
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in quantized.layers)


def test_sequential_with_logits(sequential_mlp, digits, tmp_path):
    quantized = qat(sequential_mlp, digits, epochs=1)
    path = export(ptq(quantized, digits, mode="int8"), digits, tmp_path / "mlp.tflite")
    result = verify(path, every_sample(digits), keras_model=quantized)
    assert result["tflite_accuracy"] > 0.85
    assert abs(result["keras_accuracy"] - result["tflite_accuracy"]) <= 0.003


def test_unknown_layers_stay_float_with_a_warning(digits, caplog):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = keras.layers.LayerNormalization()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    with caplog.at_level(logging.WARNING, logger="edgesmith.converters.qat"):
        quantized = qat(model, digits, epochs=1)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "qat: left in float (edgesmith cannot quantize these layers): layer_normalization"]
    assert record_of(quantized).details["float_layers"] == ["layer_normalization"]
    assert np.isfinite(quantized.predict(digits.x_val[:4], verbose=0)).all()
