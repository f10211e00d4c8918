"""The one fine-tuning loop: what it leaves in the model besides trained weights."""

import keras
import numpy as np
import pytest
from keras import layers

from edgesmith.converters.train import fine_tune

pytestmark = pytest.mark.slow  # trains


def test_fine_tuning_reestimates_stale_batchnorm_statistics(digits):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 1))
    features = layers.Conv2D(8, 3, name="conv")(inputs)
    normalized = layers.BatchNormalization(momentum=0.999, name="bn")(features)  # keras.applications' momentum
    model = keras.Model(inputs, layers.Dense(10)(layers.Flatten()(layers.ReLU()(normalized))))
    fine_tune(model, digits, epochs=1, learning_rate=1e-3)
    conv = keras.Model(inputs, model.get_layer("conv").output)
    expected = np.asarray(conv(np.asarray(digits.x_train[:])), dtype=np.float64).mean(axis=(0, 1, 2))
    stored = np.asarray(model.get_layer("bn").moving_mean)
    # 45 steps at momentum 0.999 would leave the mean at ~4 % of its value; re-estimated, it is the data's
    assert np.allclose(stored, expected, atol=0.05 * np.abs(expected).max()), (stored, expected)
