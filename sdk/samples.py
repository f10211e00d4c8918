"""Samples read batch by batch: the data path that keeps memory flat however large the dataset.

A :class:`Samples` is one split (training or evaluation): a source of raw rows (a
memory-mapped array, image files decoded on demand, or a small in-memory array), the
rows of that source it holds, and the transform that turns raw rows into model input
(normalization, a channel axis). Indexing it reads and transforms only what is asked:

>>> pixels = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
>>> split = Samples(array_source(pixels), [1, 0], lambda raw: raw[..., None] / 255.0)
>>> len(split), split.shape, float(split[:1].max())
(2, (2, 4, 4, 1), 0.12156862745098039)

:func:`open_npz` reads the large arrays of an ``.npz`` row by row where they lie
(stored members in place, compressed ones through a temporary ``.npy``), so a
5,000-image file costs no memory beyond the batch being read: rows come through
``os.pread`` into the page cache, not through a memory map whose touched pages
would count as the process's own.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from edgesmith.cleanup import at_exit

SMALL_BYTES = 16 << 20  # arrays below this are simply loaded
BATCH_BYTES = 64 << 20  # what one pass over a split reads at a time


class Samples:
    """Rows ``indices`` of ``source``, each batch passed through ``transform`` when read.

    ``source(rows)`` returns the raw rows for a sorted array of row numbers; ``transform(raw)``
    returns model input. ``samples[a:b]`` and ``samples[index_array]`` are batches.
    """

    def __init__(self, source, indices, transform=None):
        self.source = source
        self.indices = np.asarray(indices, dtype=np.int64)
        self.transform = transform or (lambda raw: raw)
        raw = np.asarray(self.source(self.indices[:1])) if len(self.indices) else np.zeros((0,), np.float32)
        first = self.transform(raw) if len(self.indices) else raw
        self.stored_dtype = raw.dtype  # before the transform: integer pixels cannot hold NaN
        self.sample_shape = tuple(first.shape[1:])
        self.dtype = first.dtype

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def shape(self) -> tuple:
        return (len(self), *self.sample_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.sample_shape)

    def __getitem__(self, key):
        rows = self.indices[key]
        if np.ndim(rows) == 0:
            return self._read(np.asarray([rows]))[0]
        return self._read(rows)

    def _read(self, rows: np.ndarray) -> np.ndarray:
        order = np.argsort(rows, kind="stable")  # sorted reads are sequential on disk
        raw = np.asarray(self.source(rows[order]))
        batch = np.empty_like(raw)
        batch[order] = raw
        return self.transform(batch)

    def __array__(self, dtype=None, copy=None):
        """The whole split as one array (reads everything: for small data, tests and ``np.asarray``)."""
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def subset(self, positions) -> "Samples":
        """The samples at ``positions`` of this split (same source and transform)."""
        return Samples(self.source, self.indices[np.asarray(positions, dtype=np.int64)], self.transform)

    def batches(self, size: int | None = None):
        """Consecutive batches of at most ``size`` samples (default: about 64 MB of model input each)."""
        size = size or max(1, BATCH_BYTES // max(1, self.dtype.itemsize * int(np.prod(self.sample_shape))))
        for start in range(0, len(self), size):
            yield self[start:start + size]


def array_source(array):
    """A source reading rows of an array or memory map (only the rows asked for are read)."""
    return lambda rows: array[rows]


class RowFile:
    """A C-order array stored in a file at ``offset``: ``rows_file[rows]`` reads just those rows (``pread``).

    Shape, dtype and ``len`` behave like the array's; nothing is mapped or cached in the process.
    """

    def __init__(self, path, offset: int, dtype, shape: tuple):
        self.path, self.offset, self.dtype, self.shape = str(path), int(offset), np.dtype(dtype), tuple(shape)
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __getitem__(self, rows) -> np.ndarray:
        rows = np.arange(self.shape[0])[rows] if isinstance(rows, slice) else np.atleast_1d(rows)
        out = np.empty((len(rows), *self.shape[1:]), self.dtype)
        with open(self.path, "rb", buffering=0) as handle:
            for i, row in enumerate(rows):
                data = os.pread(handle.fileno(), self.row_bytes, self.offset + int(row) * self.row_bytes)
                out[i] = np.frombuffer(data, self.dtype).reshape(self.shape[1:])
        return out


def open_npz(path: Path) -> dict:
    """The arrays of ``path``: large ones as :class:`RowFile` (never read whole), small ones loaded."""
    arrays = {}
    with zipfile.ZipFile(path) as archive, np.load(path, allow_pickle=False, mmap_mode="r") as npz:
        for member in archive.infolist():
            name = member.filename[:-4] if member.filename.endswith(".npy") else member.filename
            if member.file_size < SMALL_BYTES:
                arrays[name] = npz[name]
            elif member.compress_type == zipfile.ZIP_STORED:
                arrays[name] = _rows_in_place(path, archive, member)
            else:
                arrays[name] = _rows_of_inflated_copy(archive, member)
    return arrays


def _rows_in_place(path: Path, archive, member):
    """Read a stored (uncompressed) ``.npy`` member row by row where it lies inside the zip."""
    with open(path, "rb") as raw:  # the member's data starts after its local header
        raw.seek(member.header_offset + 26)
        name_length, extra_length = np.frombuffer(raw.read(4), "<u2")
        start = member.header_offset + 30 + int(name_length) + int(extra_length)
    with archive.open(member) as stream:
        return _npy_rows(path, start, stream)


def _rows_of_inflated_copy(archive, member):
    """Inflate a compressed member to a scratch ``.npy`` once, then read it row by row."""
    handle, target = tempfile.mkstemp(suffix=".npy", dir=_scratch_dir())
    with archive.open(member) as stream, open(handle, "wb") as out:
        shutil.copyfileobj(stream, out, 1 << 22)
    with open(target, "rb") as stream:
        return _npy_rows(target, 0, stream)


def _npy_rows(path, start: int, stream):
    """The array of the ``.npy`` that ``stream`` starts with, stored at byte ``start`` of ``path``, read row by
    row (:class:`RowFile`), or memory-mapped where its rows are not contiguous (Fortran order: rare)."""
    version = np.lib.format.read_magic(stream)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(stream)
    if fortran:
        return np.memmap(path, dtype=dtype, mode="r", offset=start + stream.tell(), shape=shape, order="F")
    return RowFile(path, start + stream.tell(), dtype, shape)


@functools.cache
def _scratch_dir() -> str:
    folder = tempfile.mkdtemp(prefix="edgesmith-npz-")
    at_exit(shutil.rmtree, folder, True)
    return folder
