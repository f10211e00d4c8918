"""Look inside a .tflite file: sizes, dtypes, quantization, ops, weights, delegation, MACs.

Everything is read from the flatbuffer with the LiteRT schema (no TensorFlow);
only the XNNPACK split loads the model into the LiteRT interpreter, because
which ops a delegate takes is decided by the delegate itself at load time.

>>> from edgesmith.inspect import inspect_model
>>> report = inspect_model("model.tflite")
>>> report["size"]["weights_bytes"], report["macs"], report["xnnpack"]["fallback_ops"]
(12544, 1520000, {})
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np

from edgesmith.runtime.errors import EdgesmithError, ModelLoadError
from edgesmith.runtime.metadata import read_metadata
from edgesmith.runtime.tflite_file import check_tflite_file, graph_macs, op_histogram, schema

# flatbuffer TensorType name -> numpy dtype, for the types whose values we decode
NUMPY_TYPES = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64, "INT8": np.int8, "UINT8": np.uint8,
    "INT16": np.int16, "UINT16": np.uint16, "INT32": np.int32, "UINT32": np.uint32, "INT64": np.int64,
    "UINT64": np.uint64, "BOOL": np.bool_,
}


def inspect_model(path, *, xnnpack: bool = True) -> dict:
    """Everything ``edgesmith inspect`` shows, as a JSON-friendly dict.

    Args:
        path: the .tflite file.
        xnnpack: also load the model to see which ops XNNPACK takes (slower).
    """
    path = Path(path)
    check_tflite_file(path)
    graph = Graph(path)
    weights = graph.weight_tensors()
    return {
        "path": str(path),
        "size": graph.size_split(),
        "inputs": [graph.describe(i) for i in graph.inputs],
        "outputs": [graph.describe(i) for i in graph.outputs],
        "tensors": {"count": len(graph.tensors), "dtypes": dict(Counter(t["dtype"] for t in graph.tensors))},
        "quantization": _quantization_summary(graph.tensors, weights),
        "ops": op_histogram(path),
        "weights": [_weight_stats(graph, t) for t in weights],
        "macs": graph_macs(path),
        "xnnpack": xnnpack_split(path) if xnnpack else None,
        "metadata": _metadata(path),
        "metadata_entries": graph.metadata_names,
    }


class Graph:
    """The primary subgraph of a .tflite file, as plain Python data."""

    def __init__(self, path: Path):
        fb = schema()
        if fb is None:
            raise EdgesmithError("inspecting a .tflite needs ai-edge-litert (its flatbuffer schema)")
        self.data = path.read_bytes()
        try:
            model = fb.Model.GetRootAs(self.data, 0)
            self._read(fb, model)
        except Exception as error:  # a damaged flatbuffer fails anywhere while walking it
            raise ModelLoadError(f"{path}: damaged .tflite flatbuffer ({type(error).__name__}: {error})") from None

    def _read(self, fb, model) -> None:
        type_names = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
        self.buffers = [self._buffer_bytes(model.Buffers(i)) for i in range(model.BuffersLength())]
        self.metadata_names, self.metadata_buffers = [], set()
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            self.metadata_names.append(entry.Name().decode() if entry.Name() else "")
            self.metadata_buffers.add(entry.Buffer())
        subgraph = model.Subgraphs(0)
        self.tensors = [_tensor(subgraph.Tensors(i), type_names) for i in range(subgraph.TensorsLength())]
        self.inputs = list(subgraph.InputsAsNumpy()) if subgraph.InputsLength() else []
        self.outputs = list(subgraph.OutputsAsNumpy()) if subgraph.OutputsLength() else []

    def _buffer_bytes(self, buffer) -> bytes:
        if buffer.Offset() > 1:  # large models keep weights after the flatbuffer
            return self.data[buffer.Offset(): buffer.Offset() + buffer.Size()]
        return buffer.DataAsNumpy().tobytes() if buffer.DataLength() else b""

    def weight_tensors(self) -> list:
        """Tensors whose values are stored in the file (constants), excluding metadata."""
        return [t for t in self.tensors if t["buffer"] > 0 and self.buffers[t["buffer"]]
                and t["buffer"] not in self.metadata_buffers]

    def size_split(self) -> dict:
        """Bytes of the file spent on weights, metadata and the graph itself."""
        weight_buffers = {t["buffer"] for t in self.weight_tensors()}
        weights = sum(len(self.buffers[b]) for b in weight_buffers)
        metadata = sum(len(self.buffers[b]) for b in self.metadata_buffers) + _appended_zip_bytes(self.data)
        return {"total_bytes": len(self.data), "weights_bytes": weights, "metadata_bytes": metadata,
                "graph_bytes": len(self.data) - weights - metadata}

    def describe(self, index: int) -> dict:
        tensor = self.tensors[index]
        return {key: tensor[key] for key in ("name", "shape", "dtype")} | {"quantization": _quant_kind(tensor)}


def _tensor(tensor, type_names: dict) -> dict:
    quant = tensor.Quantization()
    scales = quant.ScaleAsNumpy() if quant is not None and quant.ScaleLength() else np.zeros(0)
    zero_points = quant.ZeroPointAsNumpy() if quant is not None and quant.ZeroPointLength() else np.zeros(0)
    return {
        "name": tensor.Name().decode(errors="replace") if tensor.Name() else "",
        "shape": [int(d) for d in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else [],
        "dtype": type_names.get(tensor.Type(), str(tensor.Type())).lower(),
        "buffer": tensor.Buffer(),
        "scales": scales,
        "zero_points": zero_points,
        "axis": quant.QuantizedDimension() if quant is not None else 0,
        "sparse": tensor.Sparsity() is not None,
    }


def _appended_zip_bytes(data: bytes) -> int:
    """Size of a zip appended after the flatbuffer (edgesmith's and TFLite Support's associated files)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            offsets = [info.header_offset for info in archive.infolist()]
    except zipfile.BadZipFile:
        return 0
    return len(data) - min(offsets) if offsets else 0


def _quant_kind(tensor: dict) -> str | None:
    if tensor["scales"].size == 0:
        return None
    return "per-channel" if tensor["scales"].size > 1 else "per-tensor"


def _quantization_summary(tensors: list, weights: list) -> dict:
    weight_ids = {id(t) for t in weights}

    def kinds(group):
        return dict(Counter(_quant_kind(t) or "float/none" for t in group))

    return {
        "weights": kinds(weights),
        "activations": kinds([t for t in tensors if id(t) not in weight_ids]),
    }


def _weight_stats(graph: Graph, tensor: dict) -> dict:
    raw = graph.buffers[tensor["buffer"]]
    stats = {"name": tensor["name"], "shape": tensor["shape"], "dtype": tensor["dtype"], "bytes": len(raw),
             "quantization": _quant_kind(tensor), "sparsity": None, "unique_values": None}
    dtype = NUMPY_TYPES.get(tensor["dtype"].upper())
    if dtype is None or len(raw) % np.dtype(dtype).itemsize:
        return stats  # packed int4, strings...: sizes only
    values = np.frombuffer(raw, dtype=dtype)
    stats["unique_values"] = int(np.unique(values).size)
    stats["sparsity"] = round(float(np.mean(_is_zero(values, tensor))), 6) if values.size else 0.0
    return stats


def _is_zero(values: np.ndarray, tensor: dict) -> np.ndarray:
    """Which stored values mean a real zero (for quantized tensors: the zero point)."""
    zero_points = tensor["zero_points"]
    if zero_points.size <= 1 or np.all(zero_points == zero_points[0]):
        return values == (zero_points[0] if zero_points.size else 0)
    shape = tensor["shape"]
    if int(np.prod(shape)) != values.size:
        return values == 0
    per_axis = [1] * len(shape)
    per_axis[tensor["axis"]] = zero_points.size
    return values.reshape(shape) == zero_points.reshape(per_axis)


# -- XNNPACK delegation ----------------------------------------------------------


def xnnpack_split(path) -> dict:
    """Which ops the XNNPACK delegate takes and which run on LiteRT's own kernels.

    Loads the model with LiteRT's default delegate (XNNPACK), then walks back
    from each DELEGATE node's outputs to its inputs: the original nodes in
    between are the ones it replaced; every other node falls back.
    """
    try:
        nodes = _nodes_after_delegation(Path(path))
    except Exception as error:  # custom ops, a runtime without XNNPACK...: say so, keep the rest
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return {"available": False, "reason": message}
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    originals = [n for n in nodes if n["op_name"] != "DELEGATE"]
    taken = _nodes_inside(delegates, originals)
    return {
        "available": True,
        "delegate_nodes": len(delegates),
        "delegated_ops": _histogram(n["op_name"] for n in originals if n["index"] in taken),
        "fallback_ops": _histogram(n["op_name"] for n in originals if n["index"] not in taken),
        "delegated_fraction": round(len(taken) / len(originals), 4) if originals else 0.0,
    }


def _nodes_after_delegation(path: Path) -> list:
    from edgesmith.runtime.model import interpreter_class

    interpreter_type, _ = interpreter_class("auto")
    interpreter = interpreter_type(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    return [{"index": n["index"], "op_name": n["op_name"], "inputs": [int(i) for i in n["inputs"]],
             "outputs": [int(i) for i in n["outputs"]]} for n in interpreter._get_ops_details()]


def _nodes_inside(delegates: list, originals: list) -> set:
    producer = {t: n for n in originals for t in n["outputs"]}
    taken = set()
    for delegate in delegates:
        boundary = set(delegate["inputs"])
        pending = list(delegate["outputs"])
        while pending:
            node = producer.get(pending.pop())
            if node is None or node["index"] in taken:
                continue
            taken.add(node["index"])
            pending += [t for t in node["inputs"] if t >= 0 and t not in boundary]
    return taken


def _histogram(names) -> dict:
    return dict(sorted(Counter(names).items(), key=lambda item: (-item[1], item[0])))


def _metadata(path: Path):
    try:
        return read_metadata(path)
    except EdgesmithError as error:
        return {"error": str(error)}
