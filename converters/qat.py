"""Quantization-aware training, native to Keras 3 (TensorFlow backend), without tfmot.

>>> from edgesmith.converters import qat, ptq, record_of
>>> trained = qat(model, data, epochs=2)
>>> tflite = ptq(trained, data, mode="int8")     # a true int8 graph from the learned ranges
>>> record_of(trained).details["float_layers"]   # layers left in float32: none
[]
>>> small = qat(model, data, epochs=2, weight_bits=4)   # 4-bit kernels: ptq(small, data, mode="int8") writes int4
>>> record_of(small).details["weight_bits"]
4

The model is rebuilt with fake quantization where TFLite's int8 graph holds a
scale of its own (:func:`.int8_ops.int8_role`; a layer's is a fact of its handler in
:mod:`.layers`): weights per output channel, symmetric int8 (``narrow_range``);
(``weight_bits=4``: 4-bit, symmetric [-7, 7], on Conv1D/Conv2D/Dense, the kernels LiteRT
runs with int4 weights; depthwise kernels stay 8-bit, which is all TFLite runs);
activations per tensor, asymmetric int8, on the model input and after each op
with its own output scale (Conv/Dense with folded BatchNorm and fused
ReLU/ReLU6, Add, Multiply, global average pooling, Rescaling, hard-swish...).

Ops that TFLite runs with one scale on both sides (pooling, PAD, RESHAPE,
CONCATENATION, slicing, RESIZE, TRANSPOSE, Dropout...) get no quantizer of their
own: the tensors they connect form one group with ONE shared quantizer, applied
where the group's values are made. The converter keeps a single scale per
tensor: two quantizers in a row before such an op fail the conversion ("violate
the same scale constraint"), and differing quantizers on a concatenation's
inputs are silently replaced by one range, so the .tflite would no longer match
the Keras model. The outputs of softmax, sigmoid and tanh, whose int8 scale
TFLite fixes, are rounded to that fixed grid (1/256 for softmax), so near-ties
break the same way in Keras and in the .tflite.

BatchNorm after a linear convolution is folded into it (with its statistics
frozen), SeparableConv2D becomes the depthwise and pointwise convolutions TFLite
runs. Pruning masks and cluster constraints move to the new kernels, so sparsity
and weight sharing survive. Layers and operations edgesmith does not quantize
stay float, are logged as a warning (logger ``edgesmith.converters.qat``) and
listed in the record's ``details["float_layers"]``.

Before any training, the ranges are calibrated on one batch and the model is
converted to int8 once (a dry run, the settings :func:`ptq` uses for a QAT
model): a graph TFLite cannot convert is refused with a one-line
:class:`~edgesmith.converters.errors.UnsupportedModelError` naming the layer.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import re
import warnings
from collections import defaultdict, deque

import keras
import numpy as np
import tensorflow as tf

from .checks import checked
from .errors import UnsupportedModelError
from .graph import copy_layer, iter_calls, require_graph, rewrite
from .int8_ops import FUSED_ACTIVATIONS, fixed_range, fuses_activation, int8_role, is_fused_activation, is_layer
from .kernels import all_layers, copied_constraint, layer_kernels, recurrent_layers
from .layers import activation_name, int8_handler
from .record import remember
from .stage import stage_record
from .train import fine_tune
from .verify import agreement, eval_batch_size, predicted_classes

log = logging.getLogger(__name__)
ops = keras.ops

CALIBRATION_SAMPLES = 64  # one batch sets the initial ranges of the dry conversion
WATCH_SAMPLES = 512  # training samples QAT scores itself on before and after training, with their ranges
WEIGHT_BITS = (4, 8)  # kernel widths qat trains for; the converter writes a 4-bit fake-quantized kernel as INT4


# -- fake quantization -------------------------------------------------------------

RANGE_LIMIT = 1e6  # an infinite or NaN activation must not reach the converter (it crashes on such a scale)
MIN_RANGE = 1e-6


def _finite_extremes(inputs):
    """``(min, max)`` of a tensor, including 0, with infinities and NaN clipped to +-RANGE_LIMIT."""
    low = ops.nan_to_num(ops.minimum(ops.min(inputs), 0.0), nan=0.0, posinf=RANGE_LIMIT, neginf=-RANGE_LIMIT)
    high = ops.nan_to_num(ops.maximum(ops.max(inputs), 0.0), nan=0.0, posinf=RANGE_LIMIT, neginf=-RANGE_LIMIT)
    return ops.maximum(low, -RANGE_LIMIT), ops.minimum(high, RANGE_LIMIT)


def fake_quant_weights(kernel, per_channel: bool = True, bits: int = 8):
    """Symmetric fake quantization of a kernel to ``bits`` (8: [-127, 127], 4: [-7, 7]), per output channel
    (last axis) or per tensor.

    Dense kernels are quantized per tensor: TFLite transposes them for FULLY_CONNECTED,
    and the converter cannot carry a per-channel axis through that transpose.
    """
    axes = tuple(range(len(kernel.shape) - 1)) if per_channel else None
    limit = tf.stop_gradient(ops.maximum(ops.max(ops.abs(kernel), axis=axes), 1e-8))
    if per_channel:
        return tf.quantization.fake_quant_with_min_max_vars_per_channel(kernel, -limit, limit, num_bits=bits,
                                                                        narrow_range=True)
    return tf.quantization.fake_quant_with_min_max_vars(kernel, -limit, limit, num_bits=bits, narrow_range=True)


def fake_quant_depthwise(kernel):
    """A depthwise kernel [h, w, in, multiplier] quantized per output channel (in x multiplier)."""
    h, w, channels, multiplier = kernel.shape
    quantized = fake_quant_weights(ops.reshape(kernel, (h, w, 1, channels * multiplier)))
    return ops.reshape(quantized, (h, w, channels, multiplier))


@keras.saving.register_keras_serializable(package="edgesmith")
class ActivationQuantizer(keras.layers.Layer):
    """Per-tensor asymmetric int8 fake quantization with a range learned as a moving min/max.

    One quantizer may be called on several tensors that TFLite must give the same scale
    (the inputs of a concatenation): they then share one range. While ``calibrating``,
    a call in inference mode widens the range to cover what it sees (see :func:`calibrate_ranges`).
    """

    def __init__(self, momentum: float = 0.99, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.calibrating = False

    def build(self, input_shape):
        self.range_min = self.add_weight(name="range_min", shape=(), initializer="zeros", trainable=False)
        self.range_max = self.add_weight(name="range_max", shape=(), initializer="zeros", trainable=False)
        self.seen = self.add_weight(name="seen", shape=(), initializer="zeros", trainable=False)

    def call(self, inputs, training=None):
        if training:
            self._update_range(inputs)
        elif self.calibrating:
            self._widen_range(inputs)
        return tf.quantization.fake_quant_with_min_max_vars(inputs, self.range_min, self.range_max, num_bits=8)

    def _update_range(self, inputs):
        low, high = _finite_extremes(inputs)
        keep = self.momentum * self.seen  # 0 on the first batch: start from its range
        self._set_range(keep * self.range_min + (1.0 - keep) * low, keep * self.range_max + (1.0 - keep) * high)

    def compute_output_shape(self, input_shape):
        return input_shape  # always dense, even after a keras.ops call Keras marks sparse (``x * (1 / 6)``)

    def _widen_range(self, inputs):
        low, high = _finite_extremes(inputs)
        self._set_range(ops.minimum(self.range_min, low), ops.maximum(self.range_max, high))

    def _set_range(self, low, high):
        self.range_min.assign(low)
        self.range_max.assign(ops.maximum(high, low + MIN_RANGE))  # a zero range has no int8 scale
        self.seen.assign(1.0)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}


@keras.saving.register_keras_serializable(package="edgesmith")
class FixedRangeQuantizer(keras.layers.Layer):
    """int8 fake quantization on the grid TFLite fixes for an op's output (softmax: scale 1/256, zero point -128)."""

    def __init__(self, low: float, high: float, **kwargs):
        super().__init__(**kwargs)
        self.low, self.high = float(low), float(high)

    def call(self, inputs):
        return tf.quantization.fake_quant_with_min_max_vars(inputs, self.low, self.high, num_bits=8)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "low": self.low, "high": self.high}


class FoldedKernel:
    """Mixin: a kernel trained as it was, times a fixed per-output-channel ``fold_scale`` (a folded BatchNorm's
    gamma / sqrt(variance + epsilon); present when ``folded``), fake-quantized to ``weight_bits`` (8 or 4).

    The factor is not folded into the trained variable: a BatchNorm after a convolution of raw pixels
    (caffe-style inputs, 0-255) has factors near 1e-3, and Adam's steps of about the learning rate on a kernel
    of that size wipe it out (ResNet50 lost 75 points that way).
    """

    def __init__(self, *args, weight_bits: int = 8, folded: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.weight_bits, self.folded = int(weight_bits), bool(folded)

    def build(self, input_shape):
        super().build(input_shape)
        if self.folded:
            self.fold_scale = self.add_weight(name="fold_scale", shape=_output_channels(self.kernel.shape, self),
                                              initializer="ones", trainable=False)

    def save_own_variables(self, store):
        # Keras's Conv and Dense save only kernel and bias (their LoRA-aware override): the factor goes too
        for index, variable in enumerate(self._own_variables()):
            store[str(index)] = variable

    def load_own_variables(self, store):
        variables = self._own_variables()
        if len(store.keys()) != len(variables):
            raise ValueError(f"layer {self.name!r} expects {len(variables)} variables, the file holds {len(store.keys())}")
        for index, variable in enumerate(variables):
            variable.assign(store[str(index)])

    def _own_variables(self) -> list:
        kernel = self._kernel if hasattr(self, "_kernel") else self.kernel
        return [kernel, *([self.bias] if self.use_bias else []), *([self.fold_scale] if self.folded else [])]

    def scaled_kernel(self, kernel=None):
        """The kernel TFLite stores (before quantization): the trained one times the folded factor."""
        kernel = self.kernel if kernel is None else kernel
        return kernel * self.fold_scale if self.folded else kernel

    def get_config(self):
        return {**super().get_config(), "weight_bits": self.weight_bits, "folded": self.folded}


def _output_channels(kernel_shape, layer) -> tuple:
    """The output-channel axes of a kernel: the last one (a depthwise kernel: input x multiplier, the last two)."""
    return tuple(kernel_shape[-2:]) if isinstance(layer, keras.layers.DepthwiseConv2D) else tuple(kernel_shape[-1:])


@keras.saving.register_keras_serializable(package="edgesmith")
class QuantConv(FoldedKernel, keras.layers.Conv2D):
    """Conv2D whose kernel is fake-quantized per output channel."""

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, fake_quant_weights(self.scaled_kernel(kernel), bits=self.weight_bits))


@keras.saving.register_keras_serializable(package="edgesmith")
class QuantConv1D(FoldedKernel, keras.layers.Conv1D):
    """Conv1D whose kernel is fake-quantized per output channel, run as the 2-D convolution TFLite makes of it.

    Keras's ``Conv1D.call`` reads ``self.kernel`` without ``convolution_op``, so the whole call is here. The
    kernel is quantized in its 4-D form ``[1, width, in, out]``: a per-channel quantized 3-D kernel would be
    reshaped by the converter's EXPAND_DIMS, which cannot carry the channel axis (the conversion fails).
    """

    def call(self, inputs):
        steps_axis = 1 if self.data_format == "channels_last" else 2
        padding = self.padding
        if padding == "causal":  # the left padding Keras adds, so that step t sees steps <= t only
            pad = [[0, 0], [0, 0], [0, 0]]
            pad[steps_axis][0] = self.dilation_rate[0] * (self.kernel_size[0] - 1)
            inputs, padding = ops.pad(inputs, pad), "valid"
        kernel = fake_quant_weights(ops.expand_dims(self.scaled_kernel(), 0), bits=self.weight_bits)
        outputs = ops.conv(ops.expand_dims(inputs, steps_axis), kernel, strides=(1, self.strides[0]),
                           padding=padding, dilation_rate=(1, self.dilation_rate[0]), data_format=self.data_format)
        outputs = ops.squeeze(outputs, axis=steps_axis)
        if self.use_bias:
            shape = (1, 1, self.filters) if self.data_format == "channels_last" else (1, self.filters, 1)
            outputs = ops.add(outputs, ops.reshape(self.bias, shape))
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable(package="edgesmith")
class QuantDepthwiseConv(FoldedKernel, keras.layers.DepthwiseConv2D):
    """DepthwiseConv2D whose kernel is fake-quantized per output channel (input x multiplier; 8 bits only)."""

    def call(self, inputs):
        outputs = ops.depthwise_conv(inputs, fake_quant_depthwise(self.scaled_kernel()), strides=self.strides,
                                     padding=self.padding, dilation_rate=self.dilation_rate,
                                     data_format=self.data_format)
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable(package="edgesmith")
class QuantDense(FoldedKernel, keras.layers.Dense):
    """Dense whose kernel is fake-quantized (per tensor, as TFLite's FULLY_CONNECTED converts)."""

    def call(self, inputs, training=None):
        if len(inputs.shape) <= 2:
            return self._dense(inputs)
        # On a sequence, the whole Dense runs on 2-D rows, so the converter emits an int8 FULLY_CONNECTED
        # with its bias (a rank-3 matmul becomes a float Tensordot).
        flat = self._dense(tf.reshape(inputs, (-1, inputs.shape[-1])))
        return tf.reshape(flat, tf.concat([tf.shape(inputs)[:-1], [self.units]], axis=0))

    def _dense(self, inputs):
        kernel = fake_quant_weights(self.scaled_kernel(self._kernel), per_channel=False, bits=self.weight_bits)
        outputs = ops.matmul(inputs, kernel)
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs


# the fake-quantized twin of each "kernel" layer, keyed by the Keras class it extends (SeparableConv2D: _separable)
QUANT_TWINS = {twin.__bases__[-1]: twin for twin in (QuantConv, QuantConv1D, QuantDepthwiseConv, QuantDense)}
QAT_LAYERS = (ActivationQuantizer, FixedRangeQuantizer, *QUANT_TWINS.values())


def stored_kernel(layer) -> np.ndarray:
    """The kernel of ``layer`` as TFLite stores it: a :func:`qat` twin's with its folded BatchNorm factor."""
    return np.asarray(layer.scaled_kernel() if isinstance(layer, FoldedKernel) else layer.kernel)


def weight_bits_of(model) -> int | None:
    """The narrowest kernel width of a :func:`qat` model (4 or 8); None when it has no fake-quantized kernel."""
    widths = [getattr(layer, "weight_bits", 8) for layer in all_layers(model) if isinstance(layer, tuple(QUANT_TWINS.values()))]
    return min(widths) if widths else None


def has_fake_quant(model) -> bool:
    """True when ``model`` contains layers made by :func:`qat`."""
    return isinstance(model, keras.Model) and any(isinstance(layer, QAT_LAYERS) for layer in all_layers(model))


def calibrate_ranges(model, samples, batch_size: int | None = None) -> None:
    """Set every activation range of a QAT model to the min/max it sees on ``samples`` (inference mode), in
    batches of ``batch_size`` (default :func:`~edgesmith.converters.verify.eval_batch_size`: 64 MobileNetV2
    inputs at 224 x 224 in one eager call peaked at 6.4 GB)."""
    batch_size = batch_size or eval_batch_size(samples.shape[1:])
    quantizers = [layer for layer in all_layers(model) if isinstance(layer, ActivationQuantizer)]
    for quantizer in quantizers:
        quantizer.range_min.assign(0.0)
        quantizer.range_max.assign(0.0)
        quantizer.calibrating = True
    try:
        for start in range(0, len(samples), batch_size):
            model(samples[start : start + batch_size], training=False)
    finally:
        for quantizer in quantizers:
            quantizer.calibrating = False


# -- the pass --------------------------------------------------------------------------


def _check_options(weight_bits):
    if weight_bits not in WEIGHT_BITS:
        raise ValueError(f"weight_bits is one of {', '.join(map(str, WEIGHT_BITS))}")


def _check_model(model, weight_bits=8) -> None:
    """The dry int8 conversion on ranges from random inputs, run by the pipeline before a recipe's first pass
    trains (the ranges' values do not matter to whether TFLite converts the graph, only the ops do)."""
    require_graph(model, "qat")
    if has_fake_quant(model):
        return
    recurrent = recurrent_layers(model)
    if recurrent:
        raise UnsupportedModelError(
            f"qat cannot make an int8 graph of recurrent layer {recurrent[0]}: a Keras 3 RNN converts only at a "
            "fixed batch, as a WHILE loop TFLite's int8 quantizer does not take; use fp16 or dynamic-int8"
        )
    rebuilt, _ = prepare_qat(model, weight_bits)
    shape = (CALIBRATION_SAMPLES, *model.inputs[0].shape[1:])
    check_int8_conversion(rebuilt, np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    _CONVERTIBLE.add((architecture_digest(model), weight_bits))


_CONVERTIBLE: set = set()  # architectures whose prepared QAT graph converted (the pass need not check again)


def architecture_digest(model) -> str:
    """SHA-256 of ``model``'s architecture (its JSON config, constraints included), not of its weights."""
    return hashlib.sha256(model.to_json().encode()).hexdigest()


@checked(options=_check_options, model=_check_model)
def qat(model, data, epochs: int = 2, learning_rate: float = 2e-4, weight_bits: int = 8, progress=None):
    """Rebuild ``model`` with int8 fake quantization (BatchNorm folded), check it converts, and fine-tune it.

    Args:
        model: a Sequential or Functional Keras model (left unchanged; a new model is returned).
        data: labeled :class:`edgesmith.data.Dataset` for fine-tuning.
        epochs: fine-tuning epochs (at least one).
        learning_rate: Adam learning rate. The ranges are first calibrated on 512 training samples, which are
            scored before and after training: when training leaves them scoring lower, it starts again
            from the untrained model at a tenth of the rate (``details["learning_rate_lowered_from"]``).
        weight_bits: 8, or 4 for Conv1D/Conv2D/Dense kernels (the int8 conversion then writes them as INT4;
            depthwise kernels stay 8-bit).

    Raises:
        UnsupportedModelError: the prepared int8 graph does not convert (checked before training).
    """
    require_graph(model, "qat")
    if has_fake_quant(model):
        return remember(model, stage_record("qat", model, details={"note": "already quantization-aware"}))
    _check_options(weight_bits)
    rebuilt, plan = prepare_qat(model, weight_bits)
    if data is not None and (architecture_digest(model), weight_bits) not in _CONVERTIBLE:
        check_int8_conversion(rebuilt, data.calibration(CALIBRATION_SAMPLES))
    training = _train_watched(rebuilt, data, max(1, epochs), learning_rate, progress)
    details = {"folded_batchnorm": sorted(plan.folded), "float_layers": sorted(plan.float_layers),
               "activation_quantizers": plan.quantizer_count, "weight_bits": weight_bits, **training}
    return remember(rebuilt, stage_record("qat", rebuilt, details=details))


def _train_watched(model, data, epochs: int, learning_rate: float, progress) -> dict:
    """Fine-tune ``model``; when that leaves it scoring lower on its training samples than before, start again
    from the untrained model at a tenth of the learning rate. The samples are trained on, so training that works
    raises their score (the wide CNN of benchmarks/compression.py lost 0.4-0.8 pt there at 2e-4, 8- and 4-bit,
    and 0.1-1.5 pt on the test split; at 2e-5 it gained on both).

    Quantization-aware training only has to recover rounding error: a model that gets worse was moved too far
    (keras.applications ResNet50 went from 86 % to 52 % at 2e-4 in one epoch, and to 91 % at 2e-5).
    """
    if data is None or not data.labeled:
        fine_tune(model, data, epochs=epochs, learning_rate=learning_rate, progress=progress, stage="qat")
        return {"learning_rate": learning_rate}
    rows = np.sort(np.random.default_rng(0).permutation(len(data.x_train))[:WATCH_SAMPLES])
    labels = np.asarray(data.y_train)[rows]
    samples = data.x_train.subset(rows) if hasattr(data.x_train, "subset") else data.x_train[rows]  # read per batch

    def score() -> float:
        return round(agreement(predicted_classes(model, samples), labels), 4)

    calibrate_ranges(model, samples)
    untrained, before = model.get_weights(), score()
    fine_tune(model, data, epochs=epochs, learning_rate=learning_rate, progress=progress, stage="qat")
    after = score()
    if after >= before:
        return {"learning_rate": learning_rate, "train_accuracy_before": before, "train_accuracy_after": after}
    lower = learning_rate / 10
    log.warning("qat: training at learning rate %g took %d training samples from %.1f%% to %.1f%%; training again "
                "from the start at %g", learning_rate, len(rows), 100 * before, 100 * after, lower)
    model.set_weights(untrained)
    fine_tune(model, data, epochs=epochs, learning_rate=lower, progress=progress, stage="qat")
    return {"learning_rate": lower, "learning_rate_lowered_from": learning_rate, "train_accuracy_before": before,
            "first_train_accuracy_after": after, "train_accuracy_after": score()}


def prepare_qat(model, weight_bits: int = 8):
    """``(qat_model, plan)``: ``model`` rebuilt with fake quantization, untrained, ranges still empty."""
    plan = _Plan(model, weight_bits)
    rebuilt = rewrite(model, plan.replace, "qat")
    if plan.float_layers:
        log.warning("qat: left in float (edgesmith cannot quantize these layers): %s", ", ".join(sorted(plan.float_layers)))
    return rebuilt, plan


# -- the dry conversion ----------------------------------------------------------------


def check_int8_conversion(model, samples) -> bytes:
    """Calibrate ``model``'s ranges on ``samples``, convert it to int8 as :func:`ptq` does for a QAT model,
    and return the .tflite; raise :class:`UnsupportedModelError` (one line, naming the layer) if TFLite refuses."""
    calibrate_ranges(model, samples)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the Keras exporter prints its log; TF warns about statistics
            return converter.convert()
    except Exception as exc:  # TFLite's ConverterError, or a failure to trace the graph
        raise UnsupportedModelError(conversion_failure(str(exc), model)) from None


_LOCATION = re.compile(r'fused\["(?P<op>[^":]+):?", "(?P<path>[^"@]+)')


def conversion_failure(message: str, model) -> str:
    """One line from a TFLite converter error: the Keras layer (or keras.ops call) it happened at, and why."""
    lines = [line for line in message.splitlines() if line.strip()] or ["unknown converter error"]
    line = next((line for line in lines if "error:" in line), lines[0])
    reason = line.rsplit("error:", 1)[-1]
    reason = re.sub(r"\s+", " ", reason.rsplit("): ", 1)[-1] if "loc(" in reason else reason).strip()
    located = _LOCATION.search(line)
    where = ""
    if located:
        names = {call.layer.name for call in iter_calls(model, "qat")[0]}
        layer = _layer_named_in(located["path"], names)
        where = f" at layer {layer!r} ({located['op']})" if layer else f" at {located['path']}"
    return f"qat: the int8 conversion of {model.name} would fail{where}: {reason[:240]}; nothing was trained"


def _layer_named_in(path: str, names: set) -> str | None:
    """The Keras layer a TensorFlow op path (``model_1/layer_name_1/Op``) belongs to."""
    for part in reversed(path.split("/")[1:]):
        for candidate in (part, re.sub(r"_\d+$", "", part)):
            if candidate in names:
                return candidate
    return None


# -- where the quantizers go -------------------------------------------------------------


class _Plan:
    """Decides, from the original graph, what each call becomes and which tensors get which quantizer.

    Tensors are the keys of :func:`~edgesmith.converters.graph.iter_calls`. A tensor is *interior* when
    TFLite never materializes it (a convolution's output feeding the BatchNorm folded into it, or an
    output feeding the ReLU fused into its op). The inputs and outputs of a same-scale op form one
    *group*; a group is quantized when one of its tensors is made by an op with its own range or read by
    a quantized op, and then every tensor of it that is made elsewhere than by a same-scale or
    fixed-range op (by a kernel or range op, a float layer, or the model input) gets the group's quantizer.
    """

    def __init__(self, model, weight_bits: int = 8):
        self.weight_bits = weight_bits
        calls, inputs, outputs = iter_calls(model, "qat")
        self.model_outputs = set(outputs)
        self.producer = {key: call for call in calls for key in call.outputs}
        self.consumers = defaultdict(list)
        for call in calls:
            for key in call.inputs:
                self.consumers[key].append(call)
        self.fold_into = self._batchnorm_folds(calls)  # id(kernel layer) -> the BatchNorm folded into it
        self.folded = [batchnorm.name for batchnorm in self.fold_into.values()]
        self.roles = {id(call): self._role(call) for call in calls}
        interior = self._interior(calls)
        self.group = _groups(call for call in calls if self.roles[id(call)] == "same_scale")
        self.quantized_keys = self._quantized_keys(calls, inputs, interior)
        self.pending = defaultdict(deque)  # id(layer) -> its calls not yet rebuilt, in order
        for call in calls:
            self.pending[id(call.layer)].append(call)
        self.float_layers = set()
        self.quantizers = {}  # group -> its ActivationQuantizer
        self.input_quantized = {}  # id(model input tensor) -> its quantized tensor
        self.copies = {}
        self.quantizer_count = 0

    # -- planning, on the original graph -------------------------------------------

    def _batchnorm_folds(self, calls) -> dict:
        folds = {}
        for call in calls:
            source = self.producer.get(call.inputs[0]) if call.inputs else None
            if (int8_handler(call.layer).folds_into_kernel and source is not None
                    and int8_role(source.layer) == "kernel" and activation_name(source.layer) == "linear"
                    and self._only_feeds(source, call)):
                folds[id(source.layer)] = call.layer
        return folds

    def _only_feeds(self, source, call) -> bool:
        key = source.outputs[0]
        return (len(source.outputs) == 1 and [c.layer for c in self.consumers[key]] == [call.layer]
                and key not in self.model_outputs)

    def _role(self, call) -> str:
        if any(call.layer is batchnorm for batchnorm in self.fold_into.values()):
            return "folded"
        return int8_role(call.layer)

    def _output_role(self, call) -> str:
        """The role that decides whether the call's output gets a range (a Dense(softmax) is fixed)."""
        role = self.roles[id(call)]
        if role == "kernel" and fixed_range(call.layer) is not None:
            return "fixed"
        return "range" if role in ("kernel", "folded") else role

    def _interior(self, calls) -> set:
        interior = set()
        for call in calls:
            if len(call.outputs) != 1 or call.outputs[0] in self.model_outputs:
                continue
            following = self.consumers[call.outputs[0]]
            if len(following) != 1:
                continue
            into_batchnorm = self.fold_into.get(id(call.layer)) is following[0].layer
            fusing = self.roles[id(call)] == "folded" or fuses_activation(call.layer)
            if into_batchnorm or (fusing and is_fused_activation(following[0].layer)):
                interior.add(call.outputs[0])
        return interior

    def _quantized_keys(self, calls, inputs, interior) -> set:
        made_by = {key: self._output_role(call) for call in calls for key in call.outputs}
        made_by.update(dict.fromkeys(inputs, "input"))
        quantized_groups = {self.group(key) for key, role in made_by.items() if role == "range" and key not in interior}
        quantized_groups |= {self.group(key) for call in calls if self.roles[id(call)] in ("kernel", "range")
                             for key in call.inputs if key not in interior}
        return {key for key, role in made_by.items() if role in ("range", "float", "input")
                and key not in interior and self.group(key) in quantized_groups}

    # -- called by graph.rewrite for every call, on the new tensors --------------------

    def replace(self, layer, *args, **kwargs):
        call = self.pending[id(layer)].popleft()
        args, kwargs = self._quantize_model_inputs(call, (args, kwargs))
        outputs = self._build(call, args, kwargs)
        return self._quantize_outputs(call, outputs)

    def _build(self, call, args, kwargs):
        role = self.roles[id(call)]
        if role == "folded":
            return args[0]  # already folded into the convolution before it
        if role == "kernel":
            return self._kernel_layer(call.layer, args[0])
        if role == "float":
            self.float_layers.add(call.layer.name)
        copy = copy_layer(call.layer, self.copies) if is_layer(call.layer) else call.layer  # ops are stateless
        return copy(*args, **kwargs)

    def _quantize_model_inputs(self, call, arguments):
        flat = keras.tree.flatten(arguments)
        keys = iter(call.inputs)
        for position, tensor in enumerate(flat):
            if not isinstance(tensor, keras.KerasTensor):
                continue
            key = next(keys, None)
            if key in self.quantized_keys and key not in self.producer:
                if id(tensor) not in self.input_quantized:
                    self.input_quantized[id(tensor)] = self._quantizer_of(key)(tensor)
                flat[position] = self.input_quantized[id(tensor)]
        return keras.tree.pack_sequence_as(arguments, flat)

    def _quantize_outputs(self, call, outputs):
        flat = keras.tree.flatten(outputs)
        fixed = fixed_range(call.layer) if self._output_role(call) == "fixed" else None
        for position, key in enumerate(call.outputs[: len(flat)]):
            if key in self.quantized_keys:
                flat[position] = self._quantizer_of(key)(flat[position])
            elif fixed is not None:
                flat[position] = FixedRangeQuantizer(*fixed)(flat[position])
        return keras.tree.pack_sequence_as(outputs, flat)

    def _quantizer_of(self, key):
        group = self.group(key)
        if group not in self.quantizers:
            self.quantizers[group] = self._new_quantizer()
        return self.quantizers[group]

    def _new_quantizer(self):
        self.quantizer_count += 1
        return ActivationQuantizer()

    def _kernel_layer(self, layer, inputs):
        """The fake-quantized twin of a Conv/Dense/SeparableConv; a non-fusable activation after a range."""
        fused = activation_name(layer) in ("linear", *FUSED_ACTIVATIONS)
        batchnorm = self.fold_into.get(id(layer))
        if type(layer) is keras.layers.SeparableConv2D:
            outputs = _separable(layer, inputs, batchnorm, fused, self._new_quantizer(), self.weight_bits)
        else:
            outputs = _quantized_copy(layer, batchnorm, fused, self.weight_bits)(inputs)
        if fused:
            return outputs
        outputs = self._new_quantizer()(outputs)  # the pre-activation tensor, e.g. logits before softmax
        return keras.layers.Activation(layer.activation, name=f"{layer.name}_activation")(outputs)


def _groups(same_scale_calls):
    """``group(key)``: a representative key shared by all tensors tied by same-scale ops (union-find)."""
    parent = {}

    def find(key):
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for call in same_scale_calls:
        keys = [*call.inputs, *call.outputs]
        for key in keys[1:]:
            parent[find(key)] = find(keys[0])
    return find


# -- kernels -------------------------------------------------------------------------------


def _quantized_copy(layer, batchnorm, keep_activation: bool, weight_bits: int = 8):
    """The fake-quantized twin of a Conv/Dense layer, with ``batchnorm`` folded in (depthwise kernels: 8 bits)."""
    config = layer.get_config()
    config.update(use_bias=True, activation=config["activation"] if keep_activation else "linear",
                  folded=batchnorm is not None)
    if type(layer) is not keras.layers.DepthwiseConv2D:
        config["weight_bits"] = weight_bits
    twin = QUANT_TWINS[type(layer)].from_config(config)
    kernel, bias = layer.get_weights()[0], (layer.get_weights()[1] if layer.use_bias else None)
    kernel_variable = layer.weights[0]

    def call(inputs):
        outputs = twin(inputs)
        folded_bias, *factor = _fold(_output_channels(kernel.shape, layer), bias, batchnorm)
        twin.set_weights([kernel, folded_bias, *factor])
        _carry_constraint(kernel_variable, twin)
        return outputs

    return call


def _fold(out_shape: tuple, bias, batchnorm) -> list:
    """``[bias]`` folding ``batchnorm`` in, and its per-output-channel kernel factor: ``[bias, factor]``
    (no ``batchnorm``: ``[bias]``)."""
    bias = np.zeros(int(np.prod(out_shape)), np.float32) if bias is None else bias
    if batchnorm is None:
        return [bias]
    gamma, beta, mean, variance = _batchnorm_parameters(batchnorm)
    scale = gamma / np.sqrt(variance + batchnorm.epsilon)
    return [(bias - mean) * scale + beta, scale.reshape(out_shape)]


def _batchnorm_parameters(batchnorm):
    values = dict(zip([w.path.split("/")[-1] for w in batchnorm.weights], batchnorm.get_weights()))
    size = len(values["moving_mean"])
    return (values.get("gamma", np.ones(size, np.float32)), values.get("beta", np.zeros(size, np.float32)),
            values["moving_mean"], values["moving_variance"])


def _carry_constraint(variable, twin):
    """Move a pruning mask or cluster constraint from the original kernel to its twin (the same values)."""
    if variable.constraint is not None:
        layer_kernels(twin)[0].set_constraint(copied_constraint(variable.constraint))


def _separable(layer, inputs, batchnorm, keep_activation: bool, hidden_range, weight_bits: int = 8):
    """SeparableConv2D as TFLite runs it: depthwise, a range (``hidden_range``), then a 1x1 convolution."""
    config = layer.get_config()
    depthwise = keras.layers.DepthwiseConv2D(
        config["kernel_size"], strides=config["strides"], padding=config["padding"],
        depth_multiplier=config["depth_multiplier"], dilation_rate=config["dilation_rate"], use_bias=False,
        name=f"{layer.name}_depthwise",
    )
    pointwise = keras.layers.Conv2D(config["filters"], 1, use_bias=config["use_bias"],
                                    activation=config["activation"], name=f"{layer.name}_pointwise")
    depthwise.build(inputs.shape)
    pointwise.build((*inputs.shape[:-1], inputs.shape[-1] * config["depth_multiplier"]))
    weights = layer.get_weights()
    depthwise.set_weights([weights[0]])
    pointwise.set_weights(weights[1:])
    for part, variable in ((depthwise, layer.depthwise_kernel), (pointwise, layer.pointwise_kernel)):
        getattr(part, "kernel").constraint = variable.constraint
    hidden = hidden_range(_quantized_copy(depthwise, None, True)(inputs))
    return _quantized_copy(pointwise, batchnorm, keep_activation, weight_bits)(hidden)
