"""Pass name -> pass function: the one table recipes and the pipeline look passes up in.

Every pass has the same shape, ``model = pass_(model, data, **options)``, and
attaches a :class:`~edgesmith.converters.record.StageRecord` to what it
returns. Adding a pass is one line in :data:`PASSES` (``"name":
"module:function"``); modules are imported only when a pass is used.

>>> from edgesmith.converters.registry import get_pass, pass_options
>>> prune = get_pass("prune")
>>> "sparsity" in pass_options("prune")
True
"""

from __future__ import annotations

import importlib
import inspect

from .checks import run_check
from .errors import UnknownOptionError

PASSES = {
    "prune": "edgesmith.converters.prune:prune",
    "strip": "edgesmith.converters.prune:strip",
    "cluster": "edgesmith.converters.cluster:cluster",
    "qat": "edgesmith.converters.qat:qat",
    "ptq": "edgesmith.converters.ptq:ptq",
    "mixed_precision": "edgesmith.converters.mixed_precision:mixed_precision",
    "channel_prune": "edgesmith.converters.channel_prune:channel_prune",
    "depth_prune": "edgesmith.converters.depth_prune:depth_prune",
    "mobilenetize": "edgesmith.converters.mobilenetize:mobilenetize",
    "lowrank": "edgesmith.converters.lowrank:lowrank",
    "distill": "edgesmith.converters.distill:distill",
}

# Passes that turn the Keras model into a .tflite (a recipe ends with exactly one).
TFLITE_PASSES = frozenset({"ptq", "mixed_precision"})
# Keywords the pipeline gives a pass, not recipe options: a progress callback, and what the pass's model check
# returned (qat: the graph it built and converted, see check_model).
RUN_ARGUMENTS = ("progress", "prepared")


def get_pass(name: str):
    """The function registered as pass ``name``; unknown names list the valid ones."""
    if name not in PASSES:
        raise UnknownOptionError(f"unknown pass {name!r}; valid passes: {', '.join(sorted(PASSES))}")
    module_name, function_name = PASSES[name].split(":")
    return getattr(importlib.import_module(module_name), function_name)


def pass_options(name: str) -> dict:
    """The options pass ``name`` takes (keyword -> default), from its signature (not its :data:`RUN_ARGUMENTS`)."""
    parameters = list(inspect.signature(get_pass(name)).parameters.values())[2:]  # after (model, data)
    return {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in parameters
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in RUN_ARGUMENTS
    }


def check_options(name: str, options: dict) -> None:
    """Raise :class:`UnknownOptionError` naming the valid options if ``options`` has others, and the
    pass's own error for an out-of-range value (see :mod:`edgesmith.converters.checks`)."""
    valid = pass_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise UnknownOptionError(
            f"pass {name!r} has no option(s) {', '.join(unknown)}; valid options: {', '.join(sorted(valid))}"
        )
    run_check(getattr(get_pass(name), "check_options", None), {**valid, **options})


def check_model(name: str, model, options: dict):
    """Raise the pass's one-line error if it cannot take ``model`` with ``options`` (before any work); else return
    what its model check returns, for the pass's ``prepared`` keyword (None for most passes; qat: the
    :class:`~edgesmith.converters.qat.PreparedQat` it built, which the pass reuses for this very model)."""
    return run_check(getattr(get_pass(name), "check_model", None), {**pass_options(name), **options}, model)
