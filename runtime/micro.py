"""Run a .tflite in TensorFlow Lite Micro's interpreter and measure the arena it needs, without TensorFlow.

TFLite Micro (TFLM) is the runtime of microcontrollers: one static memory block, the *arena*, holds every
activation and the interpreter's own records. The ``tflite-micro`` wheel (``pip install "edgesmith[mcu]"``)
runs TFLM's reference kernels on this machine, so outputs here are the outputs a device computes.

>>> model = MicroModel("model.tflite")
>>> model.inputs[0]["shape"], model.inputs[0]["dtype"]
([1, 16, 16, 3], 'float32')
>>> model.predict(np.zeros((2, 16, 16, 3), np.float32)).shape
(2, 4)
>>> model.arena["total"] == smallest_arena(Path("model.tflite").read_bytes())
True

The arena is measured twice: TFLM's allocation recording (``arena``, read after one invoke, so the
buffers a first invoke allocates count) and the smallest ``arena_size`` with which the model allocates and
runs (:func:`smallest_arena`, a binary search). Both are host figures (64-bit pointers): a 32-bit device
build needs at most as much for the same kernels; optimized kernels (CMSIS-NN, ESP-NN) may add scratch.

TFLM reports why it refuses a model on file descriptor 2 only, from C++; this module captures it there
and raises a one-line :class:`~edgesmith.runtime.errors.UnsupportedOpError` naming the op.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import ModelLoadError, UnsupportedOpError, first_line
from .tensors import dequantize, quantize
from .tflite_file import custom_op_names, read_tflite_file

INSTALL_HINT = 'TFLite Micro is not installed: pip install "edgesmith[mcu]" (the tflite-micro wheel)'
DEFAULT_ARENA = 16 << 20  # the least arena tried when none is given (see _roomy)


def tflm_runtime():
    """The ``tflite_micro.runtime`` module, or a one-line :class:`ModelLoadError` saying how to install it."""
    try:
        from tflite_micro import runtime
    except ImportError:
        raise ModelLoadError(INSTALL_HINT) from None
    return runtime


class MicroModel:
    """A .tflite loaded in TFLite Micro's interpreter.

    Args:
        model: the .tflite file, or its bytes.
        arena_size: the arena in bytes (default: 16 MiB, then only what is used is reported).

    ``inputs`` and ``outputs`` list ``{"shape", "dtype", "scale", "zero_point"}`` per tensor (scale 0:
    not quantized); ``arena`` is TFLM's allocation record after one invoke.
    """

    def __init__(self, model, arena_size: int | None = None):
        self.data = _model_bytes(model)
        self.name = str(model) if isinstance(model, (str, Path)) else "model"
        self.arena_size = arena_size or _roomy(self.data)
        self._interpreter = create_interpreter(self.data, self.arena_size, self.name)
        self.inputs = _details(self._interpreter.get_input_details, self.name)
        self.outputs = _details(self._interpreter.get_output_details, self.name)
        self._arena = None

    def invoke(self, arrays: list) -> list:
        """Run once on one sample per input, given in the tensors' own dtypes; the raw outputs."""
        for index, array in enumerate(arrays):
            self._interpreter.set_input(np.ascontiguousarray(array), index)
        with fd2_captured() as reason:
            try:
                self._interpreter.invoke()
            except RuntimeError:
                raise ModelLoadError(f"{self.name}: TFLite Micro failed to run it ({first_line(reason())})") from None
        return [np.array(self._interpreter.get_output(i)) for i in range(len(self.outputs))]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Real values in, real values out, one sample at a time, for a single-input single-output model:
        a quantized input is quantized with its own scale and zero point, a quantized output dequantized."""
        out = self.outputs[0]
        rows = []
        for sample in np.asarray(x):
            raw = self.invoke([self.to_input(sample[None])])[0]
            rows.append(dequantize(raw, out["scale"], out["zero_point"]) if out["scale"] else raw.astype(np.float32))
        return np.concatenate(rows).reshape(len(rows), *out["shape"][1:]) if rows else np.zeros((0, *out["shape"][1:]))

    def to_input(self, values: np.ndarray) -> np.ndarray:
        """Real-valued samples as the first input tensor's dtype (quantized with its scale and zero point)."""
        spec = self.inputs[0]
        dtype = np.dtype(spec["dtype"])
        if spec["scale"] and np.issubdtype(dtype, np.integer):
            return quantize(values, spec["scale"], spec["zero_point"], dtype)
        return np.asarray(values).astype(dtype)

    @property
    def arena(self) -> dict:
        """TFLM's allocation record after one invoke on zeros: ``{"total", "head", "tail", "sections"}``
        in bytes; ``sections`` maps each record ("Persistent buffer data"...) to its bytes."""
        if self._arena is None:
            self.invoke([np.zeros(spec["shape"], spec["dtype"]) for spec in self.inputs])
            with fd2_captured() as text:
                self._interpreter.print_allocations()
            self._arena = parse_allocations(text())
        return self._arena


def create_interpreter(data: bytes, arena_size: int, name: str = "model"):
    """A TFLM interpreter with allocation recording; TFLM's refusal as a one-line error naming the op."""
    runtime = tflm_runtime()
    with fd2_captured() as reason:
        try:
            return runtime.Interpreter.from_bytes(data, arena_size=arena_size)
        except (RuntimeError, ValueError) as error:
            failure = error
    if arena_size < _roomy(data) and _works(data, _roomy(data)):  # TFLM blames an op's Prepare when the arena ran out
        raise ModelLoadError(f"{name}: an arena of {arena_size} bytes is too small for it")
    raise refusal(name, data, reason(), failure)


def refusal(name: str, data: bytes, reason: str, error: Exception) -> ModelLoadError:
    """What TFLM's fd-2 text says went wrong, as one line: a missing op, or an op that refused its tensors."""
    missing = re.search(r"Didn't find op for builtin opcode '(\w+)'", reason)
    if missing:
        return UnsupportedOpError(f"{name}: TFLite Micro has no kernel for op {missing.group(1)}")
    if "registration from op code CUSTOM" in reason or "Didn't find op for custom opcode" in reason:
        custom = ", ".join(custom_op_names(data)) or "?"
        return UnsupportedOpError(f"{name}: TFLite Micro has no kernel for custom op(s) {custom}")
    refused = re.search(r"Node (\w+) \(number (\d+)\) failed to prepare", reason)
    if refused:
        cause = next((line for line in reason.splitlines() if "was not true" in line or "not supported" in line.lower()),
                     first_line(reason))
        return UnsupportedOpError(f"{name}: TFLite Micro cannot run op {refused.group(1)} (node {refused.group(2)}): "
                                  f"{_strip_location(cause)}")
    return ModelLoadError(f"{name}: TFLite Micro refused it ({first_line(reason) or error})")


def smallest_arena(data: bytes, upper: int | None = None, granularity: int = 16) -> int:
    """The smallest arena (bytes, a multiple of ``granularity``) in which ``data`` allocates and runs once.

    Each size is tried in a child process: TFLM crashes outright (SIGSEGV) on some arenas that are too
    small, instead of reporting it. ``upper`` must work (default: the recorded total, doubled).
    """
    upper = upper or 2 * MicroModel(data).arena["total"]
    if not _works(data, upper):
        raise ModelLoadError(f"the model does not run in an arena of {upper} bytes")
    low, high = 0, -(-upper // granularity)  # in units of granularity: low fails, high works
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if _works(data, middle * granularity) else (middle, high)
    return high * granularity


def parse_allocations(text: str) -> dict:
    """TFLM's ``print_allocations()`` text as ``{"total", "head", "tail", "sections"}`` (bytes).

    >>> parse_allocations("[RecordingMicroAllocator] Arena allocation total 25904 bytes\\n"
    ...     "[RecordingMicroAllocator] 'Persistent buffer data' used 12848 bytes with alignment overhead")
    {'total': 25904, 'head': None, 'tail': None, 'sections': {'Persistent buffer data': 12848}}
    """
    found = {key: re.search(rf"Arena allocation {key} (\d+) bytes", text) for key in ("total", "head", "tail")}
    if found["total"] is None:
        raise ModelLoadError("TFLite Micro printed no arena allocation record")
    sections = {name: int(size) for name, size in re.findall(r"'([^']+)' used (\d+) bytes", text)}
    return {**{key: int(match.group(1)) if match else None for key, match in found.items()}, "sections": sections}


@contextmanager
def fd2_captured():
    """Capture what C/C++ code writes to file descriptor 2 inside the block; yields a function that returns
    it (call it after the block). Python's ``redirect_stderr`` cannot see these writes."""
    captured = {"text": ""}
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), 2)
        try:
            yield lambda: captured["text"]
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            scratch.seek(0)
            captured["text"] = scratch.read().decode("utf-8", "replace")


# -- internals -------------------------------------------------------------------------------------


def _model_bytes(model) -> bytes:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    return read_tflite_file(model)


def _roomy(data: bytes) -> int:
    """The arena tried when none is given: large enough for any model a microcontroller can hold."""
    return max(DEFAULT_ARENA, 4 * len(data))


def _details(getter, name: str) -> list:
    """Every input (or output) tensor's details, until TFLM says there are no more."""
    found = []
    with fd2_captured():
        while True:
            try:
                details = getter(len(found))
            except (RuntimeError, ValueError, IndexError):
                break
            params = details.get("quantization_parameters") or {}
            scales, zero_points = params.get("scales", []), params.get("zero_points", [])
            found.append({
                "shape": [int(d) for d in details["shape"]],
                "dtype": np.dtype(details["dtype"]).name,
                "scale": float(scales[0]) if len(scales) else 0.0,
                "zero_point": int(zero_points[0]) if len(zero_points) else 0,
            })
    if not found:
        raise ModelLoadError(f"{name}: TFLite Micro reports no tensors")
    return found


def _strip_location(line: str) -> str:
    """``tensorflow/lite/micro/kernels/x.cc:42 cond was not true.`` -> ``cond was not true``."""
    return re.sub(r"^\S+\.(cc|h):\d+\s+", "", line).rstrip(".")


def _try_arena(data: bytes, size: int) -> None:
    """Child process: exit 0 when ``data`` allocates and runs in ``size`` bytes, else 1 (or a crash)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    try:
        interpreter = tflm_runtime().Interpreter.from_bytes(data, arena_size=size)
        for index, spec in enumerate(_details(interpreter.get_input_details, "model")):
            interpreter.set_input(np.zeros(spec["shape"], spec["dtype"]), index)
        interpreter.invoke()
    except Exception:
        os._exit(1)
    os._exit(0)


def _works(data: bytes, size: int) -> bool:
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    child = multiprocessing.get_context(method).Process(target=_try_arena, args=(data, size), daemon=True)
    child.start()
    child.join()
    return child.exitcode == 0
