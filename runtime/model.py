"""Run any .tflite model from float numpy arrays, without TensorFlow.

>>> from edgesmith.runtime import Model
>>> model = Model("model.tflite", threads=4)
>>> model.inputs[0].shape, model.backend
((1, 16, 16, 3), 'ai_edge_litert')
>>> images = np.random.default_rng(0).uniform(0, 1, (5, 16, 16, 3))
>>> probabilities = model.predict(images)          # float in, float out, any batch size
>>> probabilities.shape, probabilities.dtype
((5, 4), dtype('float32'))

Quantized (int8/uint8/int16) inputs are quantized with the tensor's own scale
and zero-point, and quantized outputs are dequantized, so callers always deal
in real values. Inputs may be given in order, by name, with any batch size,
and with any shape a dynamic input accepts.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import InputError, ModelLoadError, UnsupportedOpError, first_line
from .interpreter import BACKENDS, interpreter_class, open_interpreter, output_details  # noqa: F401 (BACKENDS: imported from here)
from .metadata import read_metadata
from .tensors import dequantize, quantize
from .tflite_file import check_tflite_file, custom_op_names, op_histogram


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model, as the interpreter reports it."""

    name: str
    index: int
    shape: tuple
    shape_signature: tuple
    dtype: np.dtype
    scale: float
    zero_point: int
    per_channel: bool

    @property
    def quantized(self) -> bool:
        """True when values are stored as integers with a scale and zero-point."""
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)

    def as_dict(self) -> dict:
        """A JSON-friendly description."""
        return {
            "name": self.name,
            "shape": list(self.shape),
            "shape_signature": list(self.shape_signature),
            "dtype": self.dtype.name,
            "quantization": {"scale": self.scale, "zero_point": self.zero_point, "per_channel": self.per_channel}
            if self.quantized else None,
        }


def _spec_from_details(details: Mapping[str, Any]) -> TensorSpec:
    params = details.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", []), dtype=np.float64)
    zero_points = np.asarray(params.get("zero_points", []), dtype=np.int64)
    scale, zero_point = details.get("quantization", (0.0, 0))
    if scales.size:
        scale, zero_point = float(scales[0]), int(zero_points[0])
    return TensorSpec(
        name=details["name"], index=int(details["index"]), shape=tuple(int(d) for d in details["shape"]),
        shape_signature=tuple(int(d) for d in details.get("shape_signature", details["shape"])),
        dtype=np.dtype(details["dtype"]), scale=float(scale), zero_point=int(zero_point), per_channel=scales.size > 1)


def _load_error(path: Path, exc: Exception) -> ModelLoadError:
    message = first_line(exc)
    custom = re.findall(r"unresolved custom op: (\w+)", str(exc)) or custom_op_names(path)
    if custom and ("custom op" in str(exc) or "failed to prepare" in str(exc)):
        return UnsupportedOpError(f"{path}: needs custom op(s) this runtime lacks: {', '.join(sorted(set(custom)))}")
    return ModelLoadError(f"{path}: LiteRT could not load it ({message})")


class Model:
    """A loaded .tflite model that takes and returns float numpy arrays.

    Args:
        path: the .tflite file.
        threads: CPU threads for the interpreter (None lets LiteRT choose).
        backend: ``"auto"`` (ai_edge_litert, then tflite_runtime, then
            tensorflow.lite) or one of those names.
    """

    def __init__(self, path, threads: int | None = None, backend: str = "auto"):
        self.path = Path(path)
        check_tflite_file(self.path)
        if threads is not None and threads < 1:
            raise InputError(f"threads must be >= 1, got {threads}")
        self.backend = interpreter_class(backend)[1]
        self.threads = threads
        started = time.perf_counter()
        try:
            self._interpreter = open_interpreter(self.path, threads=threads, backend=self.backend)
        except (ValueError, RuntimeError) as exc:
            raise _load_error(self.path, exc) from None
        self.inputs = [_spec_from_details(d) for d in self._interpreter.get_input_details()]
        self.outputs = [_spec_from_details(d) for d in output_details(self._interpreter)]
        self._allocated_shapes = self._allocate_if_static()
        self.init_ms = (time.perf_counter() - started) * 1000.0
        self._input_by_name = {spec.name: spec for spec in self.inputs}
        self._validated = None  # (shape, dtype) of the last single input that passed checks

    def _allocate_if_static(self) -> list | None:
        """Allocate now unless an input is dynamic; dynamic models allocate on first use."""
        try:
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            if any(-1 in spec.shape_signature for spec in self.inputs) and "custom op" not in str(exc):
                return None
            raise _load_error(self.path, exc) from None
        return [spec.shape for spec in self.inputs]

    # -- running ------------------------------------------------------------

    def predict(self, inputs, as_dict: bool = False):
        """Run the model on real-valued inputs and return real-valued outputs.

        Args:
            inputs: one array (single-input models), a sequence of arrays in
                input order, or a mapping from input name to array. The
                batch dimension may be any size.
            as_dict: return ``{output name: array}`` instead of the default
                (one array for single-output models, else a list in order).
        """
        if type(inputs) is np.ndarray and (inputs.shape, inputs.dtype) == self._validated:
            arrays = [inputs]  # same shape and dtype as last call: already checked and sized
        else:
            arrays = self._arrays_in_order(inputs)
            if not self._resize_for([array.shape for array in arrays]):
                return self._predict_in_slices(arrays, as_dict)
            if len(arrays) == 1:
                self._validated = (arrays[0].shape, arrays[0].dtype)
        self.set_inputs(arrays)
        self.invoke()
        return self.get_outputs(as_dict)

    def set_inputs(self, arrays: Sequence[np.ndarray]) -> None:
        """Quantize or cast each array to its input tensor and copy it in."""
        for spec, array in zip(self.inputs, arrays):
            self._interpreter.set_tensor(spec.index, _to_tensor_dtype(spec, array))

    def invoke(self) -> None:
        """Run the graph once on the inputs already set."""
        self._interpreter.invoke()

    def get_outputs(self, as_dict: bool = False):
        """Copy out every output, dequantized to float when it is quantized."""
        values = [_from_tensor_dtype(spec, self._interpreter.get_tensor(spec.index)) for spec in self.outputs]
        return self._shaped(values, as_dict)

    def _shaped(self, values: list, as_dict: bool):
        """Outputs in order as ``{name: array}``, or one array for a single output, else the list."""
        if as_dict:
            return {spec.name: value for spec, value in zip(self.outputs, values)}
        return values[0] if len(values) == 1 else values

    def prepare(self, inputs) -> list:
        """Validate inputs and size the interpreter for them; return the arrays.

        Benchmarks call this once, then time ``set_inputs``/``invoke``/``get_outputs``.
        """
        arrays = self._arrays_in_order(inputs)
        if not self._resize_for([a.shape for a in arrays]):
            raise InputError(f"{self.path.name}: cannot resize inputs to {[list(a.shape) for a in arrays]}; "
                             "give one sample at a time")
        return arrays

    # -- input handling -------------------------------------------------------

    def _arrays_in_order(self, inputs) -> list:
        if isinstance(inputs, Mapping):
            if set(inputs) != set(self._input_by_name):
                raise InputError(f"input names must be {sorted(self._input_by_name)}; got {sorted(inputs)}")
            inputs = [inputs[spec.name] for spec in self.inputs]
        elif isinstance(inputs, (list, tuple)) and (len(self.inputs) > 1
                                                     or (len(inputs) == 1 and isinstance(inputs[0], np.ndarray))):
            if len(inputs) != len(self.inputs):
                raise InputError(f"model takes {len(self.inputs)} inputs, got {len(inputs)}")
        else:
            if len(self.inputs) != 1:
                raise InputError(f"model takes {len(self.inputs)} inputs ({', '.join(s.name for s in self.inputs)}); "
                                 "pass a list or a dict")
            inputs = [inputs]
        arrays = [np.asarray(value) for value in inputs]
        for spec, array in zip(self.inputs, arrays):
            _check_shape(spec, array)
        return arrays

    def _resize_for(self, shapes: list) -> bool:
        """Resize inputs to ``shapes`` if needed; False if the graph refuses."""
        if shapes == self._allocated_shapes:
            return True
        self._validated = None
        try:
            for spec, shape in zip(self.inputs, shapes):
                self._interpreter.resize_tensor_input(spec.index, list(shape), strict=False)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError):
            self._allocated_shapes = None
            return False
        self._allocated_shapes = list(shapes)
        return True

    def _predict_in_slices(self, arrays: list, as_dict: bool):
        """Fallback for graphs that cannot be resized: run one sample at a time."""
        batch = arrays[0].shape[0]
        single = [a[:1].shape for a in arrays]
        if batch <= 1 or not self._resize_for(single):
            raise InputError(f"{self.path.name}: the graph rejects input shape(s) {[list(a.shape) for a in arrays]}; "
                             f"expected {self._expected_shapes()}")
        per_sample = []
        for i in range(batch):
            self.set_inputs([a[i : i + 1] for a in arrays])
            self.invoke()
            per_sample.append(self.get_outputs(as_dict=True))
        return self._shaped([np.concatenate([s[spec.name] for s in per_sample]) for spec in self.outputs], as_dict)

    def _expected_shapes(self) -> str:
        return ", ".join(f"{s.name} {_shape_text(s.shape_signature)}" for s in self.inputs)

    # -- description ----------------------------------------------------------

    def op_histogram(self) -> dict | None:
        """How many times each op type appears in the graph, most common first; None where the LiteRT schema
        that reads the file is missing (tflite_runtime on 32-bit ARM)."""
        return op_histogram(self.path)

    def info(self) -> dict:
        """Inputs, outputs, op histogram, file size and edgesmith metadata."""
        return {
            "path": str(self.path),
            "backend": self.backend,
            "size_bytes": self.path.stat().st_size,
            "inputs": [spec.as_dict() for spec in self.inputs],
            "outputs": [spec.as_dict() for spec in self.outputs],
            "ops": self.op_histogram(),
            "metadata": read_metadata(self.path),
        }


def _shape_text(shape) -> str:
    return "[" + ",".join("?" if d < 0 else str(d) for d in shape) + "]"


def _check_shape(spec: TensorSpec, array: np.ndarray) -> None:
    """Accept any batch size and any size on dynamic axes; name the expected shape otherwise."""
    expected = spec.shape_signature
    if array.dtype.kind not in "biuf":
        raise InputError(f"input {spec.name!r}: expected numbers, got dtype {array.dtype}")
    if array.ndim != len(expected) or any(want >= 0 and got != want for got, want in zip(array.shape[1:], expected[1:])):
        raise InputError(f"input {spec.name!r}: expected shape {_shape_text(expected)} (any batch size), "
                         f"got {list(array.shape)}")


def _to_tensor_dtype(spec: TensorSpec, array: np.ndarray) -> np.ndarray:
    if array.dtype == spec.dtype:
        return array
    if spec.quantized and array.dtype.kind == "f":
        return quantize(array, spec.scale, spec.zero_point, spec.dtype)
    return array.astype(spec.dtype)


def _from_tensor_dtype(spec: TensorSpec, array: np.ndarray) -> np.ndarray:
    return dequantize(array, spec.scale, spec.zero_point) if spec.quantized else array
