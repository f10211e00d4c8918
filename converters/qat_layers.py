"""The layers :func:`~edgesmith.converters.qat.qat` builds its models from: int8 (and int4) fake quantization.

>>> import numpy as np
>>> kernel = np.array([[0.5, -1.0], [0.2, 0.01]], np.float32)
>>> np.round(np.asarray(fake_quant_weights(kernel, bits=4)), 3)   # per output channel: steps of max / 7
array([[ 0.5  , -1.   ],
       [ 0.214,  0.   ]], dtype=float32)

Activations are quantized per tensor, asymmetric int8, by an :class:`ActivationQuantizer` whose range is a
moving min/max (or a :class:`FixedRangeQuantizer` on the grid TFLite fixes for softmax, sigmoid and tanh);
kernels per output channel, symmetric, by the ``Quant*`` twins of Conv1D, Conv2D, DepthwiseConv2D and Dense
(:data:`QUANT_TWINS`), which also carry a folded BatchNorm's factor. The classes are registered with Keras
(package ``edgesmith``), so a saved quantization-aware model loads once this module is imported.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .inputs import call_model
from .kernels import all_layers
from .verify import eval_batch_size

ops = keras.ops

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
    quantize = (tf.quantization.fake_quant_with_min_max_vars_per_channel if per_channel
                else tf.quantization.fake_quant_with_min_max_vars)
    return quantize(kernel, -limit, limit, num_bits=bits, narrow_range=True)


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
class PerChannel(keras.layers.Layer):
    """``inputs * values`` (``op="mul"``) or ``inputs + values`` (``op="add"``), one value per channel: a
    BatchNorm that no convolution takes in, as TFLite runs it (a MUL, then an ADD), so that QAT can give the MUL's
    output the range TFLite's int8 MUL needs."""

    def __init__(self, op: str, **kwargs):
        super().__init__(**kwargs)
        self.op = op

    def build(self, input_shape):
        self.values = self.add_weight(name=self.op, shape=(input_shape[-1],),
                                      initializer="ones" if self.op == "mul" else "zeros")

    def call(self, inputs):
        return inputs * self.values if self.op == "mul" else inputs + self.values

    def get_config(self):
        return {**super().get_config(), "op": self.op}


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
            self.fold_scale = self.add_weight(name="fold_scale", shape=output_channels(self.kernel.shape, self),
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

    def finished(self, outputs, bias_shape=(-1,)):
        """``outputs`` plus the bias (shaped ``bias_shape``), through the activation: the end of every twin's call."""
        if self.use_bias:
            outputs = ops.add(outputs, ops.reshape(self.bias, bias_shape))
        return self.activation(outputs) if self.activation is not None else outputs

    def get_config(self):
        return {**super().get_config(), "weight_bits": self.weight_bits, "folded": self.folded}


def output_channels(kernel_shape, layer) -> tuple:
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
        return self.finished(ops.squeeze(outputs, axis=steps_axis), (1, 1, -1) if steps_axis == 1 else (1, -1, 1))


@keras.saving.register_keras_serializable(package="edgesmith")
class QuantDepthwiseConv(FoldedKernel, keras.layers.DepthwiseConv2D):
    """DepthwiseConv2D whose kernel is fake-quantized per output channel (input x multiplier; 8 bits only)."""

    def call(self, inputs):
        outputs = ops.depthwise_conv(inputs, fake_quant_depthwise(self.scaled_kernel()), strides=self.strides,
                                     padding=self.padding, dilation_rate=self.dilation_rate,
                                     data_format=self.data_format)
        return self.finished(outputs)


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
        return self.finished(ops.matmul(inputs, kernel))


# the fake-quantized twin of each "kernel" layer, keyed by the Keras class it extends (SeparableConv2D: _separable)
QUANT_TWINS = {twin.__bases__[-1]: twin for twin in (QuantConv, QuantConv1D, QuantDepthwiseConv, QuantDense)}
QAT_LAYERS = (ActivationQuantizer, FixedRangeQuantizer, *QUANT_TWINS.values())


def stored_kernel(layer) -> np.ndarray:
    """The kernel of ``layer`` as TFLite stores it: a :func:`qat` twin's with its folded BatchNorm factor."""
    return np.asarray(layer.scaled_kernel() if isinstance(layer, FoldedKernel) else layer.kernel)


def weight_bits_of(model) -> int | None:
    """The narrowest kernel width of a :func:`qat` model (4 or 8); None when it has no fake-quantized kernel."""
    twins = tuple(QUANT_TWINS.values())
    return min((layer.weight_bits for layer in all_layers(model) if isinstance(layer, twins)), default=None)


def has_fake_quant(model) -> bool:
    """True when ``model`` contains layers made by :func:`qat`."""
    return isinstance(model, keras.Model) and any(isinstance(layer, QAT_LAYERS) for layer in all_layers(model))


def calibrate_ranges(model, samples, batch_size: int | None = None) -> None:
    """Set every activation range of a QAT model to the min/max it sees on ``samples`` (inference mode), in
    batches of ``batch_size`` (default :func:`~edgesmith.converters.verify.eval_batch_size`: 64 MobileNetV2
    inputs at 224 x 224 in one eager call peaked at 6.4 GB)."""
    batch_size = batch_size or eval_batch_size(samples.shape[1:])
    quantizers = clear_ranges(model)
    for quantizer in quantizers:
        quantizer.calibrating = True
    try:
        for start in range(0, len(samples), batch_size):
            call_model(model, samples[start : start + batch_size])
    finally:
        for quantizer in quantizers:
            quantizer.calibrating = False


def clear_ranges(model) -> list:
    """Empty every activation range of a QAT model, as a new one has them; return its activation quantizers."""
    quantizers = [layer for layer in all_layers(model) if isinstance(layer, ActivationQuantizer)]
    for quantizer in quantizers:
        for variable in (quantizer.range_min, quantizer.range_max, quantizer.seen):
            variable.assign(0.0)
    return quantizers
