"""A .tflite's tensors as real numbers: quantizing and dequantizing, reading weights, running with every tensor kept.

>>> quantize(np.array([0.5, -1.0, 9.0]), scale=0.05, zero_point=-128, dtype=np.int8)
array([-118, -128,   52], dtype=int8)
>>> dequantize(np.array([[-118, 10]]), scale=[0.05, 0.1], zero_point=[-128, 0], axis=1)
array([[0.5, 1. ]], dtype=float32)

The tensors are the plain records of :func:`edgesmith.runtime.tflite_file.read_contents`, whose
``scales`` and ``zero_points`` run along ``quantized_dimension`` when there are several.
"""

from __future__ import annotations

import numpy as np

from .interpreter import open_interpreter
from .tflite_file import NUMPY_TYPES

# integer tensor types an activation can be quantized to, with the range they hold
INTEGER_RANGES = {"INT8": (-128, 127), "UINT8": (0, 255), "INT16": (-32768, 32767), "INT4": (-8, 7)}
MAX_DB = 100.0  # the SNR of an exact match (no error at all) is counted as this


def quantize(values, scale: float, zero_point: int, dtype) -> np.ndarray:
    """Real values to integers: ``round(x / scale) + zero_point``, saturated."""
    info = np.iinfo(dtype)
    quantized = np.round(np.asarray(values, dtype=np.float32) / np.float32(scale)) + zero_point
    return np.clip(quantized, info.min, info.max).astype(dtype)


def dequantize(values, scale, zero_point=0, axis: int | None = None) -> np.ndarray:
    """Integers back to real values: ``(q - zero_point) * scale``, as float32; with ``axis``, ``scale`` and
    ``zero_point`` hold one value per slice along it (per-channel quantization)."""
    values = np.asarray(values).astype(np.float32)
    scale, zero_point = np.asarray(scale, dtype=np.float32), np.asarray(zero_point, dtype=np.float32)
    if axis is not None:
        shape = [1] * values.ndim
        shape[axis] = -1
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    return (values - zero_point) * scale


def is_quantized(tensor) -> bool:
    """Whether a tensor holds integers standing for real numbers (an integer type with a scale)."""
    return tensor.type in INTEGER_RANGES and tensor.scales.size > 0


def granularity(tensor) -> str | None:
    """``"per-channel"`` (a scale per slice along ``quantized_dimension``), ``"per-tensor"``, or None (no scale)."""
    return {0: None, 1: "per-tensor"}.get(tensor.scales.size, "per-channel")


def real_values(values: np.ndarray, tensor) -> np.ndarray:
    """A tensor's stored values as real numbers, float32 (per channel when it has several scales)."""
    if not is_quantized(tensor):
        return np.asarray(values, dtype=np.float32)
    zero_points = tensor.zero_points if tensor.zero_points.size else 0
    axis = tensor.quantized_dimension if tensor.scales.size > 1 else None
    return dequantize(values, tensor.scales, zero_points, axis)


def stored_values(values: np.ndarray, tensor) -> np.ndarray:
    """Real values as a (per-tensor) tensor stores them: quantized with its scale and zero point, else float32."""
    if not is_quantized(tensor):
        return np.asarray(values, dtype=np.float32)
    zero_point = int(tensor.zero_points[0]) if tensor.zero_points.size else 0
    return quantize(values, tensor.scales[0], zero_point, NUMPY_TYPES[tensor.type])


def quantization_step(tensor) -> float | None:
    """The scale of a per-tensor quantized tensor (None for float or per-channel ones)."""
    return float(tensor.scales[0]) if is_quantized(tensor) and tensor.scales.size == 1 else None


def quantized_range(tensor) -> list | None:
    """``[low, high]``: the real values a per-tensor quantized tensor can hold (None for float tensors)."""
    scale = quantization_step(tensor)
    if scale is None:
        return None
    low, high = INTEGER_RANGES[tensor.type]
    zero = float(tensor.zero_points[0]) if tensor.zero_points.size else 0.0
    return [scale * (low - zero), scale * (high - zero)]


def constant_weight(op, op_names):
    """The constant weight tensor (second input) of ``op`` when it is one of ``op_names``, else None."""
    weight = op.inputs[1] if op is not None and op.name in op_names and len(op.inputs) > 1 else None
    return weight if weight is not None and weight.constant else None


def constant_values(tensor, buffers: list) -> np.ndarray | None:
    """A constant tensor's values as real numbers, in its own shape (None for a type numpy cannot hold)."""
    dtype = NUMPY_TYPES.get(tensor.type)
    if dtype is None:
        return None
    return real_values(np.frombuffer(bytes(buffers[tensor.buffer]), dtype=dtype).reshape(tensor.shape), tensor)


def graph_output(main, output: int = 0) -> tuple:
    """``(position, tensor, op)`` of the main graph's output number ``output`` (in the graph's own list), looking
    through the DEQUANTIZE that makes it float: the tensor the graph computes it in, and the op (at that position
    in execution order) that writes it."""
    index = main.outputs[output]
    position, op = _writer(main, index)
    source = op.inputs[0] if op is not None and op.name == "DEQUANTIZE" else None
    if source is None or source.constant:
        return position, main.tensors[index], op
    found, writer = _writer(main, source.index)
    return (found, source, writer) if writer is not None else (position, source, op)


def _writer(main, index: int) -> tuple:
    """``(position, op)`` of the op writing tensor ``index`` in execution order; ``(-1, None)`` for none."""
    return next(((position, op) for position, op in enumerate(main.operators)
                 if any(t is not None and t.index == index for t in op.outputs)), (-1, None))


def quantized_input(main):
    """The tensor a QUANTIZE op makes of the graph input, or the input itself."""
    for op in main.operators:
        if op.name == "QUANTIZE" and op.inputs[0] is not None and op.inputs[0].index == main.inputs[0]:
            return op.outputs[0]
    return main.tensors[main.inputs[0]]


class TensorProbe:
    """Runs a .tflite (its bytes) sample by sample with every tensor kept, without a delegate (whose fused nodes
    hide their intermediate tensors), and reads ``tensors`` (``{name: Tensor}`` of graph ``main``) as real
    numbers. After :meth:`run`, ``input_values`` holds the input as the first integer op saw it."""

    def __init__(self, content: bytes, main, tensors: dict):
        self.interpreter = open_interpreter(content, threads=1, xnnpack=False, preserve_all_tensors=True)
        self.interpreter.allocate_tensors()
        self.input = main.tensors[main.inputs[0]]
        self.fed = quantized_input(main)
        self.tensors = tensors
        self.input_values = None

    def run(self, batch: np.ndarray) -> dict:
        """``{name: real values of that tensor over the batch}``."""
        values = {name: [] for name in self.tensors}
        fed = []
        for sample in batch:
            self.interpreter.set_tensor(self.input.index, stored_values(sample[None], self.input))
            self.interpreter.invoke()
            for name, tensor in self.tensors.items():
                values[name].append(self._read(tensor))
            fed.append(self._read(self.fed))
        self.input_values = np.stack(fed)
        return {name: np.stack(found) for name, found in values.items()}

    def _read(self, tensor) -> np.ndarray:
        return real_values(self.interpreter.get_tensor(tensor.index), tensor)[0]


def snr_db(signal, noise) -> float:
    """``10 log10(signal / noise)`` in dB, capped at :data:`MAX_DB` (no error at all).

    >>> snr_db(100.0, 1.0), snr_db(1.0, 0.0)
    (20.0, 100.0)
    """
    if noise <= signal * 10 ** (-MAX_DB / 10):
        return MAX_DB
    if signal <= 0:
        return -MAX_DB
    return float(10 * np.log10(signal / noise))


def channel_snr_db(signal, noise) -> float:
    """The mean, in dB, of the per-channel SNRs of the channels that carry a signal (dead channels left out)."""
    signal, noise = (np.atleast_1d(np.asarray(values, dtype=np.float64)) for values in (signal, noise))
    live = signal > 1e-12 * max(float(signal.max()), 1e-30)
    if not live.any():
        return snr_db(float(signal.sum()), float(noise.sum()))
    return float(np.mean([snr_db(s, n) for s, n in zip(signal[live], noise[live])]))
