"""How TFLite's int8 kernels treat each Keras layer and ``keras.ops`` operation, written once.

Quantization-aware training (:mod:`.qat`) asks one question of every call in a
functional graph, :func:`int8_role`, and places its fake quantization from the
answer:

* ``"kernel"``: Conv/Depthwise/Separable/Dense: weights quantized per channel,
  a learned output range (BatchNorm and ReLU/ReLU6 fold into it).
* ``"same_scale"``: TFLite's int8 spec makes input and output share one scale and
  zero point (max/average pooling, PAD, RESHAPE, CONCATENATION, SLICE, RESIZE,
  TRANSPOSE, MAXIMUM/MINIMUM, REDUCE_MAX, and ops that vanish at inference such as
  Dropout). The QAT model gives them no quantizer of their own: the output reuses
  the input's range, and multi-input ones (Concatenate, Maximum) share one
  quantizer across their inputs.
* ``"range"``: int8 with its own output scale (ADD, MUL, SUB, MEAN, activations,
  a BatchNorm or Rescaling that stays on its own): one learned range on the output.
* ``"fixed"``: the int8 kernel fixes the output scale (SOFTMAX and LOGISTIC
  1/256, TANH 1/128): no learned range; the QAT model rounds to that same grid
  (:func:`fixed_range`), so near-ties break the same way in Keras and in the .tflite.
* ``"float"``: anything else (LayerNormalization, MultiHeadAttention, custom
  layers, DIVIDE, ...): edgesmith keeps it float.

Keras 3 functional graphs also hold operations that are not layers (``x + 3.0``
is a ``keras.ops`` ``Add``); they have their own table, since a class name such as
``Add`` means a layer in one table and an operation in the other.

>>> int8_role(keras.layers.MaxPooling2D())
'same_scale'
>>> int8_role(keras.layers.Activation("sigmoid"))
'fixed'
"""

from __future__ import annotations

import keras

KERNEL_LAYERS = ("Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense")
SAME_SCALE_LAYERS = (
    "InputLayer", "Flatten", "Reshape", "Permute", "RepeatVector", "Concatenate", "Maximum", "Minimum",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
    "UpSampling1D", "UpSampling2D", "UpSampling3D", "Resizing",
    # no op at inference: the output is the input
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "ActivityRegularization", "Identity",
)
RANGE_LAYERS = (
    "Add", "Subtract", "Multiply", "Average", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "Rescaling", "Normalization", "BatchNormalization", "ReLU", "LeakyReLU", "PReLU", "ELU",
    "Activation",
)
FIXED_LAYERS = ("Softmax",)

SAME_SCALE_OPS = (
    "Reshape", "Ravel", "Transpose", "Moveaxis", "Swapaxes", "Squeeze", "ExpandDims", "Concatenate", "Stack",
    "Split", "Unstack", "GetItem", "Slice", "Take", "Tile", "Repeat", "BroadcastTo", "Pad", "MaxPool",
    "AveragePool", "Max", "Amax", "Min", "Amin", "Maximum", "Minimum", "Resize", "DepthToSpace", "SpaceToDepth",
    "Copy", "StopGradient",
)
RANGE_OPS = ("Add", "Subtract", "Multiply", "Mean", "Average", "Negative", "Abs", "Absolute", "Square", "Relu",
             "Relu6", "LeakyRelu", "Elu", "Gelu", "Silu", "HardSilu", "HardSigmoid")
FIXED_OPS = ("Softmax", "Sigmoid", "Tanh", "LogSoftmax")

FIXED_RANGES = {  # (min, max) of TFLite's fixed int8 output grid: scale and zero point of the int8 kernel
    "softmax": (0.0, 255 / 256), "sigmoid": (0.0, 255 / 256), "tanh": (-1.0, 127 / 128),
    "log_softmax": (-255 * 16 / 256, 0.0),
}
FIXED_ACTIVATIONS = tuple(FIXED_RANGES)
FUSED_ACTIVATIONS = ("relu", "relu6")  # TFLite folds these into the op before them
FUSING = ("Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense", "Add", "Subtract", "Multiply")


def is_layer(op) -> bool:
    """True for a Keras layer; False for a ``keras.ops`` operation recorded in a functional graph."""
    return isinstance(op, keras.layers.Layer)


def int8_role(op) -> str:
    """``"kernel"``, ``"same_scale"``, ``"range"``, ``"fixed"`` or ``"float"`` (see the module docstring)."""
    kind = type(op).__name__
    if not is_layer(op):
        return _lookup(kind, ((SAME_SCALE_OPS, "same_scale"), (RANGE_OPS, "range"), (FIXED_OPS, "fixed")))
    if kind == "Activation":
        return {"linear": "same_scale", **dict.fromkeys(FIXED_ACTIVATIONS, "fixed")}.get(activation_name(op), "range")
    return _lookup(kind, ((KERNEL_LAYERS, "kernel"), (SAME_SCALE_LAYERS, "same_scale"), (RANGE_LAYERS, "range"),
                          (FIXED_LAYERS, "fixed")))


def _lookup(kind, tables) -> str:
    return next((role for names, role in tables if kind in names), "float")


def fixed_range(op) -> tuple:
    """``(min, max)`` of the int8 grid TFLite fixes for the output of ``op`` (a ``"fixed"`` op, or a layer
    whose activation is one); None when the output scale is free."""
    name = type(op).__name__.lower() if not is_layer(op) or type(op).__name__ == "Softmax" else activation_name(op)
    return FIXED_RANGES.get({"logsoftmax": "log_softmax"}.get(name, name))


def activation_name(layer) -> str:
    """The name of a layer's activation function (``"linear"`` when it has none)."""
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", "linear") if activation is not None else "linear"


def is_fused_activation(op) -> bool:
    """True for a ReLU/ReLU6 (layer or operation) that TFLite folds into the op before it."""
    kind = type(op).__name__
    if not is_layer(op):
        return kind in ("Relu", "Relu6")
    if kind == "ReLU":
        return op.max_value in (None, 6.0, 6) and not op.negative_slope and not op.threshold
    return kind == "Activation" and activation_name(op) in FUSED_ACTIVATIONS


def fuses_activation(op) -> bool:
    """True when a ReLU/ReLU6 after ``op`` runs inside it (CONV_2D, FULLY_CONNECTED, ADD, ... with a fused
    activation), so the range belongs after the activation, not between."""
    if type(op).__name__ not in FUSING:
        return False
    return not is_layer(op) or activation_name(op) == "linear"
