"""Quantization-aware training, native to Keras 3 (TensorFlow backend), without tfmot.

>>> from edgesmith.converters import qat, ptq
>>> trained = qat(model, data, epochs=2)
>>> tflite = ptq(trained, data, mode="int8")     # a true int8 graph from the learned ranges

The model is rebuilt with fake quantization where TFLite will quantize:
weights per output channel, symmetric int8 (``narrow_range``); activations per
tensor, asymmetric int8, after each op TFLite fuses (Conv/Dense + folded
BatchNorm + ReLU/ReLU6, Add, Concatenate, global pooling, Rescaling,
hard-swish) and on the model input. BatchNorm after a convolution is folded
into it (with its statistics frozen), SeparableConv2D becomes the depthwise and
pointwise convolutions TFLite runs. Pruning masks and cluster constraints move
to the new kernels, so sparsity and weight sharing survive. Layers it does not
know stay float, are logged as a warning (logger ``edgesmith.converters.qat``)
and listed in the record's ``details["float_layers"]``.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import keras
import numpy as np
import tensorflow as tf

from .graph import iter_calls, rewrite
from .layers import layer_kernels, stage_record
from .load import require_graph
from .record import remember
from .train import fine_tune

log = logging.getLogger(__name__)
ops = keras.ops

FUSED_ACTIVATIONS = ("relu", "relu6")  # TFLite folds these into Conv/Dense/Add
PASSTHROUGH = ("InputLayer", "Flatten", "Reshape", "Dropout", "SpatialDropout2D", "MaxPooling1D", "MaxPooling2D",
               "AveragePooling1D", "AveragePooling2D", "Identity", "GaussianNoise", "ActivityRegularization")
OUTPUT_RANGE = ("Add", "Concatenate", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
                "GlobalMaxPooling2D", "Rescaling", "BatchNormalization", "ReLU", "Activation", "Subtract",
                "Multiply", "Average", "Maximum", "Minimum", "ZeroPadding2D")
UNQUANTIZED_OUTPUT = ("Softmax",)  # TFLite fixes its int8 output range
FOLDABLE = ("Conv1D", "Conv2D", "DepthwiseConv2D", "Dense", "SeparableConv2D")


# -- fake quantization -------------------------------------------------------------


def fake_quant_weights(kernel, per_channel: bool = True):
    """Symmetric int8 fake quantization of a kernel, per output channel (last axis) or per tensor.

    Dense kernels are quantized per tensor: TFLite transposes them for FULLY_CONNECTED,
    and the converter cannot carry a per-channel axis through that transpose.
    """
    axes = tuple(range(len(kernel.shape) - 1)) if per_channel else None
    limit = tf.stop_gradient(ops.maximum(ops.max(ops.abs(kernel), axis=axes), 1e-8))
    if per_channel:
        return tf.quantization.fake_quant_with_min_max_vars_per_channel(kernel, -limit, limit, narrow_range=True)
    return tf.quantization.fake_quant_with_min_max_vars(kernel, -limit, limit, narrow_range=True)


def fake_quant_depthwise(kernel):
    """A depthwise kernel [h, w, in, multiplier] quantized per output channel (in x multiplier)."""
    h, w, channels, multiplier = kernel.shape
    quantized = fake_quant_weights(ops.reshape(kernel, (h, w, 1, channels * multiplier)))
    return ops.reshape(quantized, (h, w, channels, multiplier))


@keras.saving.register_keras_serializable(package="edgesmith")
class ActivationQuantizer(keras.layers.Layer):
    """Per-tensor asymmetric int8 fake quantization with a range learned as a moving min/max."""

    def __init__(self, momentum: float = 0.99, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum

    def build(self, input_shape):
        self.range_min = self.add_weight(name="range_min", shape=(), initializer="zeros", trainable=False)
        self.range_max = self.add_weight(name="range_max", shape=(), initializer="zeros", trainable=False)
        self.seen = self.add_weight(name="seen", shape=(), initializer="zeros", trainable=False)

    def call(self, inputs, training=None):
        if training:
            self._update_range(inputs)
        return tf.quantization.fake_quant_with_min_max_vars(inputs, self.range_min, self.range_max, num_bits=8)

    def _update_range(self, inputs):
        low, high = ops.minimum(ops.min(inputs), 0.0), ops.maximum(ops.max(inputs), 0.0)
        keep = self.momentum * self.seen  # 0 on the first batch: start from its range
        self.range_min.assign(keep * self.range_min + (1.0 - keep) * low)
        self.range_max.assign(keep * self.range_max + (1.0 - keep) * high)
        self.seen.assign(1.0)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}


@keras.saving.register_keras_serializable(package="edgesmith")
class QuantConv(keras.layers.Conv2D):
    """Conv2D whose kernel is fake-quantized per output channel."""

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, fake_quant_weights(kernel))


@keras.saving.register_keras_serializable(package="edgesmith")
class QuantConv1D(keras.layers.Conv1D):
    """Conv1D whose kernel is fake-quantized per output channel."""

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, fake_quant_weights(kernel))


@keras.saving.register_keras_serializable(package="edgesmith")
class QuantDepthwiseConv(keras.layers.DepthwiseConv2D):
    """DepthwiseConv2D whose kernel is fake-quantized per output channel (input x multiplier)."""

    def call(self, inputs):
        outputs = ops.depthwise_conv(inputs, fake_quant_depthwise(self.kernel), strides=self.strides,
                                     padding=self.padding, dilation_rate=self.dilation_rate,
                                     data_format=self.data_format)
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable(package="edgesmith")
class QuantDense(keras.layers.Dense):
    """Dense whose kernel is fake-quantized (per tensor, as TFLite's FULLY_CONNECTED converts)."""

    def call(self, inputs, training=None):
        outputs = ops.matmul(inputs, fake_quant_weights(self._kernel, per_channel=False))
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs


QUANT_CLASSES = {"Conv2D": QuantConv, "Conv1D": QuantConv1D, "DepthwiseConv2D": QuantDepthwiseConv, "Dense": QuantDense}
QAT_LAYERS = (ActivationQuantizer, *QUANT_CLASSES.values())


def has_fake_quant(model) -> bool:
    """True when ``model`` contains layers made by :func:`qat`."""
    layers = model._flatten_layers(include_self=False, recursive=True) if isinstance(model, keras.Model) else []
    return any(isinstance(layer, QAT_LAYERS) for layer in layers)


# -- the pass --------------------------------------------------------------------------


def qat(model, data, epochs: int = 2, learning_rate: float = 2e-4, progress=None):
    """Rebuild ``model`` with int8 fake quantization (BatchNorm folded) and fine-tune it.

    Args:
        model: a Sequential or Functional Keras model (left unchanged; a new model is returned).
        data: labeled :class:`edgesmith.data.Dataset` for fine-tuning.
        epochs: fine-tuning epochs (at least one is needed to learn activation ranges).
        learning_rate: Adam learning rate.
    """
    require_graph(model, "qat")
    if has_fake_quant(model):
        return remember(model, stage_record("qat", model, details={"note": "already quantization-aware"}))
    plan = _Plan(model)
    rebuilt = rewrite(model, plan.replace, "qat")
    if plan.float_layers:
        log.warning("qat: left in float (edgesmith cannot quantize these layers): %s", ", ".join(sorted(plan.float_layers)))
    fine_tune(rebuilt, data, max(1, epochs), learning_rate, progress, stage="qat")
    details = {"folded_batchnorm": sorted(plan.folded), "float_layers": sorted(plan.float_layers),
               "activation_quantizers": plan.quantizers}
    return remember(rebuilt, stage_record("qat", rebuilt, details=details))


class _Plan:
    """Decides, from the original graph, what each layer becomes and where ranges are learned."""

    def __init__(self, model):
        calls, inputs, outputs = iter_calls(model, "qat")
        producer = {key: call for call in calls for key in call.outputs}
        consumers = defaultdict(list)
        for call in calls:
            for key in call.inputs:
                consumers[key].append(call)
        self.model_outputs = set(outputs)
        self.fold_into = {}  # id(conv layer) -> batchnorm layer folded into it
        self.folded = []
        for call in calls:
            source = producer.get(call.inputs[0]) if call.inputs else None
            if (type(call.layer).__name__ == "BatchNormalization" and source is not None
                    and type(source.layer).__name__ in FOLDABLE and self._sole(consumers, source, call)):
                self.fold_into[id(source.layer)] = call.layer
                self.folded.append(call.layer.name)
        self.fused_next = {id(c.layer) for c in calls if self._feeds_fused_activation(c, consumers)}
        self.float_layers = set()
        self.quantizers = 0
        self.ranged = set()  # ids of new tensors that carry a learned range

    def _sole(self, consumers, source, call) -> bool:
        key = source.outputs[0]
        return len(source.outputs) == 1 and [c.layer for c in consumers[key]] == [call.layer] and \
            key not in self.model_outputs

    def _feeds_fused_activation(self, call, consumers) -> bool:
        """True when this op's only consumer is a ReLU/ReLU6 TFLite fuses into it (the range goes after that)."""
        if len(call.outputs) != 1 or call.outputs[0] in self.model_outputs:
            return False
        following = consumers[call.outputs[0]]
        kind = type(call.layer).__name__
        fusing = kind in FOLDABLE or kind in ("Add", "BatchNormalization", "SeparableConv2D")
        return fusing and len(following) == 1 and _is_fused_activation(following[0].layer)

    # -- called by graph.rewrite for every layer, on the new tensors ----------------

    def replace(self, layer, *args, **kwargs):
        kind = type(layer).__name__
        if kind in PASSTHROUGH:
            outputs = _copy(layer)(*args, **kwargs)
            if all(id(t) in self.ranged for t in keras.tree.flatten(args)):
                self._mark(outputs)
            return outputs
        if kind == "BatchNormalization" and any(layer is bn for bn in self.fold_into.values()):
            return self._output(layer, args[0])  # already folded into the convolution before it
        known = kind in QUANT_CLASSES or kind in OUTPUT_RANGE or kind == "SeparableConv2D" or kind in UNQUANTIZED_OUTPUT
        if not known:
            self.float_layers.add(layer.name)
            return None
        args = keras.tree.map_structure(self._ranged_input, args)
        if kind == "SeparableConv2D":
            return self._output(layer, _separable(layer, args[0], self))
        if kind in QUANT_CLASSES:
            return self._kernel_layer(layer, args[0])
        outputs = _copy(layer)(*args, **kwargs)
        return outputs if kind in UNQUANTIZED_OUTPUT else self._output(layer, outputs)

    def _kernel_layer(self, layer, inputs):
        activation = layer.get_config().get("activation") or "linear"
        activation = activation if isinstance(activation, str) else getattr(layer.activation, "__name__", "linear")
        fused = activation in ("linear", *FUSED_ACTIVATIONS)
        outputs = _quantized_copy(layer, self.fold_into.get(id(layer)), fused)(inputs)
        if fused:
            return self._output(layer, outputs)
        outputs = self._quantize(outputs)  # e.g. logits before softmax
        outputs = keras.layers.Activation(activation, name=f"{layer.name}_activation")(outputs)
        return outputs if activation == "softmax" else self._quantize(outputs)

    def _output(self, layer, outputs):
        """Learn a range after ``layer`` unless TFLite fuses the activation that follows into it."""
        if id(layer) in self.fused_next:
            return outputs
        return self._quantize(outputs)

    def _quantize(self, tensor):
        self.quantizers += 1
        quantized = ActivationQuantizer()(tensor)
        self._mark(quantized)
        return quantized

    def _ranged_input(self, tensor):
        if not isinstance(tensor, keras.KerasTensor) or id(tensor) in self.ranged:
            return tensor
        return self._quantize(tensor)  # a model input, or the output of a float layer

    def _mark(self, tensors):
        for tensor in keras.tree.flatten(tensors):
            self.ranged.add(id(tensor))


def _is_fused_activation(layer) -> bool:
    kind = type(layer).__name__
    if kind == "ReLU":
        return layer.max_value in (None, 6.0, 6) and not layer.negative_slope and not layer.threshold
    if kind == "Activation":
        return getattr(layer.activation, "__name__", "") in FUSED_ACTIVATIONS
    return False


def _copy(layer):
    """A fresh copy of a layer without kernels (with its weights, e.g. a standalone BatchNorm)."""
    copy = type(layer).from_config(layer.get_config())
    weights = layer.get_weights()

    def call(*args, **kwargs):
        outputs = copy(*args, **kwargs)
        if weights:
            copy.set_weights(weights)
        return outputs

    return call


def _quantized_copy(layer, batchnorm, keep_activation: bool):
    """The fake-quantized twin of a Conv/Dense layer, with ``batchnorm`` folded in."""
    config = layer.get_config()
    config.update(use_bias=True, activation=config["activation"] if keep_activation else "linear")
    twin = QUANT_CLASSES[type(layer).__name__].from_config(config)
    kernel, bias = layer.get_weights()[0], (layer.get_weights()[1] if layer.use_bias else None)
    kernel_variable = layer.weights[0]

    def call(inputs):
        outputs = twin(inputs)
        factor, folded_bias = _fold(kernel, bias, batchnorm, isinstance(twin, QuantDepthwiseConv))
        twin.set_weights([kernel * factor, folded_bias])
        _carry_constraint(kernel_variable, twin, factor)
        return outputs

    return call


def _fold(kernel, bias, batchnorm, depthwise: bool):
    """(per-output-channel kernel factor, new bias) folding ``batchnorm`` (None: factor 1).

    A depthwise kernel's output channels are its last two axes (input x multiplier).
    """
    out_shape = kernel.shape[-2:] if depthwise else kernel.shape[-1:]
    bias = np.zeros(int(np.prod(out_shape)), np.float32) if bias is None else bias
    if batchnorm is None:
        return np.ones(out_shape, np.float32), bias
    gamma, beta, mean, variance = _batchnorm_parameters(batchnorm)
    scale = gamma / np.sqrt(variance + batchnorm.epsilon)
    return scale.reshape(out_shape), (bias - mean) * scale + beta


def _batchnorm_parameters(batchnorm):
    values = dict(zip([w.path.split("/")[-1] for w in batchnorm.weights], batchnorm.get_weights()))
    size = len(values["moving_mean"])
    return (values.get("gamma", np.ones(size, np.float32)), values.get("beta", np.zeros(size, np.float32)),
            values["moving_mean"], values["moving_variance"])


def _carry_constraint(variable, twin, factor):
    """Move a pruning mask or cluster constraint from the original kernel to its twin."""
    constraint = variable.constraint
    if constraint is None:
        return
    moved = constraint.scaled(factor) if hasattr(constraint, "scaled") else type(constraint).from_config(
        constraint.get_config())
    layer_kernels(twin)[0].set_constraint(moved)


def _separable(layer, inputs, plan):
    """SeparableConv2D as TFLite runs it: depthwise, a range, then a 1x1 convolution."""
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
    hidden = plan._quantize(_quantized_copy(depthwise, None, True)(inputs))
    return _quantized_copy(pointwise, plan.fold_into.get(id(layer)), True)(hidden)
