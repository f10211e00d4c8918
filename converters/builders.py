"""Student models from a short spec: ``mobilenet_v2:alpha=0.35``, ``mobilenet_v3_small``, ``resnet50``...

A spec is a ``keras.applications`` family in snake case, then optionally ``:``
and comma-separated ``option=value`` pairs passed to it. The model is built
with ``weights=None`` for any input shape and class count (inputs smaller than
32 x 32 are zero-padded up to it, the applications' minimum), and ends in a
softmax exactly when the teacher does.

>>> student = build_student("mobilenet_v2:alpha=0.35", input_shape=(96, 96, 3), classes=10)
>>> student.count_params() < 500_000
True
"""

from __future__ import annotations

import inspect

import keras

from .errors import UnknownOptionError

MIN_SIZE = 32  # keras.applications refuse smaller inputs


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


# "mobilenet_v2", "MobileNetV2" and "mobilenetv2" all name keras.applications.MobileNetV2
BUILDERS = {_key(name): name for name in dir(keras.applications) if name[:1].isupper()}


def parse_spec(spec: str):
    """``(keras.applications function, options)`` for ``spec``; unknown names and options list the valid ones."""
    name, _, rest = spec.strip().partition(":")
    key = _key(name.strip())
    if key not in BUILDERS:
        raise UnknownOptionError(f"unknown student builder {name!r}; valid builders (case and '_' ignored, e.g. "
                                 f"mobilenet_v2): {', '.join(sorted(BUILDERS.values()))}")
    builder = getattr(keras.applications, BUILDERS[key])
    options = dict(_option(pair, spec) for pair in rest.split(",") if pair.strip())
    valid = set(inspect.signature(builder).parameters) - {"weights", "input_tensor", "input_shape", "classes"}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise UnknownOptionError(f"{BUILDERS[key]} has no option(s) {', '.join(unknown)}; "
                                 f"valid: {', '.join(sorted(valid))}")
    return builder, options


def _option(pair: str, spec: str):
    if "=" not in pair:
        raise UnknownOptionError(f"bad builder option {pair!r} in {spec!r}: write name=value")
    name, value = (part.strip() for part in pair.split("=", 1))
    for cast in (int, float):
        try:
            return name, cast(value)
        except ValueError:
            pass
    return name, {"true": True, "false": False, "none": None}.get(value.lower(), value)


def build_student(spec: str, input_shape, classes: int, softmax: bool = True) -> keras.Model:
    """A fresh ``keras.applications`` model for ``spec`` taking ``input_shape`` and giving ``classes`` outputs."""
    builder, options = parse_spec(spec)
    parameters = inspect.signature(builder).parameters
    options.setdefault("classifier_activation", "softmax" if softmax else None)
    if "include_preprocessing" in parameters:
        options.setdefault("include_preprocessing", False)  # edgesmith data is already normalized
    height, width, channels = input_shape
    padded = (max(height, MIN_SIZE), max(width, MIN_SIZE), channels)
    body = builder(weights=None, input_shape=padded, classes=classes, **options)
    if padded == tuple(input_shape):
        return body
    inputs = keras.Input(input_shape)
    pad_h, pad_w = padded[0] - height, padded[1] - width
    x = keras.layers.ZeroPadding2D(((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)))(inputs)
    return keras.Model(inputs, body(x), name=f"{body.name}_padded")


def load_student(student, reference) -> keras.Model:
    """``student`` as a Keras model: a model, a ``.keras``/``.h5`` file, or a builder spec shaped like ``reference``."""
    from .graph import ends_in_softmax
    from .load import load_model

    if isinstance(student, keras.Model) or str(student).endswith((".keras", ".h5")):
        return load_model(student)
    return build_student(student, tuple(reference.inputs[0].shape[1:]), int(reference.outputs[0].shape[-1]),
                         softmax=ends_in_softmax(reference))
