"""MobileNet-style replacement: each full k x k Conv2D becomes a depthwise conv and a 1 x 1 conv.

``Conv2D(F, k)`` on C channels becomes ``DepthwiseConv2D(k, depth_multiplier=r)``
then ``Conv2D(F, 1)``: ``k*k*C*F`` MACs per pixel become ``C*r*(k*k + F)``. The
new kernels come from the old one with no data: for every input channel c, the
``k*k x F`` slice ``W[:, :, c, :]`` is replaced by its best rank-r approximation
(truncated SVD), split between the depthwise kernel (left singular vectors) and
the pointwise one (right singular vectors). With ``r = min(k*k, F)`` the model is
unchanged; a small r trades accuracy for MACs, which distillation from the
original then recovers.

>>> from edgesmith.converters import record_of
>>> small = mobilenetize(model, data, rank=1, min_macs=10_000, distill_epochs=3)
>>> sorted(record_of(small).details["layers"])      # conv1 (4,608 MACs) is under min_macs
['conv2']
>>> record_of(small).details["layers"]["conv2"]
{'rank': 1, 'error': ..., 'macs_before': 73728, 'macs_after': 12800, 'params_before': 1168, 'params_after': 216}
"""

from __future__ import annotations

import keras
import numpy as np

from .checks import checked
from .distill import distill, remember_teacher
from .errors import ConversionError
from .graph import iter_calls, replace_with_chains
from .kernels import is_skipped
from .macs import layer_costs, replaced_costs
from .stage import recorded


def _check_options(rank):
    if int(rank) < 1:
        raise ConversionError(f"rank must be at least 1, got {rank}")


@checked(options=_check_options)
def mobilenetize(model, data=None, *, rank: int = 1, min_macs: int = 0, skip=(), distill_epochs: int = 0,
                 temperature: float = 4.0, progress=None):
    """Replace every selected Conv2D by a depthwise + pointwise pair initialized by per-channel SVD.

    Args:
        model: a Functional or Sequential Keras model.
        data: training data, used only to distill from ``model`` when ``distill_epochs > 0``.
        rank: depth multiplier r of the depthwise conv (kept singular values per input channel).
        min_macs: only convolutions with at least this many MACs are replaced.
        skip: layer names (or paths inside nested models), regular expressions or class names to keep.
        distill_epochs: epochs of distillation from ``model`` after the replacement (0: none; a later
            ``distill`` pass also uses ``model`` as its teacher).
        progress: optional ``progress(stage, done, total)`` callback.
    """
    _check_options(rank)
    selected = _selected(model, min_macs, tuple(skip))
    chains, infos = {}, {}
    for done, layer in enumerate(selected, 1):
        chains[id(layer)], infos[layer.name] = _separable_pair(layer, rank)
        if progress:
            progress("mobilenetize", done, len(selected))
    new = replace_with_chains(model, chains, "mobilenetize")
    details = {"layers": replaced_costs(model, new, infos, ("_dw", "_pw")), "skipped": sorted(set(skip))}
    remember_teacher(new, model)
    if distill_epochs and data is not None:
        new = distill(new, data, teacher=model, epochs=distill_epochs, temperature=temperature)
        remember_teacher(new, model)
    return recorded("mobilenetize", new, details)


def _selected(model, min_macs, skip) -> list:
    macs = {cost["name"]: cost["macs"] for cost in layer_costs(model)}
    calls, _, _ = iter_calls(model, "mobilenetize")
    chosen = {id(call.layer): call.layer for call in calls  # a shared layer once
              if type(call.layer) is keras.layers.Conv2D and call.layer.groups == 1 and max(call.layer.kernel_size) > 1
              and call.layer.data_format == "channels_last" and macs[call.path] >= min_macs
              and not is_skipped(call.layer, skip, call.path)}
    return list(chosen.values())


def separable_kernels(kernel: np.ndarray, rank: int):
    """``(depthwise (kh, kw, C, r), pointwise (1, 1, C*r, F), relative error)`` approximating ``kernel``.

    Per input channel c, ``W[:, :, c, :]`` (as a ``kh*kw x F`` matrix) ``~ U_r S_r V_r^T``; the depthwise
    kernel takes ``U_r sqrt(S_r)`` and the pointwise one ``sqrt(S_r) V_r^T``.
    """
    kh, kw, channels, filters = kernel.shape
    rank = min(rank, kh * kw, filters)
    matrices = np.transpose(kernel, (2, 0, 1, 3)).reshape(channels, kh * kw, filters)
    u, s, vt = np.linalg.svd(matrices.astype(np.float64), full_matrices=False)
    root = np.sqrt(s[:, :rank])
    depthwise = (u[:, :, :rank] * root[:, None, :]).reshape(channels, kh, kw, rank).transpose(1, 2, 0, 3)
    pointwise = (root[:, :, None] * vt[:, :rank, :]).reshape(1, 1, channels * rank, filters)
    error = np.sqrt(np.sum(s[:, rank:] ** 2) / max(np.sum(s ** 2), 1e-30))
    return depthwise.astype(kernel.dtype), pointwise.astype(kernel.dtype), float(error)


def _separable_pair(conv, rank):
    kernel, *bias = conv.get_weights()
    depthwise_kernel, pointwise_kernel, error = separable_kernels(kernel, rank)
    depthwise = keras.layers.DepthwiseConv2D(
        conv.kernel_size, strides=conv.strides, padding=conv.padding, dilation_rate=conv.dilation_rate,
        depth_multiplier=depthwise_kernel.shape[-1], use_bias=False, name=f"{conv.name}_dw",
    )
    pointwise = keras.layers.Conv2D(conv.filters, 1, activation=conv.activation, use_bias=conv.use_bias,
                                    name=f"{conv.name}_pw")
    info = {"rank": int(depthwise_kernel.shape[-1]), "error": round(error, 4)}
    return [(depthwise, [depthwise_kernel]), (pointwise, [pointwise_kernel] + bias)], info

