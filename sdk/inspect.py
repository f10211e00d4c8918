"""Look inside a .tflite file: sizes, dtypes, quantization, ops, weights, delegation, MACs.

Everything is read from the flatbuffer by edgesmith.runtime.tflite_file (no TensorFlow);
only the XNNPACK split loads the model into the LiteRT interpreter, because
which ops a delegate takes is decided by the delegate itself at load time.

>>> from edgesmith.inspect import inspect_model
>>> report = inspect_model("model.tflite")
>>> report["size"]["weights_bytes"], report["macs"], report["xnnpack"]["fallback_ops"]
(1032, 42368, {})
>>> report["ops"]
{'CONV_2D': 1, 'FULLY_CONNECTED': 1, 'MEAN': 1, 'SOFTMAX': 1}
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np

from edgesmith.runtime.errors import EdgesmithError, ModelLoadError, first_line
from edgesmith.runtime.interpreter import delegated_nodes
from edgesmith.runtime.metadata import read_metadata
from edgesmith.runtime.tensors import dequantize, granularity
from edgesmith.runtime.tflite_file import (
    NUMPY_TYPES, Tensor, graph_macs, gzipped_size, histogram, op_histogram, read_contents, read_tflite_file)

def inspect_model(path, *, xnnpack: bool = True) -> dict:
    """Everything ``edgesmith inspect`` shows, as a JSON-friendly dict.

    Args:
        path: the .tflite file.
        xnnpack: also load the model to see which ops XNNPACK takes (slower).
    """
    path = Path(path)
    data = read_tflite_file(path)
    contents, main = _read_contents(path, data)
    metadata_buffers = {buffer for _, buffer in contents.metadata}
    weights = [t for t in main.tensors if t.constant and t.buffer not in metadata_buffers]  # constants, not metadata
    return {
        "path": str(path),
        "size": _size_split(data, contents.buffers, weights, metadata_buffers),
        "inputs": [_describe(main.tensors[i]) for i in main.inputs],
        "outputs": [_describe(main.tensors[i]) for i in _output_order(contents, main)],
        "tensors": {"count": len(main.tensors), "dtypes": dict(Counter(t.type.lower() for t in main.tensors))},
        "quantization": _quantization_summary(main.tensors, weights),
        "ops": op_histogram(data),
        "weights": [_weight_stats(contents.buffers[t.buffer], t) for t in weights],
        "macs": graph_macs(data),
        "xnnpack": xnnpack_split(path) if xnnpack else None,
        "metadata": _metadata(path),
        "metadata_entries": [name for name, _ in contents.metadata],
    }


def _read_contents(path: Path, data: bytes) -> tuple:
    """The file's records and its main subgraph; a one-line error for a damaged flatbuffer or a missing schema."""
    try:
        contents = read_contents(data)
        main = contents.subgraphs[0] if contents else None
    except Exception as error:  # a damaged flatbuffer (or one without a graph) fails anywhere while walking it
        raise ModelLoadError(f"{path}: damaged .tflite flatbuffer ({type(error).__name__}: {error})") from None
    if contents is None:
        raise EdgesmithError("inspecting a .tflite needs ai-edge-litert (its flatbuffer schema)")
    return contents, main


def _size_split(data: bytes, buffers: list, weights: list, metadata_buffers: set) -> dict:
    """Bytes of the file as stored, spent on weights, metadata and the graph itself; then the file after gzip."""
    stored = sum(len(buffers[b]) for b in {t.buffer for t in weights})
    metadata = sum(len(buffers[b]) for b in metadata_buffers) + _appended_zip_bytes(data)
    return {"total_bytes": len(data), "weights_bytes": stored, "metadata_bytes": metadata,
            "graph_bytes": len(data) - stored - metadata, "gzip_bytes": gzipped_size(data)}


def _output_order(contents, main) -> list:
    """The main graph's output tensors in its signature's order (``output_0``, ``output_1``, ...: a Keras model's
    own output order, the order ``edgesmith.runtime.Model`` returns them in), else as the graph lists them."""
    ordered = [index for _, index in contents.signature_outputs]
    return ordered if sorted(ordered) == sorted(main.outputs) else list(main.outputs)


def _describe(tensor: Tensor) -> dict:
    """Name, shape, dtype and quantization kind of an input or output."""
    return {"name": tensor.name, "shape": tensor.shape, "dtype": tensor.type.lower(),
            "quantization": granularity(tensor)}


def _appended_zip_bytes(data: bytes) -> int:
    """Size of a zip appended after the flatbuffer (edgesmith's and TFLite Support's associated files)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            offsets = [info.header_offset for info in archive.infolist()]
    except zipfile.BadZipFile:
        return 0
    return len(data) - min(offsets) if offsets else 0


def _quantization_summary(tensors: list, weights: list) -> dict:
    """How many weight and activation tensors are quantized per channel, per tensor, or not at all."""
    weight_ids = {id(t) for t in weights}
    groups = {"weights": weights, "activations": [t for t in tensors if id(t) not in weight_ids]}
    return {name: dict(Counter(granularity(t) or "float/none" for t in group)) for name, group in groups.items()}


def _weight_stats(raw, tensor: Tensor) -> dict:
    """Size, sparsity and distinct values of one weight tensor whose stored bytes are ``raw``."""
    stats = {"name": tensor.name, "shape": tensor.shape, "dtype": tensor.type.lower(), "bytes": len(raw),
             "quantization": granularity(tensor), "sparsity": None, "unique_values": None}
    dtype = NUMPY_TYPES.get(tensor.type)
    if dtype is None or len(raw) % np.dtype(dtype).itemsize:
        return stats  # packed int4, strings...: sizes only
    values = np.frombuffer(raw, dtype=dtype)
    stats["unique_values"] = int(np.unique(values).size)
    stats["sparsity"] = round(float(np.mean(_is_zero(values, tensor))), 6) if values.size else 0.0
    return stats


def _is_zero(values: np.ndarray, tensor: Tensor) -> np.ndarray:
    """Which stored values mean a real zero (for quantized tensors: the zero point)."""
    zero_points = tensor.zero_points
    if zero_points.size <= 1 or np.all(zero_points == zero_points[0]):
        return values == (zero_points[0] if zero_points.size else 0)
    if int(np.prod(tensor.shape)) != values.size:
        return values == 0
    return dequantize(values.reshape(tensor.shape), 1, zero_points, tensor.quantized_dimension) == 0


# -- XNNPACK delegation ----------------------------------------------------------


def xnnpack_split(path) -> dict:
    """Which ops the XNNPACK delegate takes and which run on LiteRT's own kernels.

    Loads the model with LiteRT's default delegate (XNNPACK), then walks back
    from each DELEGATE node's outputs to its inputs: the original nodes in
    between are the ones it replaced; every other node falls back.
    """
    try:
        nodes = delegated_nodes(Path(path))
    except Exception as error:  # custom ops, a runtime without XNNPACK...: say so, keep the rest
        return {"available": False, "reason": first_line(error)}
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    originals = [n for n in nodes if n["op_name"] != "DELEGATE"]
    taken = _nodes_inside(delegates, originals)
    return {
        "available": True,
        "delegate_nodes": len(delegates),
        "delegated_ops": histogram(n["op_name"] for n in originals if n["index"] in taken),
        "fallback_ops": histogram(n["op_name"] for n in originals if n["index"] not in taken),
        "delegated_fraction": round(len(taken) / len(originals), 4) if originals else 0.0,
    }


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


def _metadata(path: Path):
    try:
        return read_metadata(path)
    except EdgesmithError as error:
        return {"error": str(error)}
