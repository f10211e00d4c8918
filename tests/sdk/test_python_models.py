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


class _Sequence:
    """A subclassed Conv1D model over [28, 28] float sequences."""

    @staticmethod
    def model():
        import keras

        class SequenceNet(keras.Model):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.conv = keras.layers.Conv1D(8, 3, activation="relu")
                self.pool = keras.layers.GlobalAveragePooling1D()
                self.head = keras.layers.Dense(4)

            def call(self, x):
                return self.head(self.pool(self.conv(x)))

        net = SequenceNet(name="sequence_net")
        net(np.zeros((1, 28, 28), np.float32))  # built, as a model whose package loaded its weights is
        return net


def test_a_subclassed_model_of_sequences_is_fed_them_as_stored_not_as_images(tmp_path):
    import edgesmith

    x = np.random.default_rng(0).normal(size=(200, 28, 28)).astype(np.float32)  # [T, F]: 2-D like a gray image
    np.savez(tmp_path / "sequences.npz", x_train=x[:150], x_test=x[150:])
    report = edgesmith.convert(_Sequence.model(), "int8-ptq", str(tmp_path / "sequences.npz"), tmp_path / "out")
    assert report.data["preprocessing"] == {"input": "as stored"} and report.verification.verdict == "holds"


def test_a_subclassed_model_that_takes_no_sample_of_the_data_is_refused_in_one_line(tmp_path):
    import edgesmith
    from edgesmith.converters.errors import UnsupportedModelError

    np.savez(tmp_path / "vectors.npz", x_train=np.zeros((60, 5), np.float32), x_test=np.zeros((20, 5), np.float32))
    with pytest.raises(UnsupportedModelError, match=r"subclassed model sequence_net cannot be called on the data's "
                                                    r"samples \(shape \[5\]\)"):
        edgesmith.convert(_Sequence.model(), "int8-ptq", str(tmp_path / "vectors.npz"), tmp_path / "out")
