"""The input contract: how a model wants its pixels normalized, chosen once and recorded.

A model is fed ``(pixel - mean) / std`` per channel, pixels in 0..255, in RGB or
(``caffe``) BGR order. Who decides, strongest first:

1. the user: ``--preprocess NAME`` or ``--mean/--std`` on the command line, the
   ``preprocess`` argument of the Python API, or a recipe's ``preprocess`` key;
2. the model: a graph that starts with ``Rescaling`` or ``Normalization`` (also
   inside a nested model, as in keras.applications EfficientNet, MobileNetV3 and
   ConvNeXt) normalizes inside, so it takes raw pixels (mean 0, std 1);
3. the default: pixels / 255 (0..1).

The choice, with who made it, goes into the .tflite metadata so that a device
repeats it. The source model is then measured on labelled data; a model that
scores at chance was fed data it cannot read, and :func:`refuse_at_chance`
stops the run before any training.

>>> choice = preprocessing_from("tf")
>>> choice.mean, choice.std, choice.describe()
((127.5,), (127.5,), 'tf: -1..1, pixels / 127.5 - 1 (keras.applications MobileNet, MobileNetV2, NASNet, Xception); chosen by the user')
>>> preprocessing_from(mean=[0.5], std=[0.25]).name
'custom'
>>> min_source_accuracy(0.1)   # 10 balanced classes: chance 10 %, refused below 20 %
0.2
"""

from __future__ import annotations

from dataclasses import dataclass

from edgesmith.runtime.errors import InputError

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # RGB, pixels 0..255
IMAGENET_STD = (58.395, 57.12, 57.375)

# name -> (mean, std, channel order, what it means)
PRESETS = {
    "raw": ((0.0,), (1.0,), "rgb", "raw pixels 0..255 (models that normalize inside)"),
    "unit": ((0.0,), (255.0,), "rgb", "0..1, pixels / 255"),
    "tf": ((127.5,), (127.5,), "rgb",
           "-1..1, pixels / 127.5 - 1 (keras.applications MobileNet, MobileNetV2, NASNet, Xception)"),
    "torch": (IMAGENET_MEAN, IMAGENET_STD, "rgb", "ImageNet mean/std on 0..1 pixels (keras.applications DenseNet)"),
    "caffe": ((103.939, 116.779, 123.68), (1.0,), "bgr",
              "BGR order minus the ImageNet mean, no scaling (keras.applications ResNet, VGG)"),
}
ALIASES = {"0..255": "raw", "0..1": "unit", "-1..1": "tf", "imagenet": "torch"}
ORIGINS = {"user": "chosen by the user", "recipe": "from the recipe", "model": "read from the model",
           "default": "the default for a model that does not normalize inside"}


class InputContractError(InputError):
    """The data cannot be fed as the model expects (bad preprocessing options, a source model at chance)."""


@dataclass(frozen=True)
class Preprocessing:
    """How pixels become model input: ``(pixel - mean) / std`` per channel, in ``channel_order``.

    ``name`` is a preset name or ``"custom"``; ``origin`` says who chose it (a key of
    :data:`ORIGINS`); ``reason`` says why, when the model decided.
    """

    mean: tuple
    std: tuple
    channel_order: str = "rgb"
    name: str = "custom"
    origin: str = "user"
    reason: str = ""

    def describe(self) -> str:
        """One line: the preset (or values) and who chose it."""
        what = f"{self.name}: {PRESETS[self.name][3]}" if self.name in PRESETS else \
            f"mean {_values(self.mean)}, std {_values(self.std)}"
        why = f" ({self.reason})" if self.reason else ""
        return f"{what}; {ORIGINS[self.origin]}{why}"

    def as_dict(self) -> dict:
        """The fields the metadata records (``mean``/``std`` lists, the preset and who chose it)."""
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std], "preset": self.name,
                "chosen_by": self.origin, **({"reason": self.reason} if self.reason else {})}


def preset(name: str, origin: str = "user", reason: str = "") -> Preprocessing:
    """The preset ``name`` (or one of its :data:`ALIASES`); unknown names list the valid ones."""
    key = ALIASES.get(name, name)
    if key not in PRESETS:
        presets = ", ".join(f"{k} ({v[3]})" for k, v in PRESETS.items())
        raise InputContractError(f"unknown preprocessing {name!r}; presets: {presets}")
    mean, std, order, _ = PRESETS[key]
    return Preprocessing(mean, std, order, key, origin, reason)


def preprocessing_from(preprocess=None, mean=None, std=None, origin: str = "user") -> Preprocessing | None:
    """The user's choice from options: a preset name, a ``{"mean", "std"}`` table, or ``mean``/``std``
    values (one, or one per channel); None when nothing was given.

    >>> preprocessing_from({"mean": 127.5, "std": [127.5]}).std
    (127.5,)
    """
    if isinstance(preprocess, Preprocessing):
        return preprocess
    if isinstance(preprocess, dict):
        unknown = sorted(set(preprocess) - {"mean", "std"})
        if unknown:
            raise InputContractError(f"preprocess takes mean and std; unknown key(s): {', '.join(unknown)}")
        preprocess, mean, std = None, preprocess.get("mean", mean), preprocess.get("std", std)
    if preprocess is not None:
        if mean is not None or std is not None:
            raise InputContractError("give a preprocessing preset or mean/std values, not both")
        return preset(str(preprocess), origin)
    if mean is None and std is None:
        return None
    mean, std = _numbers("mean", 0.0 if mean is None else mean), _numbers("std", 1.0 if std is None else std)
    if any(value == 0 for value in std):
        raise InputContractError("std must not be 0")
    return Preprocessing(mean, std, "rgb", "custom", origin)


def recorded_preprocess(metadata: dict | None):
    """The preprocessing a .tflite's edgesmith metadata records, as a ``preprocess`` argument (a preset name or
    ``{"mean", "std"}``); None when it records none (or its data was fed as stored).

    >>> recorded_preprocess({"preprocessing": {"mean": [127.5], "std": [127.5], "preset": "tf"}})
    'tf'
    >>> recorded_preprocess({"preprocessing": {"input": "as stored"}}) is None
    True
    """
    recorded = (metadata or {}).get("preprocessing") or {}
    if recorded.get("preset") in PRESETS:
        return recorded["preset"]
    if "mean" in recorded and "std" in recorded:
        return {"mean": recorded["mean"], "std": recorded["std"]}
    return None


def parse_values(text: str | None) -> tuple | None:
    """``"127.5"`` or ``"123.7,116.3,103.5"`` (a --mean/--std option) as a tuple of floats."""
    if text is None:
        return None
    try:
        return tuple(float(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise InputContractError(f"expected a number or comma-separated numbers, got {text!r}") from None


def choose_preprocessing(explicit: Preprocessing | None, normalizing_layer: str | None) -> Preprocessing:
    """The user's choice if any; else raw pixels for a model whose ``normalizing_layer`` normalizes
    inside; else 0..1."""
    if explicit is not None:
        return explicit
    if normalizing_layer is not None:
        return preset("raw", "model", f"it starts with {normalizing_layer}")
    return preset("unit", "default")


def min_source_accuracy(chance: float) -> float:
    """The accuracy below which a source model counts as unable to read the data.

    Twice ``chance`` (the share of the most frequent class), but no more than a quarter of
    the way from chance to 100 % (so a two-class model needs 62.5 %, not 100 %).
    """
    return round(min(2.0 * chance, chance + 0.25 * (1.0 - chance)), 6)


def refuse_at_chance(accuracy: float | None, labels, preprocessing: str, source: str) -> None:
    """Raise :class:`InputContractError` when the source model's ``accuracy`` on ``labels`` (the
    evaluation split's class indices) is at chance: it cannot read the data as it is fed
    (``preprocessing`` describes how it was fed)."""
    if accuracy is None or labels is None or len(labels) == 0:
        return
    import numpy as np

    chance = float(np.bincount(np.asarray(labels)).max() / len(labels))
    threshold = min_source_accuracy(chance)
    if accuracy < threshold:
        raise InputContractError(
            f"the source model scores {100 * accuracy:.2f}% on {source}, at chance level ({100 * chance:.2f}%; "
            f"refused below {100 * threshold:.2f}%) with preprocessing {preprocessing}: it cannot read "
            "the data as fed. Give the normalization it was trained with (--preprocess raw|unit|tf|torch|caffe, "
            "or --mean/--std), or check the labels"
        )


def _numbers(option: str, value) -> tuple:
    values = value if isinstance(value, (list, tuple)) else [value]
    try:
        numbers = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise InputContractError(f"{option} must be a number or a list of numbers, got {value!r}") from None
    if not numbers:
        raise InputContractError(f"{option} needs at least one value")
    return numbers


def _values(values) -> str:
    return ",".join(f"{v:g}" for v in values)
