"""Shared fixtures: small real .tflite models built with TensorFlow once per session."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest


def _convert(keras_model, quantize_int8: bool = False, samples=None) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if quantize_int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([s[None]] for s in samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


@pytest.fixture(scope="session")
def tflite_models(tmp_path_factory):
    """Paths to: a float image classifier, its full-int8 twin, a two-input two-output model."""
    import keras

    folder = tmp_path_factory.mktemp("tflite_models")
    keras.utils.set_random_seed(0)
    image = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu")(image)
    x = keras.layers.GlobalAveragePooling2D()(x)
    probs = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    classifier = keras.Model(image, probs)
    samples = np.random.default_rng(0).uniform(0, 1, (32, 16, 16, 3)).astype(np.float32)

    a = keras.Input((5,), name="a")
    b = keras.Input((3,), name="b")
    joined = keras.layers.Concatenate()([keras.layers.Dense(4)(a), b])
    two_io = keras.Model([a, b], [keras.layers.Dense(2, name="first")(joined), keras.layers.Dense(6, name="second")(joined)])

    paths = {}
    for name, data in {
        "float": _convert(classifier),
        "int8": _convert(classifier, quantize_int8=True, samples=samples),
        "two_io": _convert(two_io),
    }.items():
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(data)
    paths["keras"] = classifier
    paths["samples"] = samples
    return paths
