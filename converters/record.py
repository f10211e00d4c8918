"""What a pass did: the record every pass returns alongside its model.

A pass has one shape: ``model = pass_(model, data, **options)``. The record of
what it did (params, nonzeros, MACs, metrics) is attached to the model it
returns and read back with :func:`record_of`; the pipeline runner collects
these into the per-stage table without knowing anything about the pass.
"""

from __future__ import annotations

import weakref
from dataclasses import asdict, dataclass, field

_RECORDS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


@dataclass
class StageRecord:
    """One stage of a pipeline, as reports show it."""

    name: str
    params: int
    nonzero_params: int
    macs: int | None = None
    accuracy: float | None = None
    unique_weights: int | None = None  # largest count of distinct values in a layer (clusters)
    details: dict = field(default_factory=dict)  # pass-specific: per-layer errors, skipped layers...

    def as_dict(self) -> dict:
        return asdict(self)


def remember(model, record: StageRecord):
    """Attach ``record`` to ``model`` and return the model (for ``return remember(...)``)."""
    _RECORDS[model] = record
    return model


def record_of(model) -> StageRecord | None:
    """The record of the pass that produced ``model``, if any."""
    return _RECORDS.get(model)
