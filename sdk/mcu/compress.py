"""TFLite Micro's lookup-table weight compression: kernels with few distinct values stored as indices.

A kernel the ``cluster`` pass made holds at most 16 distinct values per output channel (kept through QAT
and int8), so each weight can be stored as a 4-bit index into a small table of values. TFLM's compression
(the ``tflite-micro`` wheel's ``compression`` module) writes such a model: each compressed kernel becomes
packed indices plus its tables, and a ``TFLM_DECODE`` op expands it into the arena before the op that uses
it. Flash shrinks; the arena grows by the decoded kernels; LiteRT cannot run the result, TFLM can.

>>> from edgesmith.mcu.compress import plan_compression
>>> [(row["op"], row["values"], row["chosen"]) for row in plan_compression(Path("model.tflite").read_bytes())]
[('CONV_2D', 216, False), ('FULLY_CONNECTED', 32, False)]

(An unclustered float model: 216 distinct values need more than the 7 index bits TFLM allows; 32 would
take 5 bits, but for 32 weights the tables and the DECODE op cost more than they save.)

How each kernel is compressed:

- the index width is the fewest bits that number its distinct values (per channel or for the whole
  tensor): 16 values -> 4 bits; more than 128 -> not compressed;
- per-channel or per-tensor comes from the tensor's own quantization: one table per channel along
  ``quantized_dimension`` when it has a scale per channel, one table otherwise. TFLM decodes by the
  tensor's quantization, so the other choice writes a model that runs and computes wrong outputs;
- a kernel is left as it is when its tables, indices and the DECODE op's tensors take more bytes than
  the kernel does (measured by compressing it alone);
- the compressed model must compute, in TFLM, outputs bit-identical to the original's on the samples
  given; otherwise nothing is written (:class:`~edgesmith.runtime.errors.RunFailedError`).
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from pathlib import Path

import numpy as np

from edgesmith.runtime.errors import InputError, ModelLoadError, RunFailedError
from edgesmith.runtime.atomic_write import atomic_write_bytes
from edgesmith.runtime.micro import INSTALL_HINT, MicroModel
from edgesmith.runtime.tflite_file import read_contents, read_tflite_file

# the ops whose TFLM kernels read a compressed weight (TFLM's docs/compression.md), and the input that is it
WEIGHT_INPUTS = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "TRANSPOSE_CONV": 1}
MAX_INDEX_BITS = 7  # TFLM's lookup tables take 1..7-bit indices
REPORTED = ("name", "op", "elements", "values", "index_bits", "mode", "axis", "bytes", "saved_bytes")  # per tensor
_DTYPES = {"INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
           "FLOAT32": np.float32, "BOOL": np.bool_}


class NothingToCompressError(InputError):
    """No weight tensor of the model would get smaller with TFLM's lookup tables."""


def plan_compression(data: bytes) -> list:
    """Every weight tensor of .tflite bytes that TFLM could decode, with what compressing it would give.

    One row per tensor: ``subgraph``, ``tensor``, ``name``, ``op``, ``elements``, ``bytes``, ``values``
    (distinct values: the most in one channel, per-channel), ``mode`` (``per-channel`` or ``per-tensor``),
    ``axis``, ``index_bits``, ``estimated_bytes`` (indices, tables and the DECODE op's tensor records) and
    ``chosen``, with ``reason`` when not. ``chosen`` rows are worth measuring; :func:`compress_tflm`
    measures them.
    """
    contents = read_contents(data)
    rows = []
    for number, subgraph in enumerate(contents.subgraphs):
        uses = {}
        for op in subgraph.operators:
            for position, tensor in enumerate(op.inputs):
                if tensor is not None:
                    uses.setdefault(tensor.index, []).append((op.name, position))
        for index, consumers in uses.items():
            tensor = subgraph.tensors[index]
            first = consumers[0][0]
            if not tensor.constant or WEIGHT_INPUTS.get(first) != consumers[0][1] or tensor.type not in _DTYPES:
                continue
            rows.append(_plan_row(number, tensor, consumers, contents.buffers[tensor.buffer], subgraph))
    return rows


def compress_tflm(model, out, inputs: list | None = None, before: dict | None = None) -> dict:
    """Write ``model`` (.tflite) with its few-valued kernels compressed for TFLite Micro to ``out``.

    Args:
        model: the .tflite file.
        out: the compressed .tflite to write (written beside, then renamed into place).
        inputs: samples to compare outputs on: a list of samples, each a list with one array per input in
            the input tensors' dtypes (default: 16 seeded random samples over each input's range).
        before: the original's :func:`edgesmith.mcu.fit.measure_memory` figures, if already measured.

    Returns ``{"file", "tensors", "skipped", "before", "after", "check"}``; ``before`` and ``after`` are
    :func:`~edgesmith.mcu.fit.measure_memory` figures. Raises :class:`InputError` when there is nothing to
    compress (:class:`NothingToCompressError`), :class:`RunFailedError` (nothing written) when outputs differ.
    """
    from edgesmith.mcu.fit import measure_memory

    path = Path(model)
    data = read_tflite_file(path)
    plan = plan_compression(data)
    chosen = [row for row in plan if row["chosen"]]
    for row in chosen:  # measured: compressed alone, how many bytes the file gains or loses
        row["saved_bytes"] = len(data) - len(_compress(data, [row]))
        if row["saved_bytes"] <= 0:
            row.update(chosen=False, reason=f"tables cost more than they save ({-row['saved_bytes']} B more)")
    chosen = [row for row in plan if row["chosen"]]
    if not chosen:
        raise NothingToCompressError(f"{path}: nothing to compress: {_nothing_reason(plan)}")
    compressed = _compress(data, chosen)
    micro, packed = MicroModel(data, arena_size=None), MicroModel(compressed, arena_size=None)
    samples = inputs if inputs is not None else random_inputs(micro.inputs)
    differing = sum(not all(np.array_equal(a, b) for a, b in zip(micro.invoke(s), packed.invoke(s)))
                    for s in samples)
    if differing:
        raise RunFailedError(f"{path}: the compressed model's outputs differ from the original's in TFLite Micro "
                             f"on {differing} of {len(samples)} samples; nothing written")
    atomic_write_bytes(Path(out), compressed)
    skipped = [{"name": row["name"], "op": row["op"], "reason": row["reason"]} for row in plan if not row["chosen"]]
    return {"file": str(out), "tensors": [{key: row[key] for key in REPORTED} for row in chosen], "skipped": skipped,
            "before": before or measure_memory(data), "after": measure_memory(compressed),
            "check": {"samples": len(samples), "inputs": "random" if inputs is None else "data", "identical": True}}


def random_inputs(specs: list, count: int = 16, seed: int = 0) -> list:
    """``count`` samples, each one array per input ``spec`` (:attr:`MicroModel.inputs`), uniform over an
    integer type's range or in -1..1 for floats.

    >>> [a.dtype.name for a in random_inputs([{"shape": [1, 4], "dtype": "int8"}], count=1)[0]]
    ['int8']
    """
    rng = np.random.default_rng(seed)

    def draw(spec) -> np.ndarray:
        dtype = np.dtype(spec["dtype"])
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            return rng.integers(info.min, info.max, spec["shape"], endpoint=True).astype(dtype)
        return rng.uniform(-1, 1, spec["shape"]).astype(dtype)

    return [[draw(spec) for spec in specs] for _ in range(count)]


# -- internals -------------------------------------------------------------------------------------


def _plan_row(subgraph: int, tensor, consumers: list, buffer, graph) -> dict:
    dtype = np.dtype(_DTYPES[tensor.type])
    values = np.frombuffer(buffer, dtype)
    row = {"subgraph": subgraph, "tensor": tensor.index, "name": tensor.name, "op": consumers[0][0],
           "elements": int(values.size), "bytes": len(buffer), "chosen": False}
    per_channel = len(tensor.scales) > 1
    axis = tensor.quantized_dimension if per_channel else None
    row.update(mode="per-channel" if per_channel else "per-tensor", axis=axis)
    if values.size != int(np.prod(tensor.shape or [1])):
        return {**row, "values": None, "index_bits": None, "reason": "its buffer does not match its shape"}
    values = values.reshape(tensor.shape)
    slices = list(np.moveaxis(values, axis, 0)) if per_channel else [values]
    count = max(len(np.unique(piece)) for piece in slices)
    bits = max(1, math.ceil(math.log2(count))) if count > 1 else 1
    row.update(values=count, index_bits=bits)
    if any(WEIGHT_INPUTS.get(name) != position for name, position in consumers):
        return {**row, "reason": "another op reads it as something other than its weights"}
    if tensor.index in graph.outputs:
        return {**row, "reason": "it is a graph output"}
    if bits > MAX_INDEX_BITS:
        return {**row, "reason": f"{count} distinct values{' in a channel' if per_channel else ''}: more than "
                                 f"{2 ** MAX_INDEX_BITS} (cluster it first)"}
    if per_channel and axis not in (0, values.ndim - 1):
        return {**row, "reason": f"per-channel along axis {axis}: TFLM decodes along the first or last axis only"}
    tables = 16 + len(slices) * count * dtype.itemsize  # decode header + one table per channel
    records = len(slices) * 12 + 2 * len(tensor.name) + 160  # the decoded tensor's copy of the quantization, names
    row["estimated_bytes"] = math.ceil(values.size * bits / 8) + tables + records
    if row["estimated_bytes"] >= len(buffer):
        return {**row, "reason": f"tables cost more than they save: about {row['estimated_bytes']} B for "
                                 f"{len(buffer)} B"}
    return {**row, "chosen": True, "reason": None}


def _compress(data: bytes, rows: list) -> bytes:
    try:
        from tflite_micro import compression
        from tflite_micro.tensorflow.lite.micro.compression.spec import PerChannel, PerTensor
    except ImportError:
        raise ModelLoadError(INSTALL_HINT) from None
    builder = compression.SpecBuilder()
    for row in rows:
        mode = PerChannel(axis=row["axis"]) if row["mode"] == "per-channel" else PerTensor()
        builder.add_tensor(subgraph=row["subgraph"], tensor=row["tensor"]).with_lut(row["index_bits"], mode)
    # the wheel warns (warnings, and print to stderr) about tensors that grow; the plan reports those itself
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        return bytes(compression.compress(data, builder.build()))


def _nothing_reason(plan: list) -> str:
    if not plan:
        return "it has no CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED or TRANSPOSE_CONV weights"
    many = sum(1 for row in plan if (row.get("index_bits") or 99) > MAX_INDEX_BITS)
    costly = sum(1 for row in plan if "cost more" in (row.get("reason") or ""))
    return (f"of {len(plan)} weight tensor(s), {many} have more than {2 ** MAX_INDEX_BITS} distinct values per "
            f"table and {costly} are too small for the tables to pay off (cluster the model: the cluster pass or the "
            "mcu-smallest-flash recipe)")
