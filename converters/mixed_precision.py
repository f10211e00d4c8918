"""Per-layer mixed precision, realized in the .tflite by litert-quantizer recipes.

Each weighted Keras layer (Conv, Dense, DepthwiseConv...) gets one of these
precisions; every other op follows ``default``:

* ``int4``: int4 weights (per channel) and int8 activations (static W4A8; CONV_2D and FULLY_CONNECTED only);
* ``int8``: int8 weights (per channel) and int8 activations, integer kernels;
* ``int16x8``: int8 weights, int16 activations (near-float accuracy, slower kernels);
* ``float16``: float16 weights, dequantized in the graph, float compute;
* ``float32``: left as it is;

and, with float activations quantized on the fly by the kernel (dynamic range):

* ``int4-dynamic``: int4 weights per channel (CONV_2D, FULLY_CONNECTED);
* ``int4-block32``: int4 weights with a scale per block of 32 inputs (FULLY_CONNECTED only);
* ``int8-dynamic``: int8 weights per channel.

A precision a layer's op cannot take (int4 on a depthwise convolution) is refused,
naming the layer. A 4-bit ``default`` gives 4 bits to the layers that can take them
and the 8-bit precision of the same kind to the others.

>>> from edgesmith.converters.mixed_precision import mixed_precision, layer_precisions
>>> tflite = mixed_precision(model, data, precisions={"conv1": "float32", "head": "int16x8"})
>>> layer_precisions(tflite.content, ["conv1", "head"])
{'conv1': 'float32', 'head': 'int16x8'}
>>> layer_precisions(mixed_precision(model, data, default="int4").content, ["conv1", "head"])
{'conv1': 'int4', 'head': 'int4'}

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

import keras

from edgesmith.runtime.interpreter import open_interpreter
from edgesmith.runtime.tflite_file import WEIGHTED_OPS, gzipped_size, main_operators

from .checks import check_choice, checked
from .errors import ConversionError, UnknownOptionError, UnsupportedModelError
from .kernels import all_layers
from .layers import handler_for
from .precisions import ALL_PRECISIONS, DYNAMIC_PRECISIONS, PRECISIONS  # noqa: F401 - PRECISIONS: imported from here
from .ptq import TFLiteModel, float_tflite
from .record import remember
from .stage import stage_record

# one step up: what the fallback and choose_precisions raise a layer to
NEXT_PRECISION = {"int4": "int8", "int8": "int16x8", "int16x8": "float16", "float16": "float32",
                  "int4-block32": "int8-dynamic", "int4-dynamic": "int8-dynamic", "int8-dynamic": "float16"}
# the TFLite ops each precision is defined for, where litert-quantizer's policy restricts it (others: all weighted ops)
OPS_TAKING = {"int4": ("CONV_2D", "FULLY_CONNECTED"), "int4-dynamic": ("CONV_2D", "FULLY_CONNECTED"),
              "int4-block32": ("FULLY_CONNECTED",)}
# a 4-bit default leaves a layer (or op) that cannot take it at this precision
EIGHT_BIT_OF = {"int4": "int8", "int4-dynamic": "int8-dynamic", "int4-block32": "int8-dynamic"}
_SIGNATURE = "serving_default"


def weighted_layers(model) -> list:
    """Names of the layers that carry a kernel (the ones a precision is chosen for), in model order."""
    return [layer.name for layer in all_layers(model) if handler_for(layer).kernels]


def next_precision(precision: str) -> str | None:
    """The precision one step up the ladder (``int4`` -> ``int8`` -> ``int16x8`` -> ``float16`` -> ``float32``;
    the dynamic ones -> ``int8-dynamic`` -> ``float16``); None at ``float32``."""
    return NEXT_PRECISION.get(precision)


def takes(precision: str, ops) -> bool:
    """Whether a layer made of TFLite ``ops`` can run at ``precision``."""
    allowed = OPS_TAKING.get(precision)
    return allowed is None or set(ops) <= set(allowed)


def keras_op(layer) -> str | None:
    """The TFLite op a weighted Keras layer becomes (None: not known before conversion)."""
    kinds = ((keras.layers.DepthwiseConv2D, "DEPTHWISE_CONV_2D"), (keras.layers.SeparableConv2D, "DEPTHWISE_CONV_2D"),
             (keras.layers.Conv2DTranspose, "TRANSPOSE_CONV"), (keras.layers.Conv3D, "CONV_3D"),
             (keras.layers.Conv1D, "CONV_2D"), (keras.layers.Conv2D, "CONV_2D"), (keras.layers.Dense, "FULLY_CONNECTED"))
    return next((op for cls, op in kinds if isinstance(layer, cls)), None)


def refuse_untakeable(layer: str, op_names, precision: str) -> None:
    """Raise :class:`UnsupportedModelError` (one line, naming the layer) if its ops cannot run at ``precision``."""
    if not takes(precision, op_names):
        ops = ", ".join(sorted(set(op_names)))
        raise UnsupportedModelError(
            f"layer {layer!r} ({ops}) cannot take {precision}: litert-quantizer writes it only for "
            f"{', '.join(OPS_TAKING[precision])}; give this layer {EIGHT_BIT_OF[precision]} or higher")


def _check_options(precisions, default):
    for value in [default, *(precisions or {}).values()]:
        check_choice("precision", value, ALL_PRECISIONS)


def _check_model(model, precisions):
    """Each named layer exists and its op can take its precision (from the Keras class; before any work)."""
    precisions = dict(precisions or {})
    layers = {layer.name: layer for layer in all_layers(model) if handler_for(layer).kernels}
    _check_layers(precisions, layers)
    for name, precision in precisions.items():
        op = keras_op(layers[name])
        if op is not None:
            refuse_untakeable(name, [op], precision)


@checked(options=_check_options, model=_check_model)
def mixed_precision(model, data, precisions: dict | None = None, default: str = "int8",
                    calibration_samples: int = 256, progress=None):
    """Convert ``model`` to a .tflite where each layer runs at its own precision.

    Args:
        model: a Keras model.
        data: a :class:`edgesmith.data.Dataset` (calibration samples for int8/int16x8).
        precisions: ``{layer name: precision}``; layers not named get ``default``.
        default: the precision of every other layer and op (reshapes, pooling, softmax...); a 4-bit default
            goes to the layers that can take it, the others (and the other ops) get its 8-bit kind.
        calibration_samples: training samples used to measure activation ranges.

    Returns a :class:`~edgesmith.converters.ptq.TFLiteModel` (mode ``mixed``) with a stage record.
    """
    precisions = dict(precisions or {})
    _check_model(model, precisions)
    quantizer = MixedPrecisionQuantizer(float_tflite(model), data, weighted_layers(model), calibration_samples)
    content = quantizer.quantize(precisions, default)
    io_type = {"int4": "int8", "int8": "int8", "int16x8": "int16"}.get(default, "float")
    tflite = TFLiteModel(content, model, "mixed", io_type)
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
        self.scopes, self.ops = {}, {}  # layer -> the scopes (see op_scope) and names of its weighted ops
        for layer, op in _layer_ops(main_operators(float_content), self.layers):
            self.scopes.setdefault(layer, []).append(op_scope(op))
            self.ops.setdefault(layer, []).append(op.name)
        self._samples = _calibration_samples(float_content, data, calibration_samples)
        self._calibration = None

    def resolved(self, precisions: dict, default: str) -> dict:
        """Every chosen-for layer with its precision (``default`` where not named, or its 8-bit kind where the
        layer cannot take a 4-bit default)."""
        return {layer: precisions.get(layer, default if takes(default, self.ops.get(layer, ()))
                                      else EIGHT_BIT_OF[default]) for layer in self.layers}

    def quantize(self, precisions: dict, default: str = "int8") -> bytes:
        """The .tflite bytes with ``precisions`` per layer and ``default`` elsewhere."""
        _check_options(precisions, default)
        _check_layers(precisions, self.layers)
        for layer, precision in precisions.items():
            refuse_untakeable(layer, self.ops.get(layer, ()), precision)
        if default == "float32" and all(p == "float32" for p in precisions.values()):
            return self.float_content
        if default in EIGHT_BIT_OF:  # 4 bits where the op takes them, the 8-bit kind on every other op
            precisions = self.resolved(precisions, default)
            default = EIGHT_BIT_OF[default]
        quantizer = self._quantizer(precisions, default)
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # litert-quantizer's tqdm bars
                if quantizer.need_calibration and self._calibration is None:  # once, with an all-int8 recipe
                    self._calibration = self._quantizer({}, "int8").calibrate({_SIGNATURE: self._samples})
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


def _check_layers(precisions: dict, layers) -> None:
    unknown = sorted(set(precisions) - set(layers))
    if unknown:
        raise UnknownOptionError(
            f"no weighted layer named {', '.join(unknown)}; layers: {', '.join(layers) or '(none)'}")


def _op_config(precision: str):
    from litert_quantizer import qtyping

    tensor, op, granularity = qtyping.TensorQuantizationConfig, qtyping.OpQuantizationConfig, qtyping.QuantGranularity
    if precision == "float16":
        return op(weight_tensor_config=tensor(num_bits=16, dtype=qtyping.TensorDataType.FLOAT),
                  compute_precision=qtyping.ComputePrecision.FLOAT, explicit_dequantize=True)
    weight_bits = 4 if precision.startswith("int4") else 8
    per = granularity.BLOCKWISE_32 if precision == "int4-block32" else granularity.CHANNELWISE
    weights = tensor(num_bits=weight_bits, symmetric=True, granularity=per)
    if precision in DYNAMIC_PRECISIONS:  # float activations, quantized by the kernel at run time
        return op(weight_tensor_config=weights, compute_precision=qtyping.ComputePrecision.INTEGER,
                  explicit_dequantize=False)
    bits = 16 if precision == "int16x8" else 8
    return op(
        # int16 activations are symmetric: TFLite's 16x8 kernels require a zero point of 0
        activation_tensor_config=tensor(num_bits=bits, symmetric=bits == 16, granularity=granularity.TENSORWISE),
        weight_tensor_config=weights,
        compute_precision=qtyping.ComputePrecision.INTEGER,
    )


_ALGORITHMS = {"float16": "float_casting", "float32": "no_quantize"}


def _add_config(quantizer, regex: str, precision: str) -> None:
    algorithm = _ALGORITHMS.get(precision, "min_max_uniform_quantize")
    config = None if precision == "float32" else _op_config(precision)
    quantizer.update_quantization_recipe(regex, "*", config, algorithm_key=algorithm)


def _calibration_samples(content: bytes, data, count: int) -> list:
    if data is None:
        raise ConversionError("mixed precision needs calibration data: pass --data")
    name = open_interpreter(content).get_signature_list()[_SIGNATURE]["inputs"][0]
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


def layer_precisions(content: bytes, layers) -> dict:
    """The precision each layer really has in the .tflite, read from its op's weight and output types."""
    operators = main_operators(content)
    producers = {tensor.index: op for op in operators for tensor in op.outputs}
    return {layer: _precision_from(_weight_of(op, producers), op.outputs[0].type)
            for layer, op in _layer_ops(operators, layers)}


def _layer_ops(operators, layers):
    """``(layer, op)`` for each weighted op (see :data:`WEIGHTED_OPS`) that belongs to one of ``layers``."""
    for op in operators:
        layer = layer_of(op_scope(op), layers) if op.name in WEIGHTED_OPS else None
        if layer is not None:
            yield layer, op


def _weight_of(op, producers: dict):
    """An op's stored weight tensor (its second input), looking through a DEQUANTIZE that feeds it."""
    producer = producers.get(op.inputs[1].index)
    return producer.inputs[0] if producer is not None and producer.name == "DEQUANTIZE" else op.inputs[1]


def _precision_from(weight, output: str) -> str:
    if weight.type == "FLOAT16":
        return "float16"
    if weight.type == "INT4":
        dynamic = "int4-dynamic" if len(weight.scales) else "int4-block32"  # blockwise scales live in a tensor
        return "int4x16" if output == "INT16" else "int4" if output == "INT8" else dynamic
    if weight.type == "INT8":
        return "int16x8" if output == "INT16" else "int8" if output == "INT8" else "int8-dynamic"
    return "float32"
