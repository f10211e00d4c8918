"""Labels that are no class ids are refused when the data is read, in one line, before any work."""

import numpy as np
import pytest

from edgesmith.data import DataError, LabelCountError, load_data


def _npz(tmp_path, y_train, y_test, **extra):
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, x_train=rng.random((len(y_train), 6), dtype=np.float32), y_train=np.asarray(y_train),
             x_test=rng.random((len(y_test), 6), dtype=np.float32), y_test=np.asarray(y_test), **extra)
    return path


@pytest.mark.parametrize("y_train, y_test, message", [
    ([0, 1, 2, 1], [0, -1, 2], "y_test: label -1 at row 1 is negative"),
    ([0, 1, -3, 1], [0, 1, 2], "y_train: label -3 at row 2 is negative"),
    ([0.0, 0.5, 1.5, 1.0], [0, 1, 1], r"y_train: label 0.5 at row 1 is not a class id"),
    ([0, 1, 2, 1], [0.0, float("nan"), 1.0], r"y_test: label nan at row 1 is not a class id"),
    ([0, 1], ["a", "b"], "y_test: labels of type <U1 are not class ids"),
])
def test_labels_that_are_no_class_ids_are_refused_naming_the_row(tmp_path, y_train, y_test, message):
    with pytest.raises(DataError, match=message):
        load_data(str(_npz(tmp_path, y_train, y_test)))


def test_a_label_beyond_the_named_classes_is_refused(tmp_path):
    with pytest.raises(DataError, match="y_test: label 3 at row 2 is at or above the 3 classes"):
        load_data(str(_npz(tmp_path, [0, 1, 2], [0, 1, 3], labels=np.array(["a", "b", "c"]))))


def test_one_hot_and_whole_float_labels_are_class_ids(tmp_path):
    data = load_data(str(_npz(tmp_path, np.eye(3)[[0, 1, 2, 1]], [2.0, 0.0, 1.0])))
    assert data.y_train.tolist() == [0, 1, 2, 1] and data.y_val.tolist() == [2, 0, 1]


def test_labels_at_or_above_the_model_outputs_name_the_largest():
    import keras

    data = load_data("builtin:digits")
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(7)])
    with pytest.raises(LabelCountError, match="largest label is 9: class ids run from 0 to 6"):
        data.check_model(model)
