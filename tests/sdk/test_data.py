"""edgesmith.data: built-ins, .npz, image folders; shape and label checks show both sides."""

import numpy as np
import pytest
from PIL import Image

from edgesmith.data import DataError, LabelCountError, ShapeMismatchError, check_shapes, load_data


def test_digits_builtin_is_offline_normalized_and_split():
    data = load_data("builtin:digits", val_split=0.25)
    assert data.x_train.shape[1:] == (8, 8, 1) and data.num_classes == 10
    assert len(data.x_val) == pytest.approx(0.25 * 1797, abs=1)
    assert 0.0 <= data.x_train[:].min() and data.x_train[:].max() == pytest.approx(1.0)
    assert data.describe()["split"] == {"val_split": 0.25, "seed": 0}


def test_npz_with_train_and_test_arrays(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x_train=rng.integers(0, 256, (20, 6, 6, 3), dtype=np.uint8), y_train=np.arange(20) % 4,
             x_test=rng.integers(0, 256, (8, 6, 6, 3), dtype=np.uint8), y_test=np.arange(8) % 4)
    data = load_data(str(tmp_path / "d.npz"), mean=127.5, std=127.5)
    assert data.x_val.shape == (8, 6, 6, 3) and data.preprocessing["color"] == "rgb"
    assert data.x_train[:].min() >= -1.0 and data.x_train[:].max() <= 1.0
    assert data.labels == ["0", "1", "2", "3"]


def test_npz_with_x_y_and_one_hot_labels(tmp_path):
    y = np.eye(3)[np.arange(30) % 3]
    np.savez(tmp_path / "d.npz", x=np.zeros((30, 5, 5), np.float32), y=y)
    data = load_data(str(tmp_path / "d.npz"))
    assert data.x_train.shape[1:] == (5, 5, 1) and set(data.y_train) <= {0, 1, 2}


def _image_folder(root, classes, size=(10, 12)):
    for index, name in enumerate(classes):
        folder = root / name if name else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(4):
            Image.fromarray(np.full((size[1], size[0], 3), 40 * index + i, np.uint8)).save(folder / f"{i}.png")


def test_labeled_image_folder_resized(tmp_path):
    _image_folder(tmp_path, ["cat", "dog"])
    data = load_data(str(tmp_path), image_size=(8, 8), val_split=0.25)
    assert data.labels == ["cat", "dog"] and data.labeled
    assert data.x_train.shape[1:] == (8, 8, 3) and data.preprocessing["size"] == [8, 8]


def test_unlabeled_image_folder_is_calibration_only(tmp_path):
    _image_folder(tmp_path, [""])
    data = load_data(str(tmp_path))
    assert not data.labeled and data.calibration(3).shape == (3, 12, 10, 3)


def test_bad_specs_are_clear(tmp_path):
    with pytest.raises(DataError, match="builtin:digits"):
        load_data("builtin:imagenet")
    with pytest.raises(DataError, match="no images"):
        load_data(str(tmp_path))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_data(str(tmp_path / "bad.npz"))


def test_shape_and_label_mismatches_show_both_sides():
    with pytest.raises(ShapeMismatchError, match=r"\[8, 8, 1\].*\[28, 28, 1\]"):
        check_shapes((28, 28, 1), (8, 8, 1))
    import keras

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    with pytest.raises(LabelCountError, match="10 classes but the model has 3 outputs"):
        load_data("builtin:digits").check_model(model)


def test_keras_builtin_keeps_each_split_with_its_labels(monkeypatch):
    import edgesmith.data as data_module

    train = (np.zeros((10, 28, 28), np.uint8), np.arange(10) % 10)
    test = (np.full((4, 28, 28), 255, np.uint8), np.arange(4).reshape(4, 1))
    monkeypatch.setattr(data_module, "_keras_dataset", lambda name: (train, test))
    data = load_data("builtin:fashion_mnist")
    assert data.x_train.shape == (10, 28, 28, 1) and data.x_val.shape == (4, 28, 28, 1)
    assert data.y_train.tolist() == list(range(10)) and data.y_val.tolist() == [0, 1, 2, 3]
    assert float(np.asarray(data.x_val).max()) == 1.0 and data.labels[0] == "t-shirt"
    assert data.split == {"held_out": "the source's test split"}


def test_values_as_wide_as_a_one_value_per_class_output_are_regression_targets_not_one_hot_rows(tmp_path):
    """A keypoint regressor with a [2] output: (x, y) coordinates per sample are its targets (scored by mse), not
    probability rows of a 2-class classifier (whose argmax would be scored as accuracy); one-hot rows stay labels."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    centres = rng.uniform(0.2, 0.8, (12, 2)).astype(np.float32)
    np.savez(tmp_path / "points.npz", x_train=x, x_test=x, y_train=centres, y_test=centres)
    points = load_data(str(tmp_path / "points.npz"), outputs={"centre": (2,)}, input_shape=(8, 8, 3))
    assert list(points.targets) == ["centre"] and not points.labeled
    one_hot = np.eye(2)[np.arange(12) % 2]
    np.savez(tmp_path / "classes.npz", x_train=x, x_test=x, y_train=one_hot, y_test=one_hot)
    classes = load_data(str(tmp_path / "classes.npz"), outputs={"scores": (2,)}, input_shape=(8, 8, 3))
    assert not classes.targets and classes.labeled and list(classes.y_val[:4]) == [0, 1, 0, 1]


def test_limit_keeps_each_outputs_targets_with_their_samples(tmp_path):
    x_train = np.arange(50 * 6, dtype=np.float32).reshape(50, 6)
    x_test = -np.arange(20 * 6, dtype=np.float32).reshape(20, 6)
    np.savez(tmp_path / "d.npz", x_train=x_train, x_test=x_test, y_train_a=x_train[:, :2], y_test_a=x_test[:, :2])
    data = load_data(str(tmp_path / "d.npz"), outputs={"a": (2,)}, input_shape=(6,), limit=10)
    train, val = data.targets["a"]
    assert len(data.x_train) == len(train) == 10 and len(data.x_val) == len(val) == 10
    assert np.array_equal(np.asarray(data.x_train)[:, :2], train) and np.array_equal(np.asarray(data.x_val)[:, :2], val)
