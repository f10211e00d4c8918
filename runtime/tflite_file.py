"""Checks and reads on the .tflite file itself, before any interpreter sees it.

This is the one module that parses the flatbuffer; others read the plain
records of :func:`read_contents`. It is read with the LiteRT schema shipped
in ``ai_edge_litert`` when it is installed. Hosts with only ``tflite_runtime``
(32-bit ARM) lack the schema; there, the functions that need it return
nothing and callers fall back to the appended zip (see
:mod:`edgesmith.runtime.metadata`).
"""

from __future__ import annotations

import gzip
from collections import Counter
from math import prod
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import ModelLoadError

TFLITE_IDENTIFIER = b"TFL3"
_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# flatbuffer TensorType name -> numpy dtype, for the types whose values can be decoded
NUMPY_TYPES = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64, "INT8": np.int8, "UINT8": np.uint8,
    "INT16": np.int16, "UINT16": np.uint16, "INT32": np.int32, "UINT32": np.uint32, "INT64": np.int64,
    "UINT64": np.uint64, "BOOL": np.bool_,
}


def schema():
    """The LiteRT flatbuffer schema module, or None where it is not installed."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        return None
    return schema_py_generated


def check_tflite_file(path: Path) -> None:
    """Raise a one-line :class:`ModelLoadError` unless ``path`` looks like a .tflite file."""
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file")
    if path.is_dir():
        hint = " (a SavedModel; convert it with `edgesmith convert`)" if (path / "saved_model.pb").exists() else ""
        raise ModelLoadError(f"{path}: is a directory, not a .tflite file{hint}")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if len(head) < 8:
        raise ModelLoadError(f"{path}: too short to be a .tflite file ({len(head)} bytes)")
    if head[4:8] == TFLITE_IDENTIFIER:
        return
    if head[:4] == _ZIP_MAGIC:
        raise ModelLoadError(f"{path}: is a zip archive (a Keras .keras file?), not a .tflite; convert it with `edgesmith convert`")
    if head == _HDF5_MAGIC:
        raise ModelLoadError(f"{path}: is an HDF5 file (a Keras .h5 model?), not a .tflite; convert it with `edgesmith convert`")
    raise ModelLoadError(f"{path}: not a TFLite flatbuffer (no TFL3 identifier)")


def read_tflite_file(path) -> bytes:
    """The bytes of the .tflite at ``path``, checked first by :func:`check_tflite_file`."""
    path = Path(path)
    check_tflite_file(path)
    return path.read_bytes()


def read_model(data: bytes):
    """Flatbuffer bytes as the schema's object API (``ModelT``), to rewrite them; None without the schema."""
    fb = schema()
    return None if fb is None else fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))


class Tensor(NamedTuple):
    """One tensor of a subgraph (``index``: its position there); ``type`` is its TensorType name ("FLOAT32"...),
    ``constant`` that its values are stored in buffer ``buffer``; ``scales`` and ``zero_points`` are empty unless
    it is quantized, and run along axis ``quantized_dimension`` when there are several."""

    index: int
    name: str
    shape: list
    type: str
    buffer: int
    constant: bool
    scales: np.ndarray
    zero_points: np.ndarray
    quantized_dimension: int


class Operator(NamedTuple):
    """One op: ``name`` is the builtin op's name ("CONV_2D") or a custom op's code; ``inputs`` and ``outputs``
    are its :class:`Tensor` records, None for an optional input left out."""

    name: str
    inputs: list
    outputs: list


class Subgraph(NamedTuple):
    """A graph's tensors, its ops in execution order, and the indices of its input and output tensors."""

    tensors: list
    operators: list
    inputs: list
    outputs: list


class Contents(NamedTuple):
    """What a .tflite holds: ``subgraphs[0]`` is the main graph, ``buffers`` the bytes of every buffer (those after
    the flatbuffer too), ``metadata`` each entry's ``(name, buffer index)``, ``custom_codes`` the custom op codes."""

    subgraphs: list
    buffers: list
    metadata: list
    custom_codes: list
    signature_outputs: list = []  # (name, tensor index) of the first signature's outputs, output_0 before output_10


def read_contents(data: bytes) -> Contents | None:
    """.tflite bytes as plain Python records, or None without the schema (litert-quantizer always brings it).
    A damaged flatbuffer raises whatever walking it hits."""
    fb = schema()
    if fb is None:
        return None
    model = fb.Model.GetRootAs(data, 0)
    buffers = [_buffer_bytes(data, model.Buffers(i)) for i in range(model.BuffersLength())]
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    builtin_name, type_name = _namer(fb.BuiltinOperator), _namer(fb.TensorType)
    op_names = [_text(c.CustomCode()) or builtin_name(max(c.BuiltinCode(), c.DeprecatedBuiltinCode())) for c in codes]
    subgraphs = [_subgraph(model.Subgraphs(s), buffers, op_names, type_name) for s in range(model.SubgraphsLength())]
    metadata = [(_text(entry.Name()), entry.Buffer()) for entry in map(model.Metadata, range(model.MetadataLength()))]
    signature = model.SignatureDefs(0) if model.SignatureDefsLength() else None
    outputs = [] if signature is None else sorted(
        ((_text(pair.Name()), pair.TensorIndex()) for pair in map(signature.Outputs, range(signature.OutputsLength()))),
        key=lambda pair: natural_key(pair[0]))
    return Contents(subgraphs, buffers, metadata, [_text(code.CustomCode()) for code in codes if code.CustomCode()],
                    outputs)


def natural_key(name: str) -> tuple:
    """``output_10`` after ``output_9``: a name sorted with its trailing number as a number.

    >>> sorted(["output_10", "output_9", "output_0"], key=natural_key)
    ['output_0', 'output_9', 'output_10']
    """
    stem = name.rstrip("0123456789")
    return stem, int(name[len(stem):] or -1)


def main_operators(data: bytes) -> list:
    """The :class:`Operator` records of the main subgraph of .tflite bytes, in execution order (needs the schema)."""
    return read_contents(data).subgraphs[0].operators


def metadata_entry(data: bytes, name: str) -> bytes | None:
    """The bytes of the first metadata entry called ``name`` in .tflite bytes, or None (also without the schema).
    Reads the metadata table alone, not the graph: every model load asks for its metadata."""
    fb = schema()
    if fb is None or data[4:8] != TFLITE_IDENTIFIER:
        return None
    model = fb.Model.GetRootAs(data, 0)
    entries = map(model.Metadata, range(model.MetadataLength()))
    found = [entry.Buffer() for entry in entries if _text(entry.Name()) == name]
    return bytes(_buffer_bytes(data, model.Buffers(found[0]))) if found else None


def _contents(model) -> Contents | None:
    """:func:`read_contents` of a .tflite given as a path or as its bytes."""
    return read_contents(model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes())


def custom_op_names(model) -> list:
    """Names of the custom ops the graph (a .tflite path, or its bytes) uses (empty when unknown)."""
    try:
        contents = _contents(model)
    except Exception:  # a damaged file: the interpreter's own message is the better one
        return []
    return sorted(set(contents.custom_codes)) if contents else []


def op_histogram(model) -> dict | None:
    """How often each op type appears in the graph (all subgraphs) of a .tflite (a path, or its bytes), or None
    without the schema."""
    contents = _contents(model)
    if contents is None:
        return None
    return histogram(op.name for subgraph in contents.subgraphs for op in subgraph.operators)


def histogram(names) -> dict:
    """``{name: how often it occurs}``, most common first (ties by name).

    >>> histogram(["CONV_2D", "RELU", "CONV_2D"])
    {'CONV_2D': 2, 'RELU': 1}
    """
    return dict(sorted(Counter(names).items(), key=lambda item: (-item[1], item[0])))


def weight_bytes(path) -> dict | None:
    """Bytes of the constant tensors (weights, every subgraph, each buffer once) by element type, and the float32
    ones by name, of a .tflite file (a path, or its bytes).

    ``{"by_type": {"INT8": 15360, "FLOAT32": 512, ...}, "float32": {tensor name: bytes, ...}}``, None without the
    schema. What an int8 recipe left in float shows here, whatever the passes reported.
    """
    contents = _contents(path)
    if contents is None:
        return None
    by_type, first = {}, {}  # first: buffer index -> the first constant tensor stored in it
    for tensor in (t for subgraph in contents.subgraphs for t in subgraph.tensors if t.constant):
        first.setdefault(tensor.buffer, tensor)
    for buffer, tensor in first.items():
        by_type[tensor.type] = by_type.get(tensor.type, 0) + len(contents.buffers[buffer])
    floats = {t.name: len(contents.buffers[buffer]) for buffer, t in first.items() if t.type == "FLOAT32"}
    return {"by_type": by_type, "float32": dict(sorted(floats.items(), key=lambda item: -item[1]))}


def total_weight_bytes(path) -> int | None:
    """All weight bytes of a .tflite (a path, or its bytes) as stored: the sum of :func:`weight_bytes` by type."""
    found = weight_bytes(path)
    return None if found is None else sum(found["by_type"].values())


def gzipped_size(data: bytes) -> int:
    """Bytes of ``data`` after gzip -9: a secondary size. A device stores and maps the raw file, so raw bytes come
    first in every report; gzip shows what pruned or clustered weights would save on the wire.

    >>> gzipped_size(bytes(4096)) < 100
    True
    """
    return len(gzip.compress(bytes(data), compresslevel=9, mtime=0))


def graph_macs(path) -> int | None:
    """Multiply-accumulates per inference of the main subgraph of a .tflite (a path, or its bytes), from tensor shapes.

    Counts CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV and
    BATCH_MATMUL, the ops that carry nearly all the arithmetic of vision and
    audio models. Dynamic dimensions count as 1. None without the schema.
    """
    contents = _contents(path)
    if contents is None:
        return None
    return sum(_MACS[op.name]([_dims(t) for t in op.inputs], _dims(op.outputs[0]))
               for op in contents.subgraphs[0].operators if op.name in _MACS)


# the ops whose second input is a weight tensor
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "CONV_3D", "TRANSPOSE_CONV", "BATCH_MATMUL")
# op name -> its MACs from the shapes of its inputs and of its first output
_MACS = {
    "CONV_2D": lambda inputs, output: prod(output) * prod(inputs[1][1:]),
    "DEPTHWISE_CONV_2D": lambda inputs, output: prod(output) * prod(inputs[1][1:3]),
    "FULLY_CONNECTED": lambda inputs, output: prod(output) * inputs[1][-1],
    "TRANSPOSE_CONV": lambda inputs, output: prod(inputs[2]) * prod(inputs[1][:3]),
    "BATCH_MATMUL": lambda inputs, output: prod(output) * inputs[0][-1],
}


def _dims(tensor: Tensor | None) -> list:
    """A tensor's shape with dynamic (-1) dimensions counted as 1; [] for an input left out."""
    return [max(d, 1) for d in tensor.shape] if tensor is not None else []


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value else ""


def _ints(vector) -> list:
    """A flatbuffer int vector read with its ``...AsNumpy()`` accessor (0 when empty) as a list."""
    return vector.tolist() if isinstance(vector, np.ndarray) else []


def _namer(enum):
    """``value -> name`` for a schema enum class (BuiltinOperator, TensorType); unknown values give their number."""
    names = {value: name for name, value in vars(enum).items() if not name.startswith("_")}
    return lambda value: names.get(value, str(value))


def _buffer_bytes(data: bytes, buffer) -> memoryview:
    if buffer.Offset() > 1:  # files over 2 GB keep weights after the flatbuffer, at an offset
        return memoryview(data)[buffer.Offset(): buffer.Offset() + buffer.Size()]
    return memoryview(buffer.DataAsNumpy() if buffer.DataLength() else b"")


def _subgraph(subgraph, buffers: list, op_names: list, type_name) -> Subgraph:
    tensors = [_tensor(i, subgraph.Tensors(i), buffers, type_name) for i in range(subgraph.TensorsLength())]
    lookup = [*tensors, None]  # index -1 marks an optional input left out: it reads None
    tables = map(subgraph.Operators, range(subgraph.OperatorsLength()))
    operators = [Operator(op_names[op.OpcodeIndex()], [lookup[i] for i in _ints(op.InputsAsNumpy())],
                          [lookup[i] for i in _ints(op.OutputsAsNumpy())]) for op in tables]
    return Subgraph(tensors, operators, _ints(subgraph.InputsAsNumpy()), _ints(subgraph.OutputsAsNumpy()))


def _tensor(index: int, tensor, buffers: list, type_name) -> Tensor:
    quant, buffer = tensor.Quantization(), tensor.Buffer()
    return Tensor(
        index=index,
        name=_text(tensor.Name()),
        shape=_ints(tensor.ShapeAsNumpy()),
        type=type_name(tensor.Type()),
        buffer=buffer,
        constant=0 < buffer < len(buffers) and len(buffers[buffer]) > 0,
        scales=quant.ScaleAsNumpy() if quant is not None and quant.ScaleLength() else np.zeros(0),
        zero_points=quant.ZeroPointAsNumpy() if quant is not None and quant.ZeroPointLength() else np.zeros(0),
        quantized_dimension=quant.QuantizedDimension() if quant is not None else 0,
    )
