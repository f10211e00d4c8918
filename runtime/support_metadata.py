"""The TFLite Support ``ModelMetadata`` flatbuffer, for the fields edgesmith uses.

TFLite Support (and the Android metadata extractor, Android Studio ML binding,
MediaPipe tasks) look for a metadata entry named ``TFLITE_METADATA`` whose
buffer is a ``ModelMetadata`` flatbuffer (file identifier ``M001``), and for
the files it names in a zip appended to the .tflite. This module writes and
reads the subset edgesmith needs: the model name, description and version;
per-input image properties and normalization; per-output label files; and
model-level associated files.

Field slots follow ``metadata_schema.fbs`` (schema 1.x): a table's fields are
numbered in declaration order, and a union takes two slots (type, value).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
from flatbuffers import number_types as N
from flatbuffers.table import Table

ENTRY_NAME = "TFLITE_METADATA"
FILE_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"

# Enum values from metadata_schema.fbs.
FILE_DESCRIPTIONS = 1
FILE_TENSOR_AXIS_LABELS = 2
COLOR_SPACES = {"rgb": 1, "grayscale": 2}
_CONTENT_IMAGE = 2
_UNIT_NORMALIZATION = 1


@dataclass
class TensorInfo:
    """What the metadata says of one input or output tensor."""

    name: str = ""
    description: str = ""
    color_space: str | None = None  # "rgb" or "grayscale" for image inputs
    image_size: tuple | None = None  # (width, height)
    mean: list | None = None
    std: list | None = None
    label_files: list = field(default_factory=list)


@dataclass
class SupportMetadata:
    """The ``ModelMetadata`` subset: model fields plus per-tensor info."""

    name: str = ""
    description: str = ""
    version: str = ""
    author: str = ""
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    files: list = field(default_factory=list)  # (name, description, type)


# -- writing -------------------------------------------------------------------


def build(meta: SupportMetadata) -> bytes:
    """Serialize ``meta`` as a ``ModelMetadata`` flatbuffer with identifier M001."""
    b = flatbuffers.Builder(1024)
    subgraph = _subgraph(b, meta)
    model_files = _vector_of_tables(b, [_associated_file(b, *f) for f in meta.files])
    name, description, version, author, parser = (
        b.CreateString(s) for s in (meta.name, meta.description, meta.version, meta.author, MIN_PARSER_VERSION)
    )
    subgraphs = _vector_of_tables(b, [subgraph])
    root = _table(b, 8, {0: name, 1: description, 2: version, 3: subgraphs, 4: author, 6: model_files, 7: parser})
    b.Finish(root, file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())


def _table(b, slots: int, fields: dict) -> int:
    """A table of ``slots`` fields: ``fields`` maps a slot to an offset (None: absent) or to
    ``(prepend_method, value)`` for a scalar."""
    b.StartObject(slots)
    for slot, value in fields.items():
        if isinstance(value, tuple):
            value[0](slot, value[1], 0)
        elif value is not None:
            b.PrependUOffsetTRelativeSlot(slot, value, 0)
    return b.EndObject()


def _subgraph(b, meta: SupportMetadata) -> int:
    inputs = _vector_of_tables(b, [_tensor(b, t) for t in meta.inputs])
    outputs = _vector_of_tables(b, [_tensor(b, t) for t in meta.outputs])
    return _table(b, 7, {2: inputs, 3: outputs})


def _tensor(b, info: TensorInfo) -> int:
    content = _image_content(b, info) if info.color_space else None
    units = None
    if info.mean is not None and info.std is not None:
        units = _vector_of_tables(b, [_normalization_unit(b, info.mean, info.std)])
    files = _vector_of_tables(b, [_associated_file(b, f, "Labels", FILE_TENSOR_AXIS_LABELS) for f in info.label_files])
    name, description = b.CreateString(info.name), b.CreateString(info.description)
    return _table(b, 7, {0: name, 1: description, 3: content, 4: units, 6: files})


def _image_content(b, info: TensorInfo) -> int:
    size = None
    if info.image_size:
        width, height = (int(v) for v in info.image_size[:2])
        size = _table(b, 2, {0: (b.PrependUint32Slot, width), 1: (b.PrependUint32Slot, height)})
    properties = _table(b, 2, {0: (b.PrependInt8Slot, COLOR_SPACES.get(info.color_space, 0)), 1: size})
    return _table(b, 3, {0: (b.PrependUint8Slot, _CONTENT_IMAGE), 1: properties})


def _normalization_unit(b, mean, std) -> int:
    mean_vec, std_vec = (_float_vector(b, values) for values in (mean, std))
    options = _table(b, 2, {0: mean_vec, 1: std_vec})
    return _table(b, 2, {0: (b.PrependUint8Slot, _UNIT_NORMALIZATION), 1: options})


def _associated_file(b, name: str, description: str, file_type: int) -> int:
    name_off, description_off = b.CreateString(name), b.CreateString(description)
    return _table(b, 5, {0: name_off, 1: description_off, 2: (b.PrependInt8Slot, file_type)})


def _float_vector(b, values) -> int:
    b.StartVector(4, len(values), 4)
    for value in reversed(list(values)):
        b.PrependFloat32(float(value))
    return b.EndVector()


def _vector_of_tables(b, offsets: list):
    if not offsets:
        return None
    b.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    return b.EndVector()


# -- reading -------------------------------------------------------------------


def parse(data: bytes) -> SupportMetadata:
    """Read the subset of a ``ModelMetadata`` flatbuffer that :func:`build` writes."""
    root = _Node.root(data)
    meta = SupportMetadata(name=root.string(0), description=root.string(1), version=root.string(2),
                           author=root.string(4), files=[(f.string(0), f.string(1), f.scalar(2, N.Int8Flags)) for f in root.tables(6)])
    subgraphs = root.tables(3)
    if subgraphs:
        meta.inputs = [_tensor_info(t) for t in subgraphs[0].tables(2)]
        meta.outputs = [_tensor_info(t) for t in subgraphs[0].tables(3)]
    return meta


def _tensor_info(node: "_Node") -> TensorInfo:
    info = TensorInfo(name=node.string(0), description=node.string(1))
    content = node.table(3)
    if content is not None and content.scalar(0, N.Uint8Flags) == _CONTENT_IMAGE:
        image = content.union(1)
        spaces = {v: k for k, v in COLOR_SPACES.items()}
        info.color_space = spaces.get(image.scalar(0, N.Int8Flags))
        size = image.table(1)
        if size is not None:
            info.image_size = (size.scalar(0, N.Uint32Flags), size.scalar(1, N.Uint32Flags))
    for unit in node.tables(4):
        if unit.scalar(0, N.Uint8Flags) == _UNIT_NORMALIZATION:
            options = unit.union(1)
            info.mean, info.std = options.floats(0), options.floats(1)
    info.label_files = [f.string(0) for f in node.tables(6) if f.scalar(2, N.Int8Flags) == FILE_TENSOR_AXIS_LABELS]
    return info


class _Node:
    """A flatbuffer table with accessors by field slot."""

    def __init__(self, table: Table):
        self._t = table

    @classmethod
    def root(cls, data: bytes) -> "_Node":
        buf = bytearray(data)
        return cls(Table(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0)))

    def _offset(self, slot: int) -> int:
        return self._t.Offset(4 + 2 * slot)

    def string(self, slot: int) -> str:
        o = self._offset(slot)
        return self._t.String(o + self._t.Pos).decode("utf-8") if o else ""

    def scalar(self, slot: int, flags):
        o = self._offset(slot)
        return self._t.Get(flags, o + self._t.Pos) if o else 0

    def table(self, slot: int):
        o = self._offset(slot)
        return _Node(Table(self._t.Bytes, self._t.Indirect(o + self._t.Pos))) if o else None

    def union(self, slot: int) -> "_Node":
        o = self._offset(slot)
        inner = Table(bytearray(), 0)
        self._t.Union(inner, o)
        return _Node(inner)

    def tables(self, slot: int) -> list:
        return [_Node(Table(self._t.Bytes, self._t.Indirect(at))) for at in self._vector(slot)]

    def floats(self, slot: int) -> list:
        return [self._t.Get(N.Float32Flags, at) for at in self._vector(slot)]

    def _vector(self, slot: int) -> range:
        """The positions of a vector's 4-byte elements (none when the field is absent)."""
        o = self._offset(slot)
        if not o:
            return range(0)
        start = self._t.Vector(o)
        return range(start, start + 4 * self._t.VectorLen(o), 4)
