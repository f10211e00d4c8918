"""Checks and reads on the .tflite file itself, before any interpreter sees it.

The flatbuffer is read with the LiteRT schema shipped in ``ai_edge_litert``
when it is installed. Hosts with only ``tflite_runtime`` (32-bit ARM) lack the
schema; there, the functions that need it return nothing and callers fall
back to the appended zip (see :mod:`edgesmith.runtime.metadata`).
"""

from __future__ import annotations

from pathlib import Path

from .errors import ModelLoadError

TFLITE_IDENTIFIER = b"TFL3"
_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


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


def read_model(data: bytes):
    """Parse flatbuffer bytes into the schema's object API (``ModelT``), or None."""
    fb = schema()
    if fb is None:
        return None
    return fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))


def custom_op_names(path: Path) -> list:
    """Names of the custom ops the graph uses (empty when unknown)."""
    fb = schema()
    if fb is None:
        return []
    try:
        model = fb.Model.GetRootAs(path.read_bytes(), 0)
        codes = (model.OperatorCodes(i) for i in range(model.OperatorCodesLength()))
        return sorted({code.CustomCode().decode() for code in codes if code.CustomCode()})
    except Exception:  # a damaged file: the interpreter's own message is the better one
        return []


def op_histogram(path: Path) -> dict | None:
    """How often each op type appears in the graph (all subgraphs), or None without the schema."""
    fb = schema()
    if fb is None:
        return None
    names = {value: name for name, value in vars(fb.BuiltinOperator).items() if not name.startswith("_")}
    model = fb.Model.GetRootAs(path.read_bytes(), 0)
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        custom = code.CustomCode()
        codes.append(custom.decode() if custom else names.get(builtin, str(builtin)))
    counts: dict = {}
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            name = codes[subgraph.Operators(o).OpcodeIndex()]
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def weight_bytes(path: Path) -> dict | None:
    """Bytes of the constant tensors (weights, every subgraph, each buffer once) by element type, and the float32
    ones by name.

    ``{"by_type": {"INT8": 15360, "FLOAT32": 512, ...}, "float32": {tensor name: bytes, ...}}``, None without the
    schema. What an int8 recipe left in float shows here, whatever the passes reported.
    """
    fb = schema()
    if fb is None:
        return None
    model = fb.Model.GetRootAs(Path(path).read_bytes(), 0)
    names = {value: name for name, value in vars(fb.TensorType).items() if not name.startswith("_")}
    by_type, floats, seen = {}, {}, set()
    tensors = (model.Subgraphs(s).Tensors(t) for s in range(model.SubgraphsLength())
               for t in range(model.Subgraphs(s).TensorsLength()))
    for tensor in tensors:
        if tensor.Buffer() in seen:
            continue
        seen.add(tensor.Buffer())
        size = model.Buffers(tensor.Buffer()).DataLength() if 0 < tensor.Buffer() < model.BuffersLength() else 0
        if size == 0:
            size = _offset_buffer_size(model, tensor.Buffer())
        if size:
            kind = names.get(tensor.Type(), str(tensor.Type()))
            by_type[kind] = by_type.get(kind, 0) + size
            if kind == "FLOAT32":
                floats[tensor.Name().decode("utf-8", "replace")] = size
    return {"by_type": by_type, "float32": dict(sorted(floats.items(), key=lambda item: -item[1]))}


def _offset_buffer_size(model, index: int) -> int:
    """Size of a buffer stored outside the flatbuffer (files over 2 GB keep weights at an offset)."""
    if not 0 < index < model.BuffersLength():
        return 0
    return int(model.Buffers(index).Size()) if hasattr(model.Buffers(index), "Size") else 0


def graph_macs(path: Path) -> int | None:
    """Multiply-accumulates per inference of the main subgraph, from tensor shapes.

    Counts CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV and
    BATCH_MATMUL, the ops that carry nearly all the arithmetic of vision and
    audio models. Dynamic dimensions count as 1. None without the schema.
    """
    fb = schema()
    if fb is None:
        return None
    model = fb.Model.GetRootAs(Path(path).read_bytes(), 0)
    builtin = fb.BuiltinOperator
    subgraph = model.Subgraphs(0)

    def shape(tensor_index: int) -> list:
        return [max(int(d), 1) for d in subgraph.Tensors(tensor_index).ShapeAsNumpy()] if tensor_index >= 0 else []

    def product(values) -> int:
        total = 1
        for value in values:
            total *= value
        return total

    macs = 0
    for o in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(o)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        inputs, outputs = op.InputsAsNumpy(), op.OutputsAsNumpy()
        if kind == builtin.CONV_2D:
            macs += product(shape(outputs[0])) * product(shape(inputs[1])[1:])
        elif kind == builtin.DEPTHWISE_CONV_2D:
            macs += product(shape(outputs[0])) * product(shape(inputs[1])[1:3])
        elif kind == builtin.FULLY_CONNECTED:
            macs += product(shape(outputs[0])) * shape(inputs[1])[-1]
        elif kind == builtin.TRANSPOSE_CONV:
            macs += product(shape(inputs[2])) * product(shape(inputs[1])[:3])
        elif kind == builtin.BATCH_MATMUL:
            macs += product(shape(outputs[0])) * shape(inputs[0])[-1]
    return macs
