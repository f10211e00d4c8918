"""Search the compression recipe instead of hand-tuning it: sensitivity, mixed precision, Optuna search.

>>> from edgesmith.optimize import optimize, sensitivity, choose_precisions
>>> optimize.__module__      # imported on first use (it imports Optuna); its module docstring shows a search
'edgesmith.optimize.search'

See docs/optimize.md.
"""

from edgesmith.converters.mixed_precision import (
    PRECISIONS,
    layer_precisions,
    mixed_precision,
    weighted_layers,
)

from .precisions import choose_precisions
from .sensitivity import format_sensitivity, plot_sensitivity, sensitivity

__all__ = [
    "PRECISIONS",
    "choose_precisions",
    "format_sensitivity",
    "layer_precisions",
    "mixed_precision",
    "optimize",
    "plot_sensitivity",
    "sensitivity",
    "weighted_layers",
]


def __getattr__(name):  # the search imports Optuna: only when it is used
    if name == "optimize":
        from .search import optimize

        return optimize
    raise AttributeError(name)
