"""Tiny trained models for the optimize tests (imported by the other test_optimize*/sensitivity/mixed
precision tests), and a check that the "outlier" model really breaks under all-int8 quantization."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

pytestmark = pytest.mark.slow  # trains models

REPO = Path(__file__).resolve().parents[2]


def digits():
    from edgesmith.data import load_data

    return load_data("builtin:digits")


def tiny_model(data, outlier: bool = False, epochs: int = 6):
    """conv1 -> conv2 -> fc1 -> head, trained a few seconds on builtin:digits.

    With ``outlier=True`` one unit of fc1 gets a huge constant output that the head ignores: harmless in
    float, but its per-tensor int8 range (about 4 per step) rounds every other fc1 unit away; 16-bit
    activations (about 0.03 per step) keep them.
    """
    import keras

    keras.utils.set_random_seed(0)
    layers = keras.layers
    inputs = keras.Input(data.sample_shape)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.Dense(32, activation="relu", name="fc1")(layers.Flatten()(x))
    model = keras.Model(inputs, layers.Dense(10, activation="softmax", name="head")(x), name="tiny")
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=32, verbose=0)
    if outlier:
        kernel, bias = model.get_layer("fc1").get_weights()
        kernel[:, 0], bias[0] = 0.0, 1e3
        model.get_layer("fc1").set_weights([kernel, bias])
        head_kernel, head_bias = model.get_layer("head").get_weights()
        head_kernel[0, :] = 0.0
        model.get_layer("head").set_weights([head_kernel, head_bias])
    return model


def saved(model, folder: Path) -> Path:
    path = folder / f"{model.name}.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def data():
    return digits()


def test_outlier_model_needs_16_bit_activations_after_fc1(data):
    from edgesmith.converters.verify import accuracy
    from edgesmith.optimize import mixed_precision

    model = tiny_model(data, outlier=True)
    reference = accuracy(model, data)
    all_int8 = accuracy(mixed_precision(model, data).content, data)
    wide = {"fc1": "int16x8", "head": "int16x8"}  # fc1's output is int16, and so is the head's input
    fc1_int16 = accuracy(mixed_precision(model, data, precisions=wide).content, data)
    assert reference > 0.9
    assert reference - all_int8 > 0.02  # int8 rounds the useful fc1 units away: more than 2 points lost
    assert reference - fc1_int16 < 0.01  # 16-bit activations keep them
