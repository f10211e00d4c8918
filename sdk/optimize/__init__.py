"""Search the compression recipe instead of hand-tuning it: sensitivity, mixed precision, Optuna search.

>>> from edgesmith.optimize import optimize, sensitivity, choose_precisions
>>> optimize.__module__      # imported on first use (it imports Optuna); its module docstring shows a search
'edgesmith.optimize.search'

See docs/optimize.md.
"""

from edgesmith.converters.lazy import lazy_exports

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
# imported on first use: the search imports Optuna, the rest Keras and TensorFlow
lazy_exports(__name__, {
    **dict.fromkeys(("PRECISIONS", "layer_precisions", "mixed_precision", "weighted_layers"),
                    "edgesmith.converters.mixed_precision"),
    "choose_precisions": ".precisions",
    **dict.fromkeys(("format_sensitivity", "plot_sensitivity", "sensitivity"), ".sensitivity"),
    "optimize": ".search",
})
