"""What a Keras model expects at its input: its inputs' structure, and does it normalize pixels itself?

:func:`call_model` feeds a batch in the structure the model declares: a Keras 2
functional model (a legacy ``.h5``) declares its one input as a list, and Keras
warns on every call that gives it the bare array.

A graph whose first layer (after layers that leave pixel values alone, and inside
a nested model such as keras.applications') is ``Rescaling`` or ``Normalization``
takes raw 0..255 pixels (a ``Normalization`` only when its mean is on the pixel
scale: one adapted on 0..1 data expects 0..1): the Keras image-classification tutorial's layout,
keras.applications EfficientNet, EfficientNetV2, MobileNetV3 and ConvNeXt.

>>> import keras
>>> inputs = keras.Input((8, 8, 3))
>>> scaled = keras.layers.Rescaling(1 / 255, name="scale")(inputs)
>>> model = keras.Model(inputs, keras.layers.Conv2D(4, 3)(scaled))
>>> normalizing_layer(model)
"Rescaling 'scale'"
"""

from __future__ import annotations

from .errors import UnsupportedModelError
from .graph import iter_calls

NORMALIZING = ("Rescaling", "Normalization")
# layers that may stand before the normalization without changing pixel values' scale
# (resizing, inference-time no-ops such as augmentation and dropout)
VALUE_PRESERVING = ("InputLayer", "Resizing", "CenterCrop", "Cropping2D", "ZeroPadding2D", "Dropout",
                    "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomCrop",
                    "RandomContrast", "RandomBrightness", "Identity", "Reshape", "Permute")


def call_model(model, batch, training: bool = False):
    """``model(batch, training=training)``, with a single array wrapped in a list when ``model`` declares a list of
    one input (Keras 2 functional models do).

    >>> import keras, numpy as np
    >>> inputs = keras.Input((3,))
    >>> listed = keras.Model([inputs], keras.layers.Dense(2)(inputs))   # what a legacy .h5 loads as
    >>> tuple(call_model(listed, np.zeros((1, 3), np.float32)).shape)  # no "structure of inputs" warning
    (1, 2)
    """
    declared = getattr(model, "input", None)  # None for a Sequential never called
    if isinstance(declared, (list, tuple)) and len(declared) == 1 and not isinstance(batch, (list, tuple)):
        batch = [batch]
    return model(batch, training=training)


def normalizing_layer(model) -> str | None:
    """``"Rescaling 'name'"`` when ``model``'s first input goes straight into a Rescaling or
    Normalization layer, else None (also for models whose graph cannot be read)."""
    try:
        calls, inputs, _ = iter_calls(model, "input detection")
    except UnsupportedModelError:
        return None
    key = inputs[0]
    for call in calls:
        if key not in call.inputs:
            continue
        kind = type(call.layer).__name__
        if kind in NORMALIZING:
            return f"{kind} {call.layer.name!r}" if _takes_pixels(call.layer) else None
        if kind not in VALUE_PRESERVING or len(call.outputs) != 1:
            return None
        key = call.outputs[0]
    return None


def _takes_pixels(layer) -> bool:
    if type(layer).__name__ != "Normalization":
        return True
    import numpy as np

    mean = getattr(layer, "mean", None)
    return mean is None or float(np.max(np.abs(np.asarray(mean)))) > 1.5
