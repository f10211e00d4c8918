"""The kernels of a model (the weights prune, cluster and qat work on; which ones: :data:`.layers.HANDLERS`) and
what those passes need around them: walking a model's layers, copying it with its constraints, storing masks.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import keras
import numpy as np

from .layers import handler_for


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
            if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))]


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
            cloned.set_constraint(copied_constraint(original.constraint))
    return copy


def copied_constraint(constraint):
    """An independent copy of a kernel constraint (a pruning mask, cluster assignments), from its config."""
    return type(constraint).from_config(constraint.get_config())


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
