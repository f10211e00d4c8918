"""Low-rank factorization: a Dense or 1 x 1 Conv2D becomes two thinner layers by truncated SVD.

A kernel ``W`` (C_in x C_out) is replaced by ``U_r sqrt(S_r)`` then ``sqrt(S_r) V_r^T``:
``r * (C_in + C_out)`` weights instead of ``C_in * C_out``. The rank keeps a
fraction ``energy`` of the squared singular values, or is ``rank_ratio`` of the
full rank. With ``spatial=True`` a k x k Conv2D also becomes a k x 1 then a
1 x k convolution (the SVD of the kernel reshaped to ``(k*C_in) x (k*C_out)``).
Layers are only replaced when that makes them smaller.

>>> from edgesmith.converters import record_of
>>> small = lowrank(model, data, energy=0.9)
>>> fc1 = record_of(small).details["layers"]["fc1"]   # a 1024 x 32 kernel
>>> fc1["rank"] < 32, fc1["macs_after"] < fc1["macs_before"]
(True, True)
"""

from __future__ import annotations

import keras
import numpy as np

from .checks import checked
from .distill import remember_teacher
from .errors import ConversionError
from .graph import iter_calls, replace_with_chains
from .kernels import is_skipped
from .macs import replaced_costs
from .stage import recorded


def _check_options(energy, rank_ratio):
    for name, value in (("energy", energy), ("rank_ratio", rank_ratio)):
        if value is not None and not 0.0 < float(value) <= 1.0:
            raise ConversionError(f"{name} must be in (0, 1], got {value}")


@checked(options=_check_options)
def lowrank(model, data=None, *, energy: float = 0.9, rank_ratio: float | None = None, min_params: int = 0,
            skip=(), spatial: bool = False, progress=None):
    """Factorize Dense and 1 x 1 Conv2D layers (and, with ``spatial``, k x k Conv2D) by truncated SVD.

    Args:
        model: a Functional or Sequential Keras model.
        data: unused (the factorization is data-free); a later ``distill`` pass recovers accuracy.
        energy: kept fraction of the squared singular values, in (0, 1] (ignored if ``rank_ratio`` is set).
        rank_ratio: rank as a fraction of the full rank, in (0, 1].
        min_params: only layers with at least this many kernel weights are factorized.
        skip: layer names (or paths inside nested models), regular expressions or class names to keep.
        spatial: also split k x k convolutions into k x 1 then 1 x k.
        progress: optional ``progress(stage, done, total)`` callback.
    """
    _check_options(energy, rank_ratio)
    candidates = _candidates(model, min_params, tuple(skip), spatial)
    chains, infos = {}, {}
    for done, layer in enumerate(candidates, 1):
        factored = _factor(layer, energy, rank_ratio)
        if factored is not None:
            chains[id(layer)], infos[layer.name] = factored
        if progress:
            progress("lowrank", done, len(candidates))
    new = replace_with_chains(model, chains, "lowrank")
    details = {"layers": replaced_costs(model, new, infos, ("_u", "_v")), "energy": energy,
               "rank_ratio": rank_ratio}
    return recorded("lowrank", remember_teacher(new, model), details)


def _candidates(model, min_params, skip, spatial) -> list:
    calls, _, _ = iter_calls(model, "lowrank")
    chosen = {id(call.layer): call.layer for call in calls  # a shared layer once
              if not is_skipped(call.layer, skip, call.path) and _factorable(call.layer, spatial)
              and int(np.prod(call.layer.kernel.shape)) >= min_params}
    return list(chosen.values())


def _factorable(layer, spatial) -> bool:
    if type(layer) is keras.layers.Dense:
        return len(layer.kernel.shape) == 2
    if type(layer) is keras.layers.Conv2D and layer.groups == 1 and layer.data_format == "channels_last":
        return tuple(layer.kernel_size) == (1, 1) or spatial
    return False


def rank_for(singular_values: np.ndarray, energy: float, rank_ratio: float | None) -> int:
    """The rank keeping ``energy`` of ``sum(s**2)``, or ``rank_ratio`` of the full rank (at least 1)."""
    if rank_ratio is not None:
        return max(1, int(round(rank_ratio * len(singular_values))))
    kept = np.cumsum(singular_values ** 2) / max(np.sum(singular_values ** 2), 1e-30)
    return int(min(len(kept), np.searchsorted(kept, energy - 1e-9) + 1))


def split_matrix(matrix: np.ndarray, energy: float, rank_ratio: float | None):
    """``(first (m, r), second (r, n), relative error)`` with ``first @ second ~ matrix``."""
    u, s, vt = np.linalg.svd(matrix.astype(np.float64), full_matrices=False)
    rank = rank_for(s, energy, rank_ratio)
    root = np.sqrt(s[:rank])
    error = float(np.sqrt(np.sum(s[rank:] ** 2) / max(np.sum(s ** 2), 1e-30)))
    return u[:, :rank] * root, root[:, None] * vt[:rank], error


def _factor(layer, energy, rank_ratio):
    """``(chain, info)``: ``layer`` as two thinner layers, or None when those would not be smaller."""
    kernel, *bias = layer.get_weights()
    dense = isinstance(layer, keras.layers.Dense)
    spatial = not dense and tuple(layer.kernel_size) != (1, 1)
    kh, kw, c_in, c_out = kernel.shape if spatial else (1, 1, *kernel.shape[-2:])
    # rows (i, c) x columns (j, f): a k x 1 kernel (i, c -> r) then a 1 x k one (j, r -> f); a Dense or 1 x 1
    # kernel is the case k = 1, its matrix itself
    matrix = kernel.reshape(kh, kw, c_in, c_out).transpose(0, 2, 1, 3).reshape(kh * c_in, kw * c_out)
    first, second, error = split_matrix(matrix, energy, rank_ratio)
    rank = first.shape[1]
    if rank * sum(matrix.shape) >= matrix.size:
        return None  # not smaller
    first = first.reshape((() if dense else (kh, 1)) + (c_in, rank))
    second = second.reshape(rank, kw, c_out).transpose(1, 0, 2).reshape((() if dense else (1, kw)) + (rank, c_out))
    u, v = (_spatial_pair if spatial else _pointwise_pair)(layer, rank)
    chain = [(u, [first.astype(kernel.dtype)]), (v, [second.astype(kernel.dtype)] + bias)]
    return chain, {"rank": rank, "error": round(error, 4), **({"spatial": True} if spatial else {})}


def _pointwise_pair(layer, rank) -> tuple:
    """A Dense or 1 x 1 Conv2D as two: ``rank`` outputs, then the layer's own."""
    if isinstance(layer, keras.layers.Dense):
        return (keras.layers.Dense(rank, use_bias=False, name=f"{layer.name}_u"),
                keras.layers.Dense(layer.units, activation=layer.activation, use_bias=layer.use_bias,
                                   name=f"{layer.name}_v"))
    return (keras.layers.Conv2D(rank, 1, strides=layer.strides, use_bias=False, name=f"{layer.name}_u"),
            keras.layers.Conv2D(layer.filters, 1, activation=layer.activation, use_bias=layer.use_bias,
                                name=f"{layer.name}_v"))


def _spatial_pair(conv, rank) -> tuple:
    """A k x k Conv2D as a k x 1 one with ``rank`` outputs, then a 1 x k one with the layer's own."""
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.strides, conv.dilation_rate
    return (keras.layers.Conv2D(rank, (kh, 1), strides=(sh, 1), padding=conv.padding, dilation_rate=(dh, 1),
                                use_bias=False, name=f"{conv.name}_u"),
            keras.layers.Conv2D(conv.filters, (1, kw), strides=(1, sw), padding=conv.padding, dilation_rate=(1, dw),
                                activation=conv.activation, use_bias=conv.use_bias, name=f"{conv.name}_v"))
