"""Which weights of each Keras layer type are kernels (the ones passes prune, cluster and quantize).

One table, keyed by layer class name, shared by prune, cluster and qat:
supporting a new layer type means adding one row.
"""

from __future__ import annotations

from dataclasses import dataclass

# layer class -> ((weight attribute, constructor argument holding its constraint), ...)
KERNELS = {
    "Conv1D": (("kernel", "kernel_constraint"),),
    "Conv2D": (("kernel", "kernel_constraint"),),
    "Conv3D": (("kernel", "kernel_constraint"),),
    "Conv2DTranspose": (("kernel", "kernel_constraint"),),
    "Dense": (("kernel", "kernel_constraint"),),
    "DepthwiseConv2D": (("kernel", "depthwise_constraint"),),
    "DepthwiseConv1D": (("kernel", "depthwise_constraint"),),
    "SeparableConv2D": (("depthwise_kernel", "depthwise_constraint"), ("pointwise_kernel", "pointwise_constraint")),
    "SeparableConv1D": (("depthwise_kernel", "depthwise_constraint"), ("pointwise_kernel", "pointwise_constraint")),
    # the fake-quantized twins made by qat
    "QuantConv": (("kernel", "kernel_constraint"),),
    "QuantConv1D": (("kernel", "kernel_constraint"),),
    "QuantDepthwiseConv": (("kernel", "depthwise_constraint"),),
    "QuantDense": (("kernel", "kernel_constraint"),),
}


@dataclass(frozen=True)
class Kernel:
    """One kernel variable of one layer, and where its constraint is kept."""

    layer: object
    attribute: str
    constraint_argument: str

    @property
    def name(self) -> str:
        return self.layer.name if self.attribute in ("kernel",) else f"{self.layer.name}/{self.attribute}"

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


def all_layers(model) -> list:
    """Every layer of ``model``, nested sub-models included, each once."""
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)]


def kernels(model) -> list:
    """The :class:`Kernel` of every built layer whose type is in :data:`KERNELS`."""
    return [kernel for layer in all_layers(model) for kernel in layer_kernels(layer)]


def layer_kernels(layer) -> list:
    """The kernels of one layer (none if it is not built or its type has none)."""
    rows = KERNELS.get(type(layer).__name__, ()) if layer.built else ()
    return [Kernel(layer, attribute, argument) for attribute, argument in rows]


def count_params(model) -> tuple:
    """``(parameters, nonzero parameters)`` over all weights of ``model``."""
    import numpy as np

    values = [np.asarray(w) for w in model.weights]
    return int(sum(v.size for v in values)), int(sum(np.count_nonzero(v) for v in values))


def largest_cluster_count(model) -> int | None:
    """The most distinct values in any one kernel (None for a model without kernels)."""
    import numpy as np

    counts = [np.unique(np.asarray(k.variable)).size for k in kernels(model)]
    return max(counts) if counts else None


def stage_record(name: str, model, **fields):
    """A :class:`StageRecord` of ``model`` as it is now: params, nonzeros, clusters, MACs."""
    from .record import StageRecord

    params, nonzero = count_params(model)
    return StageRecord(
        name=name,
        params=params,
        nonzero_params=nonzero,
        macs=macs_of(model),
        unique_weights=largest_cluster_count(model),
        **fields,
    )


def macs_of(model) -> int | None:
    """Multiply-accumulates per inference, from the architecture team's counter when present."""
    try:
        from .macs import count_macs
    except ImportError:  # converters/macs.py is written by the architecture issue
        return None
    try:
        return int(count_macs(model))
    except Exception:  # a layer the counter does not know: report unknown, not a crash
        return None


def copy_model(model):
    """An independent copy of a Sequential/Functional model, weights and constraints included."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for original, cloned in zip(kernels(model), kernels(copy)):
        if original.constraint is not None:
            cloned.set_constraint(type(original.constraint).from_config(original.constraint.get_config()))
    return copy


def encode_array(array) -> dict:
    """A small JSON-safe form of a bool or integer array (stored in constraint configs)."""
    import base64

    import numpy as np

    array = np.asarray(array)
    if array.dtype == bool:
        payload, kind = np.packbits(array.ravel()).tobytes(), "bits"
    else:
        payload, kind = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"))).tobytes(), array.dtype.str
    return {"shape": list(array.shape), "dtype": kind, "data": base64.b64encode(payload).decode("ascii")}


def decode_array(encoded: dict):
    """Inverse of :func:`encode_array`."""
    import base64

    import numpy as np

    raw = base64.b64decode(encoded["data"])
    shape = tuple(encoded["shape"])
    if encoded["dtype"] == "bits":
        return np.unpackbits(np.frombuffer(raw, np.uint8), count=int(np.prod(shape))).astype(bool).reshape(shape)
    return np.frombuffer(raw, np.dtype(encoded["dtype"])).reshape(shape).copy()
