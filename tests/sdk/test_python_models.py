"""Models that exist only as Python objects: a subclassed keras.Model goes through edgesmith.convert, wrapped in a
Functional model fed the data's sample shape; passes that need its graph refuse it before any work, naming it."""

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # trains the subclassed model and converts it


@pytest.fixture(scope="module")
def subclassed():
    import keras

    from edgesmith.data import load_data

    class Net(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.conv = keras.layers.Conv2D(16, 3, padding="same", activation="relu")
            self.flatten = keras.layers.Flatten()
            self.head = keras.layers.Dense(10, activation="softmax")

        def call(self, x):
            return self.head(self.flatten(self.conv(x)))

    keras.utils.set_random_seed(0)
    data = load_data("builtin:digits")
    net = Net(name="net")
    net.compile("adam", "sparse_categorical_crossentropy")
    net.fit(data.x_train[np.arange(len(data.x_train))], data.y_train, epochs=10, verbose=0)
    return net, data


def test_a_subclassed_model_converts_through_the_front_door(subclassed, tmp_path):
    import edgesmith

    net, data = subclassed
    report = edgesmith.convert(net, "int8-ptq", data, tmp_path)
    assert report.verification.tflite_accuracy > 0.9 and report.verification.verdict == "holds"
    assert (tmp_path / "model.tflite").is_file()


def test_a_pass_that_needs_the_graph_refuses_it_before_any_training(subclassed, tmp_path):
    import keras

    import edgesmith
    from edgesmith.converters.errors import UnsupportedModelError

    net, data = subclassed
    fits = []
    original = keras.Model.fit
    keras.Model.fit = lambda *args, **kwargs: fits.append(1)  # nothing may train before the refusal
    try:
        with pytest.raises(UnsupportedModelError, match="qat cannot see inside layer 'net': a subclassed Net"):
            edgesmith.convert(net, "int8-qat", data, tmp_path)
    finally:
        keras.Model.fit = original
    assert not fits and not (tmp_path / "model.tflite").exists()
