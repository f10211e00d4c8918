"""Per-layer mixed precision, realized in the .tflite by litert-quantizer recipes.

Each weighted Keras layer (Conv, Dense, DepthwiseConv...) gets one of four
precisions; every other op follows ``default``:

* ``int8``: int8 weights (per channel) and int8 activations, integer kernels;
* ``int16x8``: int8 weights, int16 activations (near-float accuracy, slower kernels);
* ``float16``: float16 weights, dequantized in the graph, float compute;
* ``float32``: left as it is.

>>> from edgesmith.converters.mixed_precision import mixed_precision, layer_precisions
>>> tflite = mixed_precision(model, data, precisions={"conv1": "float32", "head": "int16x8"})
>>> layer_precisions(tflite.content, ["conv1", "head"])
{'conv1': 'float32', 'head': 'int16x8'}

The Keras model is converted to a float .tflite once; litert-quantizer then
quantizes it op by op, matching each op by its exact scope (the names of its
output tensors), and inserts the QUANTIZE/DEQUANTIZE ops between layers of
different precisions. ``edgesmith.optimize.choose_precisions`` picks the cheapest assignment
that keeps a verified .tflite within an accuracy budget.
"""

from __future__ import annotations

import contextlib
import io
import re

from edgesmith.runtime.tflite_file import main_operators

from .errors import ConversionError, UnknownOptionError
from .kernels import all_layers
from .layers import handler_for
from .ptq import TFLiteModel, float_tflite, gzipped_size
from .record import remember
from .stage import stage_record
from .verify import accuracy

PRECISIONS = ("int8", "int16x8", "float16", "float32")  # cheapest first
_SIGNATURE = "serving_default"


def weighted_layers(model) -> list:
    """Names of the layers that carry a kernel (the ones a precision is chosen for), in model order."""
    return [layer.name for layer in all_layers(model) if handler_for(layer).kernels]


def mixed_precision(model, data, precisions: dict | None = None, default: str = "int8",
                    calibration_samples: int = 256, progress=None):
    """Convert ``model`` to a .tflite where each layer runs at its own precision.

    Args:
        model: a Keras model.
        data: a :class:`edgesmith.data.Dataset` (calibration samples for int8/int16x8).
        precisions: ``{layer name: precision}``; layers not named get ``default``.
        default: the precision of every other layer and op (reshapes, pooling, softmax...).
        calibration_samples: training samples used to measure activation ranges.

    Returns a :class:`~edgesmith.converters.ptq.TFLiteModel` (mode ``mixed``) with a stage record.
    """
    precisions = dict(precisions or {})
    quantizer = MixedPrecisionQuantizer(float_tflite(model), data, weighted_layers(model), calibration_samples)
    content = quantizer.quantize(precisions, default)
    tflite = TFLiteModel(content, model, "mixed", {"int8": "int8", "int16x8": "int16"}.get(default, "float"))
    record = stage_record("mixed_precision", model)
    record.details.update({"default": default, "precisions": quantizer.resolved(precisions, default),
                           "tflite_bytes": len(content), "gzip_bytes": gzipped_size(content)})
    return remember(tflite, record)


class MixedPrecisionQuantizer:
    """Quantizes one float .tflite many ways, calibrating it only once.

    Args:
        float_content: the float32 .tflite bytes.
        data: a Dataset whose training split supplies the calibration samples.
        layers: the Keras layer names a precision can be chosen for.
    """

    def __init__(self, float_content: bytes, data, layers, calibration_samples: int = 256):
        self.float_content = float_content
        self.layers = list(layers)
        self.scopes = layer_scopes(float_content, self.layers)
        self._samples = _calibration_samples(float_content, data, calibration_samples)
        self._calibration = None

    def resolved(self, precisions: dict, default: str) -> dict:
        """Every chosen-for layer with its precision (``default`` where not named)."""
        return {layer: precisions.get(layer, default) for layer in self.layers}

    def quantize(self, precisions: dict, default: str = "int8") -> bytes:
        """The .tflite bytes with ``precisions`` per layer and ``default`` elsewhere."""
        _check_precisions(precisions, default, self.layers)
        if default == "float32" and all(p == "float32" for p in precisions.values()):
            return self.float_content
        quantizer = self._quantizer(precisions, default)
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # litert-quantizer's tqdm bars
                if quantizer.need_calibration and self._calibration is None:
                    self._calibration = self._calibrate()
                result = quantizer.quantize(self._calibration if quantizer.need_calibration else None,
                                            enable_progress_report=False)
        except (ValueError, RuntimeError) as exc:
            raise ConversionError(f"litert-quantizer refused the mixed-precision recipe: {str(exc)[:300]}") from None
        return bytes(result.quantized_model)

    def _quantizer(self, precisions: dict, default: str):
        from litert_quantizer import quantizer

        built = quantizer.Quantizer(bytearray(self.float_content))
        _add_config(built, ".*", default)
        for layer, precision in precisions.items():
            for scope in self.scopes.get(layer, ()):
                _add_config(built, "^" + re.escape(scope) + "$", precision)
        return built

    def _calibrate(self):
        """Ranges of every tensor, measured once with an all-int8 recipe and reused by every recipe."""
        everything = self._quantizer({}, "int8")
        return everything.calibrate({_SIGNATURE: self._samples})


def _check_precisions(precisions: dict, default: str, layers) -> None:
    for value in [default, *precisions.values()]:
        if value not in PRECISIONS:
            raise UnknownOptionError(f"unknown precision {value!r}; valid: {', '.join(PRECISIONS)}")
    unknown = sorted(set(precisions) - set(layers))
    if unknown:
        raise UnknownOptionError(
            f"no weighted layer named {', '.join(unknown)}; layers: {', '.join(layers) or '(none)'}"
        )


def _op_config(precision: str):
    from litert_quantizer import qtyping

    tensor, op = qtyping.TensorQuantizationConfig, qtyping.OpQuantizationConfig
    if precision == "float16":
        return op(weight_tensor_config=tensor(num_bits=16, dtype=qtyping.TensorDataType.FLOAT),
                  compute_precision=qtyping.ComputePrecision.FLOAT, explicit_dequantize=True)
    bits = 16 if precision == "int16x8" else 8
    return op(
        # int16 activations are symmetric: TFLite's 16x8 kernels require a zero point of 0
        activation_tensor_config=tensor(num_bits=bits, symmetric=bits == 16,
                                        granularity=qtyping.QuantGranularity.TENSORWISE),
        weight_tensor_config=tensor(num_bits=8, symmetric=True, granularity=qtyping.QuantGranularity.CHANNELWISE),
        compute_precision=qtyping.ComputePrecision.INTEGER,
    )


_ALGORITHMS = {"float16": "float_casting", "float32": "no_quantize"}


def _add_config(quantizer, regex: str, precision: str) -> None:
    algorithm = _ALGORITHMS.get(precision, "min_max_uniform_quantize")
    config = None if precision == "float32" else _op_config(precision)
    quantizer.update_quantization_recipe(regex, "*", config, algorithm_key=algorithm)


def _calibration_samples(content: bytes, data, count: int) -> list:
    from ai_edge_litert.interpreter import Interpreter

    if data is None:
        raise ConversionError("mixed precision needs calibration data: pass --data")
    name = Interpreter(model_content=content).get_signature_list()[_SIGNATURE]["inputs"][0]
    samples = data.calibration(count)
    return [{name: samples[i : i + 1]} for i in range(len(samples))]


# -- reading the graph ----------------------------------------------------------------------


def op_scope(op) -> str:
    """The scope litert-quantizer gives an op and recipes match (see its ``get_op_scope``): the names of the op's
    output tensors (of its inputs when no output has a name), each followed by ``;``."""
    names = [t.name for t in op.outputs if t and t.name] or [t.name for t in op.inputs if t and t.name]
    return "".join(name + ";" for name in names)


def layer_of(scope: str, layers) -> str | None:
    """The Keras layer an op belongs to, from the name segments of its scope.

    TensorFlow's trace names a layer's ops ``.../<layer>_<n>/...``; the suffix is
    stripped first so that a layer ``conv`` is not mistaken for ``conv_1``.
    """
    names = set(layers)
    for segment in re.split(r"[/;:]", scope):
        stripped = re.sub(r"_\d+$", "", segment)
        if stripped in names:
            return stripped
        if segment in names:
            return segment
    return None


def layer_scopes(content: bytes, layers) -> dict:
    """``{layer: [scopes of its ops]}`` for the weighted ops (those with constant weights)."""
    scopes = {}
    for layer, op in _layer_ops(main_operators(content), layers):
        scopes.setdefault(layer, []).append(op_scope(op))
    return scopes


WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "CONV_3D", "TRANSPOSE_CONV", "BATCH_MATMUL")


def layer_precisions(content: bytes, layers) -> dict:
    """The precision each layer really has in the .tflite, read from its op's weight and output types."""
    operators = main_operators(content)
    producers = {tensor.index: op for op in operators for tensor in op.outputs}
    return {layer: _precision_from(_weight_type(op, producers), op.outputs[0].type)
            for layer, op in _layer_ops(operators, layers)}


def _layer_ops(operators, layers):
    """``(layer, op)`` for each weighted op (see :data:`WEIGHTED_OPS`) that belongs to one of ``layers``."""
    for op in operators:
        layer = layer_of(op_scope(op), layers) if op.name in WEIGHTED_OPS else None
        if layer is not None:
            yield layer, op


def _weight_type(op, producers: dict) -> str:
    """The stored type of an op's weight (its second input), looking through a DEQUANTIZE that feeds it."""
    producer = producers.get(op.inputs[1].index)
    return (producer.inputs[0] if producer is not None and producer.name == "DEQUANTIZE" else op.inputs[1]).type


def _precision_from(weight: str, output: str) -> str:
    if weight == "FLOAT16":
        return "float16"
    if weight == "INT8":
        return "int16x8" if output == "INT16" else "int8" if output == "INT8" else "int8-weights"
    return "float32"


# -- accuracy ------------------------------------------------------------------


def tflite_accuracy(content: bytes, data) -> float:
    """Top-1 accuracy of .tflite ``content`` on ``data``'s evaluation split, run by edgesmith.runtime."""
    return accuracy(content, data)
