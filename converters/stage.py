"""The record of a model as it is now: what every stage of a pipeline reports (params, nonzeros, clusters, MACs).

>>> import keras
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
>>> stage_record("source", model).params
15
"""

from __future__ import annotations

import numpy as np

from .kernels import kernels
from .macs import count_macs
from .record import StageRecord, remember


def stage_record(name: str, model, **fields):
    """A :class:`StageRecord` of ``model`` as it is now: params, nonzeros, clusters, MACs."""
    values = [np.asarray(w) for w in model.weights]
    return StageRecord(name=name, params=int(sum(v.size for v in values)),
                       nonzero_params=int(sum(np.count_nonzero(v) for v in values)), macs=_macs_or_none(model),
                       unique_weights=_largest_cluster_count(model), **fields)


def _largest_cluster_count(model) -> int | None:
    """The most distinct values in any one kernel (None for a model without kernels)."""
    return max((np.unique(np.asarray(k.variable)).size for k in kernels(model)), default=None)


def _macs_or_none(model) -> int | None:
    try:
        return int(count_macs(model))
    except Exception:  # a layer or model the counter does not know: report unknown, not a crash
        return None


def recorded(name: str, model, details: dict, accuracy: float | None = None):
    """``model`` with its :class:`StageRecord` (params, nonzeros, MACs, ``details``) attached."""
    return remember(model, stage_record(name, model, accuracy=accuracy, details=details))
