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
  layers, subclasses of Keras layers, DIVIDE, ...): edgesmith keeps it float.

A layer's role is a fact of its handler in :data:`.layers.HANDLERS`; a layer that only
applies an activation function takes that function's role if it has one (``linear``:
same scale; softmax, sigmoid, tanh: fixed). Kept here is what is not a layer: activation
functions, and the ``keras.ops`` operations functional graphs also hold (``x + 3.0`` is
an ``Add`` operation), in a small table of their own (``Add`` names a layer there).

>>> int8_role(keras.layers.MaxPooling2D())
'same_scale'
>>> int8_role(keras.layers.Activation("sigmoid")), int8_role(keras.layers.Activation("relu"))
('fixed', 'range')
"""

from __future__ import annotations

import keras

from .layers import activation_name, int8_handler

OP_ROLES = {  # keras.ops operations by class name
    **dict.fromkeys(("Reshape", "Ravel", "Transpose", "Moveaxis", "Swapaxes", "Squeeze", "ExpandDims", "Concatenate",
                     "Stack", "Split", "Unstack", "GetItem", "Slice", "Take", "Tile", "Repeat", "BroadcastTo", "Pad",
                     "MaxPool", "AveragePool", "Max", "Amax", "Min", "Amin", "Maximum", "Minimum", "Resize",
                     "DepthToSpace", "SpaceToDepth", "Copy", "StopGradient"), "same_scale"),
    **dict.fromkeys(("Add", "Subtract", "Multiply", "Mean", "Average", "Negative", "Abs", "Absolute", "Square",
                     "Relu", "Relu6", "LeakyRelu", "Elu", "Gelu", "Silu", "HardSilu", "HardSigmoid"), "range"),
    **dict.fromkeys(("Softmax", "Sigmoid", "Tanh", "LogSoftmax"), "fixed"),
}
FUSING_OPS = ("Add", "Subtract", "Multiply")  # operations a ReLU/ReLU6 after them runs inside

# (min, max) of the int8 output grid TFLite fixes for these functions: scale and zero point of the int8 kernel
FIXED_RANGES = {"softmax": (0.0, 255 / 256), "sigmoid": (0.0, 255 / 256), "tanh": (-1.0, 127 / 128),
                "log_softmax": (-255 * 16 / 256, 0.0)}
FUSED_ACTIVATIONS = ("relu", "relu6")  # TFLite folds these into the op before them
ACTIVATION_ROLES = {"linear": "same_scale", **dict.fromkeys(FIXED_RANGES, "fixed")}  # others: the layer's own


def is_layer(op) -> bool:
    """True for a Keras layer; False for a ``keras.ops`` operation recorded in a functional graph."""
    return isinstance(op, keras.layers.Layer)


def int8_role(op) -> str:
    """``"kernel"``, ``"same_scale"``, ``"range"``, ``"fixed"`` or ``"float"`` (see the module docstring)."""
    if not is_layer(op):
        return OP_ROLES.get(type(op).__name__, "float")
    handler = int8_handler(op)
    return ACTIVATION_ROLES.get(handler.pure_activation(op), handler.int8)


def fixed_range(op) -> tuple | None:
    """``(min, max)`` of the int8 grid TFLite fixes for the output of ``op`` (a ``"fixed"`` op, or a layer
    whose activation is one); None when the output scale is free."""
    if not is_layer(op):
        return FIXED_RANGES.get({"LogSoftmax": "log_softmax"}.get(type(op).__name__, type(op).__name__.lower()))
    return FIXED_RANGES.get(int8_handler(op).pure_activation(op) or activation_name(op))


def is_fused_activation(op) -> bool:
    """True for a ReLU/ReLU6 (layer or operation) that TFLite folds into the op before it."""
    if not is_layer(op):
        return type(op).__name__ in ("Relu", "Relu6")
    return int8_handler(op).pure_activation(op) in FUSED_ACTIVATIONS


def fuses_activation(op) -> bool:
    """True when a ReLU/ReLU6 after ``op`` runs inside it (CONV_2D, FULLY_CONNECTED, ADD, ... with a fused
    activation), so the range belongs after the activation, not between."""
    if not is_layer(op):
        return type(op).__name__ in FUSING_OPS
    return int8_handler(op).fuses_relu and activation_name(op) == "linear"
