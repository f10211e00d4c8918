"""Loading .keras, legacy .h5, SavedModel and subclassed models; clear errors for the rest."""

import keras
import pytest

from edgesmith.converters.errors import CorruptModelError, UnsupportedModelError
from edgesmith.converters.load import SavedModelSource, load_model, source_sha256
from edgesmith.converters.ptq import ptq
from edgesmith.converters.qat import qat
from tests.converters.trained import accuracy

pytestmark = pytest.mark.slow  # saves, exports and converts trained models


def test_keras_and_h5_files_load_with_their_weights(sequential_mlp, tmp_path):
    for name in ("m.keras", "m.h5"):
        sequential_mlp.save(tmp_path / name)
        loaded = load_model(tmp_path / name)
        assert accuracy(loaded) == pytest.approx(accuracy(sequential_mlp))
        assert len(source_sha256(tmp_path / name)) == 64


def test_corrupt_and_missing_files_are_clear_errors(sequential_mlp, tmp_path):
    sequential_mlp.save(tmp_path / "m.keras")
    broken = tmp_path / "broken.keras"
    broken.write_bytes((tmp_path / "m.keras").read_bytes()[:200])
    with pytest.raises(CorruptModelError, match="broken.keras"):
        load_model(broken)
    with pytest.raises(CorruptModelError, match="no such model file"):
        load_model(tmp_path / "absent.keras")


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.flatten, self.dense = keras.layers.Flatten(), keras.layers.Dense(10)

    def call(self, inputs):
        return self.dense(self.flatten(inputs))


def test_subclassed_models_get_ptq_but_not_graph_passes(digits):
    model = Subclassed()
    model(digits.x_val[:1])
    with pytest.raises(UnsupportedModelError, match="subclassed"):
        qat(model, digits)
    assert ptq(model, digits, mode="int8").content[4:8] == b"TFL3"


def test_saved_model_is_accepted_for_post_training_passes(sequential_mlp, digits, tmp_path):
    sequential_mlp.export(tmp_path / "saved", verbose=False)
    source = load_model(tmp_path / "saved")
    assert isinstance(source, SavedModelSource)
    assert len(ptq(source, digits, mode="dynamic").content) > 0
    with pytest.raises(UnsupportedModelError, match="SavedModel"):
        qat(source, digits)


def test_a_keras_2_functional_model_is_fed_as_it_declares_its_inputs(digits, tmp_path):
    """A legacy .h5 functional model declares its one input as a list: edgesmith calls it so, and Keras does not
    warn that "the structure of inputs doesn't match" (twice in every convert of such a model, before)."""
    import warnings

    from edgesmith.converters.train import fine_tune
    from edgesmith.converters.verify import predicted_classes

    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs))
    keras.Model([inputs], outputs).save(tmp_path / "legacy.h5")
    model = load_model(tmp_path / "legacy.h5")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fine_tune(model, digits, epochs=1)
        predicted_classes(model, digits.x_val)
        qat(model, digits, epochs=1)
    assert [str(w.message) for w in caught if "structure" in str(w.message)] == []
