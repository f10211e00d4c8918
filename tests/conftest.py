"""Shared fixtures: small real .tflite models built with TensorFlow once per session."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import contextlib
import sys

import numpy as np
import pytest

# The fast tier (`pytest -m "not slow"`, see the README) leaves out every test marked slow: what trains a
# Keras model, converts one with the TFLite converter per test, builds keras.applications models, starts
# sshd, a JVM or a fresh venv, or runs the benchmarks. Whole modules carry `pytestmark = pytest.mark.slow`,
# single tests `@pytest.mark.slow`. Two rules keep the marks current: a test using a session fixture that
# trains (tests/converters/trained.py) is marked slow here, and a test not marked slow that trains a Keras
# model, in its body or in a fixture it sets up, fails and says so.
TRAINING_FIXTURES = {"residual_cnn", "sequential_mlp"}


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items):
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@contextlib.contextmanager
def _no_training(item):
    """``keras.Model.fit`` fails while a test that is not marked slow sets up or runs."""
    keras = sys.modules.get("keras")
    if keras is None or item.get_closest_marker("slow") is not None:
        yield
        return

    def fit(*args, **kwargs):
        pytest.fail(f"{item.nodeid} trains a Keras model: mark the test (or its module) slow", pytrace=False)

    saved = keras.Model.__dict__.get("fit")
    keras.Model.fit = fit
    try:
        yield
    finally:
        if saved is None:
            del keras.Model.fit
        else:
            keras.Model.fit = saved


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    with _no_training(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    with _no_training(item):
        return (yield)


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
