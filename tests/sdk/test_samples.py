"""The streaming data path: .npz arrays memory-mapped, splits read and normalized batch by batch."""

import numpy as np
import pytest

from edgesmith.data import load_data
from edgesmith.samples import SMALL_BYTES, RowFile, Samples, open_npz


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_large_npz_arrays_are_read_row_by_row_not_loaded(tmp_path, save):
    count = SMALL_BYTES // (32 * 32 * 3) + 10  # just over the size that is simply loaded
    x = np.random.default_rng(0).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    save(tmp_path / "big.npz", x=x, y=np.arange(count) % 10)
    arrays = open_npz(tmp_path / "big.npz")
    assert isinstance(arrays["x"], RowFile) and isinstance(arrays["y"], np.ndarray)
    assert np.array_equal(arrays["x"][[5, count - 1]], x[[5, count - 1]])
    assert np.array_equal(arrays["y"], np.arange(count) % 10)


def test_samples_read_only_the_rows_asked_for_in_the_order_asked():
    reads = []
    pixels = np.arange(6 * 2 * 2, dtype=np.uint8).reshape(6, 2, 2)

    def source(rows):
        reads.append(list(rows))
        return pixels[rows]

    split = Samples(source, [5, 1, 3], lambda raw: raw.astype(np.float32))
    reads.clear()
    batch = split[np.array([2, 0])]  # rows 3 and 5, in that order
    assert reads == [[3, 5]]  # read sorted (sequential on disk) ...
    assert np.array_equal(batch, pixels[[3, 5]].astype(np.float32))  # ... returned as asked
    assert split.shape == (3, 2, 2) and np.asarray(split).shape == (3, 2, 2)


def test_a_loaded_npz_split_is_normalized_per_batch_and_matches_the_whole(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (50, 6, 6, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(50) % 5)
    data = load_data(str(tmp_path / "d.npz"), mean=127.5, std=127.5)
    whole = np.concatenate(list(data.x_train.batches(7)))
    assert isinstance(data.x_train, Samples) and whole.dtype == np.float32
    assert np.allclose(whole, (x[data.x_train.indices] - 127.5) / 127.5)


def test_image_folders_are_decoded_batch_by_batch(tmp_path):
    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.fromarray(np.full((9, 7, 3), 20 * i, np.uint8)).save(tmp_path / label / f"{i}.png")
    data = load_data(str(tmp_path), image_size=(4, 4), val_split=0.2)
    assert data.x_train.shape == (8, 4, 4, 3) and data.x_val[:1].shape == (1, 4, 4, 3)
