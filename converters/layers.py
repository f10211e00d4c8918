"""What edgesmith knows about each Keras layer type, written once.

One table, :data:`HANDLERS`, keyed by Keras layer class. Each handler answers the
same questions for its layer type, and every pass asks them:

* ``kind``: how output channels relate to input channels (the dependency graph):
  ``"source"`` (new channels: Conv, Dense, SeparableConv), ``"same"`` (each output
  channel is its input channel: BatchNorm, activations, pooling, depthwise with
  depth multiplier 1), ``"merge"`` (element-wise Add/Multiply...: all inputs share
  channels), ``"concat"``, ``"expand"`` (each input channel becomes several:
  depthwise with depth multiplier > 1, Flatten) or ``"opaque"`` (anything else:
  left untouched, its channels never pruned).
* ``count_out``: the layer's output channel count;
* ``slice``: the layer's config and weights with only some input and output
  channels kept (used by channel pruning to rebuild a smaller model);
* ``macs``: multiply-accumulates of one call, from its input and output shapes
  (channel counts come from the shapes, so the MACs of a would-be pruned model are
  the same call on smaller shapes);
* ``kernels``: which weights are kernels (the ones prune, cluster and qat work on)
  and which constructor argument keeps each one's constraint;
* ``int8``: its role in TFLite's int8 graph, where QAT puts fake quantization (see
  :mod:`.int8_ops`; ``"float"`` unless named); ``fuses_relu``: a ReLU/ReLU6 after it
  runs inside it; ``folds_into_kernel``: QAT folds it (BatchNorm) into the linear
  kernel layer feeding it; ``pure_activation``: the function that is all the layer
  computes (Activation, ReLU, Softmax). Int8 facts are read for the layer's exact
  class (:func:`int8_handler`), the others for subclasses too (:func:`handler_for`).

Supporting a new layer type means adding one handler here, not touching the passes
(:mod:`.kernels` holds what the weight passes need on top of the table).

>>> handler_for(keras.layers.Conv2D(8, 3)).kind, int8_handler(keras.layers.Conv2D(8, 3)).int8
('source', 'kernel')
"""

from __future__ import annotations

import math

import keras
import numpy as np


L = keras.layers


def _prod(values) -> int:
    return int(math.prod(int(v) for v in values))


class Handler:
    """A layer with no weights whose channels are unknown to edgesmith: left untouched (float in int8 by default)."""

    kind = "opaque"
    config_has_channels = False  # the config names a channel count (so pruning must rewrite it)
    kernels: tuple = ()  # ((weight attribute, constructor argument holding its constraint), ...)
    folds_into_kernel = False  # QAT folds the layer into the linear kernel layer feeding it

    def __init__(self, int8: str = "float", fuses_relu: bool | None = None, pure_activation=None):
        self.int8 = int8
        self.fuses_relu = int8 == "kernel" if fuses_relu is None else fuses_relu
        self.pure_activation = pure_activation or (lambda layer: None)  # layer -> function name or None

    def count_out(self, layer, out_shape) -> int:
        return int(out_shape[-1])

    def expansion(self, layer, in_shape) -> np.ndarray:
        """For ``kind == "expand"``: row c holds the output positions made from input channel c."""
        raise NotImplementedError

    def macs(self, layer, in_shapes, out_shapes) -> int:
        return 0

    def channel_axes(self, layer) -> list:
        """Per weight, which of its axes index input (``"in"``), output (``"out"``) or, in separable
        convolutions, depthwise-output (``"mid"``) channels: ``[{axis: role}, ...]``."""
        return [{} for _ in layer.weights]

    def resized_config(self, layer, out_channels: int) -> dict:
        return layer.get_config()

    def slice(self, layer, keep_in, keep_out):
        """``(config, weights)`` of the layer keeping channel positions ``keep_in``/``keep_out``."""
        positions = self._positions(layer, keep_in, keep_out)
        weights = []
        for weight, axes in zip(layer.get_weights(), self.channel_axes(layer)):
            for axis, role in axes.items():
                weight = np.take(weight, positions[role], axis=axis)
            weights.append(weight)
        return self.resized_config(layer, len(keep_out)), weights

    def zeroed(self, layer, keep_in, keep_out) -> list:
        """The layer's weights with every channel outside ``keep_in``/``keep_out`` set to 0."""
        positions = self._positions(layer, keep_in, keep_out)
        weights = []
        for weight, axes in zip(layer.get_weights(), self.channel_axes(layer)):
            weight = np.array(weight)
            for axis, role in axes.items():
                dropped = np.setdiff1d(np.arange(weight.shape[axis]), positions[role])
                np.moveaxis(weight, axis, 0)[dropped] = 0  # a view: zeroes those positions along ``axis``
            weights.append(weight)
        return weights

    def _positions(self, layer, keep_in, keep_out):
        """Kept positions per role; ``"mid"``: ``c * m + j`` for every kept input channel c and ``j < m``."""
        multiplier = getattr(layer, "depth_multiplier", 1)
        mid = np.asarray(keep_in, dtype=np.int64)[:, None] * multiplier + np.arange(multiplier)
        return {"in": keep_in, "out": keep_out, "mid": mid.reshape(-1)}


class SameChannels(Handler):
    """Element-wise or spatial layers without weights: output channel i is input channel i."""

    kind = "same"


class Pooling(SameChannels):
    """Max/average pooling: one operation per window element of every output."""

    def macs(self, layer, in_shapes, out_shapes):
        return _prod(out_shapes[0][1:]) * _prod(layer.pool_size)


class GlobalPooling(SameChannels):
    """Global pooling: one operation per input element."""

    def macs(self, layer, in_shapes, out_shapes):
        return _prod(in_shapes[0][1:])


class BatchNorm(SameChannels):
    """BatchNormalization over the last axis: every weight is per channel (one MAC an element
    before folding; TFLite folds it into the preceding convolution)."""

    folds_into_kernel = True

    def macs(self, layer, in_shapes, out_shapes):
        return _prod(out_shapes[0][1:])

    def channel_axes(self, layer):
        return [{0: "out"} for _ in layer.weights]


class Reshape(SameChannels):
    """Reshape keeping the last axis (e.g. ``(C,) -> (1, 1, C)`` in squeeze-excite); others are opaque."""

    config_has_channels = True

    def resized_config(self, layer, out_channels):
        config = layer.get_config()
        shape = list(config["target_shape"])
        if shape[-1] != -1:
            shape[-1] = out_channels
        return dict(config, target_shape=tuple(shape))


class Merge(Handler):
    """Add, Subtract, Multiply, Average, Maximum, Minimum: all inputs share their channels."""

    kind = "merge"


class Concat(Handler):
    """Concatenate along the channel axis: output channels are the inputs' in order."""

    kind = "concat"


class Flatten(Handler):
    """Flatten of ``(..., C)``: input channel c becomes positions ``p * C + c`` for every ``p``."""

    kind = "expand"

    def expansion(self, layer, in_shape):
        channels, positions = int(in_shape[-1]), _prod(in_shape[1:-1])
        return np.arange(channels * positions).reshape(positions, channels).T


class Affine(Handler):
    """Conv1D/2D/3D and Dense: kernel ``(..., C_in / groups, C_out)``, optional bias ``(C_out,)``."""

    kind = "source"
    kernels = (("kernel", "kernel_constraint"),)

    def __init__(self, size_key: str, int8: str = "float"):
        super().__init__(int8)
        self.size_key = size_key

    def count_out(self, layer, out_shape):
        return int(layer.kernel.shape[-1])

    def macs(self, layer, in_shapes, out_shapes):
        fan_in = _prod(layer.kernel.shape[:-2]) * (int(in_shapes[0][-1]) // getattr(layer, "groups", 1))
        return _prod(out_shapes[0][1:]) * fan_in

    def channel_axes(self, layer):
        return [{-2: "in", -1: "out"}] + [{0: "out"}] * (len(layer.weights) - 1)

    def resized_config(self, layer, out_channels):
        return dict(layer.get_config(), **{self.size_key: out_channels})


class Depthwise(Handler):
    """DepthwiseConv1D/2D: kernel ``(..., C, multiplier)``; output channel ``c * m + j`` reads channel c."""

    kind = "depthwise"  # "same" or "expand", decided per layer by :func:`kind_of`
    kernels = (("kernel", "depthwise_constraint"),)

    def expansion(self, layer, in_shape):
        return np.arange(int(in_shape[-1]) * layer.depth_multiplier).reshape(-1, layer.depth_multiplier)

    def count_out(self, layer, out_shape):
        return int(layer.kernel.shape[-2] * layer.kernel.shape[-1])

    def macs(self, layer, in_shapes, out_shapes):
        return _prod(out_shapes[0][1:]) * _prod(layer.kernel.shape[:-2])

    def channel_axes(self, layer):
        return [{-2: "in"}] + [{0: "out"}] * (len(layer.weights) - 1)


class Separable(Handler):
    """SeparableConv1D/2D: a depthwise kernel then a pointwise ``(1, ..., C * m, F)`` one."""

    kind = "source"
    kernels = (("depthwise_kernel", "depthwise_constraint"), ("pointwise_kernel", "pointwise_constraint"))

    def count_out(self, layer, out_shape):
        return int(layer.pointwise_kernel.shape[-1])

    def macs(self, layer, in_shapes, out_shapes):
        channels = int(in_shapes[0][-1]) * layer.depth_multiplier
        window = _prod(layer.depthwise_kernel.shape[:-2])
        return _prod(out_shapes[0][1:-1]) * channels * (window + int(out_shapes[0][-1]))

    def channel_axes(self, layer):
        return [{-2: "in"}, {-2: "mid", -1: "out"}] + [{0: "out"}] * (len(layer.weights) - 2)

    def resized_config(self, layer, out_channels):
        return dict(layer.get_config(), filters=out_channels)


class TransposedConv(Handler):
    """Conv2DTranspose: its kernel is pruned, clustered and quantized, but its channels are left alone."""

    kernels = Affine.kernels


def activation_name(layer) -> str:
    """The name of a layer's activation function (``"linear"`` when it has none)."""
    return getattr(getattr(layer, "activation", None), "__name__", "linear")


def plain_relu(layer) -> str | None:
    """``"relu"`` or ``"relu6"`` for a ReLU layer without negative slope, threshold or other cap; else None."""
    plain = not layer.negative_slope and not layer.threshold
    return {None: "relu", 6: "relu6"}.get(layer.max_value) if plain else None


HANDLERS: dict[type, Handler] = {
    L.Conv1D: Affine("filters", int8="kernel"),
    L.Conv2D: Affine("filters", int8="kernel"),
    L.Conv3D: Affine("filters"),  # int8 "float" (the default): QAT has no fake-quantized twin of it
    L.Dense: Affine("units", int8="kernel"),
    L.Conv2DTranspose: TransposedConv(),
    L.DepthwiseConv1D: Depthwise(),
    L.DepthwiseConv2D: Depthwise(int8="kernel"),
    L.SeparableConv1D: Separable(),
    L.SeparableConv2D: Separable(int8="kernel"),
    L.BatchNormalization: BatchNorm(int8="range", fuses_relu=True),  # alone: a MUL and an ADD, which fuses it
    L.Flatten: Flatten(int8="same_scale"),
    L.Reshape: Reshape(int8="same_scale"),
    L.Concatenate: Concat(int8="same_scale"),
    **dict.fromkeys((L.Add, L.Subtract, L.Multiply), Merge(int8="range", fuses_relu=True)),
    L.Average: Merge(int8="range"),
    **dict.fromkeys((L.Maximum, L.Minimum), Merge(int8="same_scale")),
    **dict.fromkeys((L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D, L.AveragePooling1D, L.AveragePooling2D,
                     L.AveragePooling3D), Pooling(int8="same_scale")),
    **dict.fromkeys((L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D),
                    GlobalPooling(int8="same_scale")),
    **dict.fromkeys((L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D),
                    GlobalPooling(int8="range")),
    L.Activation: SameChannels(int8="range", pure_activation=activation_name),
    L.ReLU: SameChannels(int8="range", pure_activation=plain_relu),
    **dict.fromkeys((L.LeakyReLU, L.ELU, L.Rescaling), SameChannels(int8="range")),
    **dict.fromkeys((L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.SpatialDropout3D, L.GaussianNoise,
                     L.GaussianDropout, L.AlphaDropout, L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D,
                     L.Cropping1D, L.Cropping2D, L.UpSampling1D, L.UpSampling2D, L.Identity),
                    SameChannels(int8="same_scale")),  # Dropout and noise layers do nothing at inference
    # channels not followed (opaque), int8 role known
    **dict.fromkeys((L.InputLayer, L.Permute, L.RepeatVector, L.Resizing, L.Cropping3D, L.UpSampling3D,
                     L.ActivityRegularization), Handler(int8="same_scale")),
    **dict.fromkeys((L.PReLU, L.Normalization), Handler(int8="range")),
    L.Softmax: Handler(int8="fixed", pure_activation=lambda layer: "softmax"),  # mixes channels: opaque
}

# Activations that mix channels: a layer ending in one of these keeps all its output channels.
MIXING_ACTIVATIONS = {"softmax", "log_softmax"}
OPAQUE = Handler()


def handler_for(layer) -> Handler:
    """The handler of ``layer``'s class (or its nearest registered base class)."""
    for cls in type(layer).__mro__:
        if cls in HANDLERS:
            return HANDLERS[cls]
    return OPAQUE


def int8_handler(layer) -> Handler:
    """The handler whose int8 facts hold for ``layer``: its exact class's. A subclass may compute something
    else, and QAT would rebuild it as its base class, so a class not in the table stays float."""
    return HANDLERS.get(type(layer), OPAQUE)


def mixes_outputs(layer) -> bool:
    """Whether the layer's activation mixes its output channels (softmax): those are never removed."""
    return activation_name(layer) in MIXING_ACTIVATIONS


def kind_of(layer, in_shapes, out_shapes) -> str:
    """The channel relation of one call of ``layer`` (see the module docstring), checked on its shapes."""
    kind = handler_for(layer).kind
    if kind == "depthwise":
        kind = "same" if layer.depth_multiplier == 1 else "expand"
    if kind != "source" and mixes_outputs(layer):
        return "opaque"
    if getattr(layer, "groups", 1) != 1 or getattr(layer, "data_format", "channels_last") != "channels_last":
        return "opaque"
    if isinstance(layer, L.BatchNormalization) and layer.axis not in (-1, len(in_shapes[0]) - 1):
        return "opaque"
    if isinstance(layer, L.Concatenate) and layer.axis not in (-1, len(out_shapes[0]) - 1):
        return "opaque"
    if isinstance(layer, L.Rescaling) and np.ndim(layer.scale) + np.ndim(layer.offset) > 0:
        return "opaque"
    if kind == "same" and in_shapes[0][-1] != out_shapes[0][-1]:
        return "opaque"  # e.g. a Reshape that moves channels; (C,) -> (1, 1, C) keeps them
    return kind
