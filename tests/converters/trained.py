"""Small models really trained on builtin:digits, built once per test process and shared.

Tests that change a model get it through a pass (passes copy), never in place.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=None)
def digits():
    from edgesmith.data import load_data

    return load_data("builtin:digits")


@functools.lru_cache(maxsize=None)
def residual_cnn():
    """Functional: Conv+BN+ReLU, SeparableConv2D+BN, a residual Add, MaxPool, Dense (~92% on digits)."""
    import keras

    layers = keras.layers
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 1))
    x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)))
    y = layers.BatchNormalization()(layers.SeparableConv2D(16, 3, padding="same")(x))
    x = layers.MaxPooling2D()(layers.ReLU()(layers.Add()([x, y])))
    outputs = layers.Dense(10, activation="softmax")(layers.Flatten()(x))
    return _trained(keras.Model(inputs, outputs, name="residual_cnn"), epochs=6)


@functools.lru_cache(maxsize=None)
def sequential_mlp():
    """Sequential: Flatten, Dense(32, relu), Dense(10) logits."""
    import keras

    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(10)], name="mlp")
    return _trained(model, epochs=6, logits=True)


def _trained(model, epochs: int, logits: bool = False):
    import keras

    data = digits()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=logits))
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=32, verbose=0)
    return model


def accuracy(model, data=None) -> float:
    data = data or digits()
    return float(np.mean(model.predict(data.x_val, verbose=0).argmax(-1) == data.y_val))
