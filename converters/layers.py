"""What edgesmith knows about each Keras layer type, written once.

One table, :data:`HANDLERS`, keyed by Keras layer class. Each handler answers the
same questions for its layer type, and every architecture pass asks them:

* ``kind``: how output channels relate to input channels (the dependency graph):
  ``"source"`` (new channels: Conv, Dense, SeparableConv), ``"same"`` (each output
  channel is its input channel: BatchNorm, activations, pooling, depthwise with
  depth multiplier 1), ``"merge"`` (element-wise Add/Multiply...: all inputs share
  channels), ``"concat"``, ``"expand"`` (each input channel becomes several:
  depthwise with depth multiplier > 1, Flatten) or ``"opaque"`` (anything else:
  left untouched, its channels never pruned).
* ``count_in`` / ``count_out``: channel counts;
* ``slice``: the layer's config and weights with only some input and output
  channels kept (used by channel pruning to rebuild a smaller model);
* ``macs``: multiply-accumulates of one call, from its input and output shapes
  (channel counts come from the shapes, so the MACs of a would-be pruned model are
  the same call on smaller shapes);
* ``kernels``: which weights are kernels (the ones prune, cluster and qat work on)
  and which constructor argument keeps each one's constraint.

Supporting a new layer type means adding one handler here, not touching the passes.
The second half of the module is what the weight passes need on top: the
:class:`Kernel` of every layer and copying a model with its constraints.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass

import keras
import numpy as np


L = keras.layers


def _prod(values) -> int:
    return int(math.prod(int(v) for v in values))


class Handler:
    """A layer with no weights whose channels are unknown to edgesmith: left untouched."""

    kind = "opaque"
    config_has_channels = False  # the config names a channel count (so pruning must rewrite it)
    kernels: tuple = ()  # ((weight attribute, constructor argument holding its constraint), ...)

    def count_in(self, layer, in_shape) -> int:
        return int(in_shape[-1])

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
            mask = np.ones(weight.shape, dtype=bool)
            for axis, role in axes.items():
                kept = np.zeros(weight.shape[axis], dtype=bool)
                kept[positions[role]] = True
                shape = [1] * weight.ndim
                shape[axis] = -1
                mask &= kept.reshape(shape)
            weights.append(np.where(mask, weight, 0).astype(weight.dtype))
        return weights

    def _positions(self, layer, keep_in, keep_out):
        multiplier = getattr(layer, "depth_multiplier", 1)
        return {"in": keep_in, "out": keep_out, "mid": expanded_positions(keep_in, multiplier)}


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

    def __init__(self, size_key: str):
        self.size_key = size_key

    def count_in(self, layer, in_shape):
        return int(layer.kernel.shape[-2]) * getattr(layer, "groups", 1)

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

    kernels = (("kernel", "depthwise_constraint"),)

    def expansion(self, layer, in_shape):
        return np.arange(int(in_shape[-1]) * layer.depth_multiplier).reshape(-1, layer.depth_multiplier)

    @property
    def kind(self):  # decided per layer in :func:`kind_of`
        return "depthwise"

    def count_in(self, layer, in_shape):
        return int(layer.kernel.shape[-2])

    def count_out(self, layer, out_shape):
        return int(layer.kernel.shape[-2] * layer.kernel.shape[-1])

    def macs(self, layer, in_shapes, out_shapes):
        return _prod(out_shapes[0][1:]) * _prod(layer.kernel.shape[:-2])

    def channel_axes(self, layer):
        return [{-2: "in"}] + [{0: "out"}] * (len(layer.weights) - 1)


def expanded_positions(keep, factor: int) -> np.ndarray:
    """Positions ``c * factor + j`` for every kept channel ``c`` and ``j < factor``."""
    keep = np.asarray(keep, dtype=np.int64)
    return (keep[:, None] * factor + np.arange(factor)[None, :]).reshape(-1)


class Separable(Handler):
    """SeparableConv1D/2D: a depthwise kernel then a pointwise ``(1, ..., C * m, F)`` one."""

    kind = "source"
    kernels = (("depthwise_kernel", "depthwise_constraint"), ("pointwise_kernel", "pointwise_constraint"))

    def count_in(self, layer, in_shape):
        return int(layer.depthwise_kernel.shape[-2])

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


HANDLERS: dict[type, Handler] = {
    L.Conv1D: Affine("filters"),
    L.Conv2D: Affine("filters"),
    L.Conv3D: Affine("filters"),
    L.Dense: Affine("units"),
    L.Conv2DTranspose: TransposedConv(),
    L.DepthwiseConv1D: Depthwise(),
    L.DepthwiseConv2D: Depthwise(),
    L.SeparableConv1D: Separable(),
    L.SeparableConv2D: Separable(),
    L.BatchNormalization: BatchNorm(),
    L.Flatten: Flatten(),
    L.Reshape: Reshape(),
    L.Concatenate: Concat(),
    **{cls: Merge() for cls in (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)},
    **{
        cls: Pooling()
        for cls in (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D, L.AveragePooling1D, L.AveragePooling2D,
                    L.AveragePooling3D)
    },
    **{
        cls: GlobalPooling()
        for cls in (L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D,
                    L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D)
    },
    **{
        cls: SameChannels()
        for cls in (L.Activation, L.ReLU, L.LeakyReLU, L.ELU, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D,
                    L.GaussianNoise, L.GaussianDropout, L.AlphaDropout, L.ZeroPadding1D, L.ZeroPadding2D,
                    L.ZeroPadding3D, L.Cropping1D, L.Cropping2D, L.UpSampling1D, L.UpSampling2D, L.Identity,
                    L.Rescaling)
    },
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


def _activation_name(layer) -> str:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", str(activation or ""))


def mixes_outputs(layer) -> bool:
    """Whether the layer's activation mixes its output channels (softmax): those are never removed."""
    return _activation_name(layer) in MIXING_ACTIVATIONS


def kind_of(layer, in_shapes, out_shapes) -> str:
    """The channel relation of one call of ``layer`` (see the module docstring), checked on its shapes."""
    handler = handler_for(layer)
    kind = handler.kind
    if kind == "depthwise":
        kind = "same" if layer.depth_multiplier == 1 else "expand"
    if isinstance(layer, L.Softmax) or (kind != "source" and mixes_outputs(layer)):
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



# -- kernels: the weights prune, cluster and qat work on ---------------------------------


@dataclass(frozen=True)
class Kernel:
    """One kernel variable of one layer, and where its constraint is kept."""

    layer: object
    attribute: str
    constraint_argument: str

    @property
    def name(self) -> str:
        return self.layer.name if self.attribute == "kernel" else f"{self.layer.name}/{self.attribute}"

    @property
    def variable(self):
        return getattr(self.layer, self.attribute)

    @property
    def constraint(self):
        return self.variable.constraint

    def set_constraint(self, constraint) -> None:
        """Enforce ``constraint`` after every optimizer step, and save it with the model."""
        setattr(self.layer, self.constraint_argument, constraint)
        self.variable.constraint = constraint


def is_skipped(layer, skip, path: str | None = None) -> bool:
    """Whether a pass's ``skip`` option names ``layer``: its name (or ``path`` inside nested models), a regular
    expression matching the whole name, or its class name. One meaning for every pass.

    >>> is_skipped(keras.layers.Dense(2, name="head"), ["he.*"]), is_skipped(keras.layers.Dense(2), ["Conv2D"])
    (True, False)
    """
    names = [layer.name] + ([path] if path else [])
    return any(rule in (*names, type(layer).__name__) or any(re.fullmatch(rule, name) for name in names)
               for rule in skip)


def recurrent_layers(model) -> list:
    """``"LSTM 'name'"`` for every recurrent layer (RNN subclasses and their Bidirectional wrappers).

    >>> model = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4, name="gru")])
    >>> recurrent_layers(model)
    ["GRU 'gru'"]
    """
    return [f"{type(layer).__name__} {layer.name!r}" for layer in all_layers(model)
            if isinstance(layer, (L.RNN, L.Bidirectional))]


def all_layers(model) -> list:
    """Every layer of ``model``, nested sub-models (and their layers) included, each once."""
    found, seen = [], set()
    for layer in getattr(model, "layers", []):
        for each in [layer, *(all_layers(layer) if isinstance(layer, keras.Model) else [])]:
            if id(each) not in seen:
                seen.add(id(each))
                found.append(each)
    return found


def kernels(model) -> list:
    """The :class:`Kernel` of every built layer whose handler has kernels.

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="fc")])
    >>> [kernel.name for kernel in kernels(model)]
    ['fc']
    """
    return [kernel for layer in all_layers(model) for kernel in layer_kernels(layer)]


def layer_kernels(layer) -> list:
    """The kernels of one layer (none if it is not built or its type has none)."""
    rows = handler_for(layer).kernels if layer.built else ()
    return [Kernel(layer, attribute, argument) for attribute, argument in rows]


def copy_model(model):
    """An independent copy of a Sequential/Functional model, weights and constraints included."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for original, cloned in zip(kernels(model), kernels(copy)):
        if original.constraint is not None:
            cloned.set_constraint(type(original.constraint).from_config(original.constraint.get_config()))
    return copy


def encode_array(array) -> dict:
    """A small JSON-safe form of a bool or integer array (kernel constraints keep masks in their configs)."""
    array = np.asarray(array)
    if array.dtype == bool:
        payload, kind = np.packbits(array.ravel()).tobytes(), "bits"
    else:
        payload, kind = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"))).tobytes(), array.dtype.str
    return {"shape": list(array.shape), "dtype": kind, "data": base64.b64encode(payload).decode("ascii")}


def decode_array(encoded: dict):
    """Inverse of :func:`encode_array`."""
    raw = base64.b64decode(encoded["data"])
    shape = tuple(encoded["shape"])
    if encoded["dtype"] == "bits":
        return np.unpackbits(np.frombuffer(raw, np.uint8), count=int(np.prod(shape))).astype(bool).reshape(shape)
    return np.frombuffer(raw, np.dtype(encoded["dtype"])).reshape(shape).copy()
