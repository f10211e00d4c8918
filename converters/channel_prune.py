"""Structured channel pruning: remove whole channels and rebuild a genuinely smaller model.

Channels that must go together (a residual stream, a conv and its BatchNorm and
depthwise conv, the slices of a Concatenate, the inputs of a Dense after
Flatten) are found by :class:`~edgesmith.converters.graph.ChannelGraph`; the
least important ones are removed and the kept weights copied into a model
built with fewer filters/units.

>>> from edgesmith.converters import record_of
>>> small = channel_prune(model, data, ratio=0.3, round_to=8, steps=2, epochs=1)
>>> record_of(small).macs < count_macs(model)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from .checks import check_choice, checked
from .distill import remember_teacher
from .errors import ConversionError
from .graph import ChannelGraph, require_graph, rewrite, sliced_layer
from .inputs import call_model
from .layers import handler_for
from .macs import count_macs
from .stage import recorded
from .train import RECOVERY_SCHEDULE, as_dataset, check_recovery_time, check_schedule, loss_for, micro_batches, recover

IMPORTANCES = ("l1", "l2", "bn", "taylor")
MAX_RATIO = 0.99  # the most a MAC target may remove from any group


@dataclass
class PrunePlan:
    """Which channels go: the dependency graph, the removed atoms and what each group keeps."""

    graph: ChannelGraph
    removed: set
    kept: dict  # group name -> (kept, of)
    ratio: float = 0.0  # the channel ratio the plan was made for

    def positions(self) -> dict:
        """``{id(layer): (keep_in, keep_out)}`` for every weighted layer."""
        return self.graph.kept_positions(self.removed)

    def macs(self) -> int:
        """MACs of the model this plan builds (counted on the graph, without building it)."""
        return self.graph.macs(self.removed)


def _check_options(ratio, macs_reduction, ratios, importance, scope, round_to, steps, schedule, recovery_time=None):
    for name, value in [("ratio", ratio)] + [(f"ratios[{k!r}]", v) for k, v in (ratios or {}).items()]:
        if not 0.0 <= float(value) < 1.0:
            raise ConversionError(f"{name} must be in [0, 1) (the fraction of channels removed), got {value}")
    if macs_reduction is not None and not float(macs_reduction) > 1.0:
        raise ConversionError(f"macs_reduction must be above 1 (2.0: half the MACs), got {macs_reduction}")
    check_choice("importance", importance, IMPORTANCES)
    if scope not in ("global", "layer"):
        raise ConversionError(f"scope must be 'global' or 'layer', got {scope!r}")
    if int(round_to) < 1 or int(steps) < 1:
        raise ConversionError(f"round_to and steps must be at least 1, got {round_to} and {steps}")
    check_schedule(schedule)
    check_recovery_time(recovery_time)


@checked(options=_check_options, model=partial(require_graph, pass_name="channel_prune"))
def channel_prune(model, data=None, *, ratio: float = 0.3, macs_reduction: float | None = None,
                  ratios: dict | None = None, importance: str = "l1", scope: str = "global", round_to: int = 1,
                  protect=(), steps: int = 1, epochs: int = 0, learning_rate: float = 1e-3,
                  schedule: str = RECOVERY_SCHEDULE, progress=None, distill: bool = True,
                  recovery_time: float | None = None):
    """Remove a fraction of the channels of every prunable group, optionally in steps with fine-tuning.

    >>> half = channel_prune(model, macs_reduction=2.0, round_to=8)   # about 2x fewer MACs

    Args:
        model: a Functional or Sequential Keras model (residuals, concats, depthwise and nested models allowed).
        data: training data (``edgesmith.data`` Dataset, ``(x, y)`` arrays or an array of inputs);
            needed for ``importance="taylor"`` and for fine-tuning (``epochs > 0``; labels or, without
            them, the unpruned model's soft labels).
        ratio: fraction of channels to remove, in [0, 1).
        macs_reduction: instead of ``ratio``, remove channels until the model has ``macs_reduction`` times
            fewer MACs (the ratio is found by bisection on the dependency graph; with ``steps`` each step
            takes an equal geometric share).
        ratios: ``{layer name: ratio}`` overriding ``ratio`` for the groups holding those layers.
        importance: ``"l1"`` or ``"l2"`` (kernel norms), ``"bn"`` (|BatchNorm gamma|) or ``"taylor"``
            (gradient x weight on ``data``).
        scope: ``"global"`` (one threshold on importance normalized per group) or ``"layer"`` (each
            group loses ``ratio`` of its channels).
        round_to: kept channels per group are rounded to a multiple of this (8 suits SIMD kernels).
        protect: layer names whose output channels are kept (inputs and outputs always are).
        steps: prune in this many steps, each removing an equal share, fine-tuning ``epochs`` after each.
        epochs: fine-tuning epochs per step (0: none).
        learning_rate, schedule: Adam's (peak) learning rate and its schedule over each step's fine-tuning:
            ``"constant"`` (what recovered the most, see :func:`~edgesmith.converters.train.learning_rate_schedule`),
            ``"cosine"`` (decay to 0) or ``"warmup_cosine"`` (a linear rise first).
        progress: optional ``progress(stage, done, total)`` callback.
        distill: recover by distillation from ``model`` (its soft labels, plus the labels); False: on the
            labels alone (unlabeled data is always distilled).
        recovery_time: seconds all steps' fine-tuning may take at most, shared equally (None: ``epochs``
            alone); see :func:`~edgesmith.converters.train.recover`, which keeps each step's best epoch.
    """
    _check_options(ratio, macs_reduction, ratios, importance, scope, round_to, steps, schedule,
                   recovery_time)  # before any work
    if importance == "taylor" and data is None:
        raise ConversionError("importance='taylor' needs data (gradients are taken on it)")
    original, macs_before, data = model, count_macs(model), as_dataset(data)
    step_ratio = 1.0 - (1.0 - ratio) ** (1.0 / steps)
    step_ratios = {name: 1.0 - (1.0 - r) ** (1.0 / steps) for name, r in (ratios or {}).items()}
    kept_total, untouched, ratios_used, recoveries = {}, [], [], []
    for step in range(steps):
        plan = plan_pruning(model, data, ratio=step_ratio, ratios=step_ratios,
                            macs_reduction=_step_reduction(model, macs_before, macs_reduction, step, steps),
                            importance=importance, scope=scope, round_to=round_to, protect=protect)
        model = apply_plan(model, plan)
        kept_total.update({name: (keep, kept_total.get(name, (keep, of))[1]) for name, (keep, of) in plan.kept.items()})
        untouched, ratios_used = plan.graph.untouched, ratios_used + [round(plan.ratio, 4)]
        if epochs and data is not None:
            teacher = original if distill or not data.labeled else None
            recoveries.append(recover(model, data, epochs=epochs, teacher=teacher, learning_rate=learning_rate,
                                      schedule=schedule, progress=progress, stage="channel_prune:fine_tune",
                                      time_limit=recovery_time and recovery_time / steps).as_dict())
        if progress:
            progress("channel_prune", step + 1, steps)
    details = {"macs_before": macs_before, "groups": {k: list(v) for k, v in kept_total.items()},
               "untouched": untouched, "importance": importance, "ratio": ratio, "steps": steps,
               "macs_reduction": macs_reduction, "step_ratios": ratios_used, "recovery": recoveries}
    return recorded("channel_prune", remember_teacher(model, original), details)  # a later distill's teacher


def _step_reduction(model, macs_before, macs_reduction, step, steps):
    """Each step aims at its geometric share of the whole reduction, from wherever the model is now."""
    if macs_reduction is None:
        return None
    return count_macs(model) / (macs_before / macs_reduction ** ((step + 1) / steps))


# -- choosing channels -------------------------------------------------------------------


def plan_pruning(model, data=None, *, ratio=0.3, macs_reduction=None, ratios=None, importance="l1",
                 scope="global", round_to=1, protect=()) -> PrunePlan:
    """Decide which channels to remove (see :func:`channel_prune` for the options), without removing them.

    With ``macs_reduction``, ``ratio`` is ignored and found by bisection: the smallest ratio whose plan
    has at most ``1 / macs_reduction`` of the model's MACs (each candidate is counted on the graph).
    """
    graph = ChannelGraph(model, protect=protect)
    scores = _component_scores(graph, _atom_scores(graph, importance, model, data))

    def plan_for(candidate):
        return _plan(graph, scores, candidate, ratios or {}, scope, round_to)

    if macs_reduction is None:
        return plan_for(ratio)
    if scope == "global":
        return _cheapest_tiles_for_macs(graph, scores, macs_reduction, ratios or {}, round_to)
    return _bisect_for_macs(plan_for, graph.macs(), macs_reduction)


def _cheapest_tiles_for_macs(graph, scores, reduction: float, ratios: dict, round_to: int) -> PrunePlan:
    """Remove tiles of ``round_to`` channels, least (normalized) importance lost per MAC saved first, until
    the model has ``reduction`` times fewer MACs; the tile that crosses the target is the least important
    next tile of any group that reaches it, so a MAC-heavy tile does not overshoot far past the target."""
    fixed = _plan(graph, scores, 0.0, ratios, "layer", round_to)  # explicit per-layer ratios only
    total = graph.macs()
    tiles = sorted(
        (tile for group in graph.groups if _explicit_ratio(group, ratios) is None
         for tile in _tiles(graph, group, scores[group.name], total, round_to)),
        key=lambda tile: tile.cost_per_mac,
    )

    def removed_by(chosen):
        return set(fixed.removed).union(*(tile.atoms for tile in chosen))

    def meets(chosen):
        return graph.macs(removed_by(chosen)) * reduction <= total

    if not meets(tiles):
        raise _unreachable(reduction, total / graph.macs(removed_by(tiles)))
    low, high = 0, len(tiles)  # the fewest tiles, in order, whose removal meets the target
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if meets(tiles[:middle]) else (middle + 1, high)
    chosen = tiles[:low]
    if low:
        before = tiles[:low - 1]
        next_of_each_group = {}
        for tile in tiles[low - 1:]:
            next_of_each_group.setdefault(tile.group, tile)
        reaching = [tile for tile in next_of_each_group.values() if meets(before + [tile])]
        chosen = before + [min(reaching, key=lambda tile: tile.importance)]
    kept = dict(fixed.kept)
    for tile in chosen:
        keep, size = kept[tile.group]
        kept[tile.group] = (keep - tile.channels, size)
    channels = sum(size for _, size in kept.values())
    return PrunePlan(graph, removed_by(chosen), kept, 1.0 - sum(keep for keep, _ in kept.values()) / max(channels, 1))


@dataclass
class _Tile:
    cost_per_mac: float  # importance lost per MAC saved: the order tiles go in
    importance: float  # normalized importance of its channels
    group: str
    channels: int
    atoms: list


def _tiles(graph, group, scores, total_macs: int, round_to: int) -> list:
    """The removable tiles of ``group``, least important first: each takes the kept count down to the next
    multiple of ``round_to`` (a group of one tile or less stays whole; every group keeps a channel)."""
    if group.size <= round_to:
        return []
    order = np.argsort(scores, kind="stable")
    normalized = scores / (scores.mean() + 1e-12)
    macs_per_channel = total_macs - graph.macs(set(group.components[order[0]].tolist()))
    if macs_per_channel <= 0:
        return []
    keeps = [group.size] + list(range((group.size - 1) // round_to * round_to, 0, -round_to))
    tiles = []
    for before, after in zip(keeps, keeps[1:]):
        removed = order[group.size - before: group.size - after]
        atoms = [atom for index in removed for atom in group.components[index].tolist()]
        importance = float(normalized[removed].sum())
        tiles.append(_Tile(importance / (len(removed) * macs_per_channel), importance, group.name, len(removed), atoms))
    return tiles


def _bisect_for_macs(plan_for, macs: int, reduction: float, iterations: int = 16) -> PrunePlan:
    best = plan_for(MAX_RATIO)
    if best.macs() * reduction > macs:
        raise _unreachable(reduction, macs / best.macs())
    low, high = 0.0, MAX_RATIO
    for _ in range(iterations):
        middle = (low + high) / 2
        plan = plan_for(middle)
        if plan.macs() * reduction <= macs:
            high, best = middle, plan
        else:
            low = middle
    return best


def _unreachable(reduction: float, at_most: float) -> ConversionError:
    return ConversionError(f"removing channels cannot reach {reduction:g}x fewer MACs (at most {at_most:.2f}x: inputs, "
                           "outputs, protected and unknown layers keep the rest)")


def _plan(graph, scores, ratio, ratios, scope, round_to) -> PrunePlan:
    pooled = [g for g in graph.groups if _explicit_ratio(g, ratios) is None]
    counts = {g.name: round(_explicit_ratio(g, ratios) * g.size) for g in graph.groups if g not in pooled}
    if scope == "global" and pooled:
        counts.update(_global_counts(pooled, scores, ratio))
    else:
        counts.update({g.name: round(ratio * g.size) for g in pooled})
    removed, kept = set(), {}
    for group in graph.groups:
        keep = _rounded_keep(group.size, group.size - counts[group.name], round_to)
        for index in np.argsort(scores[group.name], kind="stable")[: group.size - keep]:
            removed.update(group.components[index].tolist())
        kept[group.name] = (keep, group.size)
    return PrunePlan(graph, removed, kept, ratio)


def _explicit_ratio(group, ratios: dict):
    found = [r for name, r in ratios.items() if any(name in (path, path.split("/")[-1]) for path in group.layers)]
    return max(found) if found else None


def _rounded_keep(size: int, keep: int, multiple: int) -> int:
    if size <= multiple:
        return size
    rounded = int(round(keep / multiple)) * multiple
    return int(min(size, max(multiple, rounded, 1)))


def _global_counts(groups, scores, ratio) -> dict:
    normalized = {g.name: scores[g.name] / (scores[g.name].mean() + 1e-12) for g in groups}
    pooled = np.concatenate(list(normalized.values()))
    count = int(round(ratio * pooled.size))
    if count == 0:
        return {g.name: 0 for g in groups}
    threshold = np.sort(pooled)[count - 1]
    # never empty a group: keep at least one channel of each
    return {g.name: min(int(np.sum(normalized[g.name] <= threshold)), g.size - 1) for g in groups}


def _component_scores(graph, atom_scores: dict) -> dict:
    return {
        g.name: np.array([sum(atom_scores.get(a, 0.0) for a in component.tolist()) for component in g.components])
        for g in graph.groups
    }


def _atom_scores(graph, importance, model, data) -> dict:
    if importance == "taylor":
        per_layer = _taylor(graph, model, data)
    else:
        per_layer = {}
        for info in graph.layers.values():
            variable = _out_variable(info.layer)
            if variable is not None:
                flat = np.abs(variable.numpy().reshape(-1, variable.shape[-1]))
                per_layer[id(info.layer)] = flat.sum(0) if importance == "l1" else np.sqrt((flat ** 2).sum(0))
    scores = {}
    for info in graph.layers.values():
        values = per_layer.get(id(info.layer))
        if values is not None and handler_for(info.layer).kind == "source":
            _accumulate(scores, info.outputs, values)
    if importance == "bn":
        gammas = {}
        for info in graph.layers.values():
            if handler_for(info.layer).folds_into_kernel and info.layer.scale:
                _accumulate(gammas, info.outputs, np.abs(info.layer.get_weights()[0]))
        # groups without BatchNorm fall back to the kernels' L2 norm (scaled far below any gamma)
        scores = {a: gammas.get(a, 0.0) + 1e-6 * v for a, v in scores.items()}
        scores.update({a: v for a, v in gammas.items() if a not in scores})
    return scores


def _accumulate(scores, atoms, values):
    for atom, value in zip(atoms.tolist(), np.asarray(values, dtype=np.float64).tolist()):
        scores[atom] = scores.get(atom, 0.0) + value


def _out_variable(layer):
    """The kernel whose last axis is the layer's output channels (pointwise for separable convs)."""
    if getattr(layer, "pointwise_kernel", None) is not None:
        return layer.pointwise_kernel
    return getattr(layer, "kernel", None) if handler_for(layer).kind == "source" else None


def _taylor(graph, model, data, batches: int = 4) -> dict:
    """Per source layer and output channel: (sum of gradient x weight)^2, summed over a few batches."""
    import tensorflow as tf

    loss_fn = loss_for(model)
    kernels = [info.layer for info in graph.layers.values() if _out_variable(info.layer) is not None]
    variables = [_out_variable(l) for l in kernels]
    totals = {id(l): 0.0 for l in kernels}
    data = as_dataset(data)
    size = micro_batches(data.x_train.shape[1:], 32)[0]  # a gradient tape keeps every activation of its batch
    for start in range(0, min(len(data.x_train), 32 * batches), size):
        x = data.x_train[start:start + size]
        y = None if data.y_train is None else data.y_train[start:start + size]
        with tf.GradientTape() as tape:
            outputs = call_model(model, x)
            loss = loss_fn(np.argmax(outputs, -1) if y is None else y, outputs)
        for layer, variable, grad in zip(kernels, variables, tape.gradient(loss, variables)):
            if grad is not None:
                product = (np.asarray(grad) * variable.numpy()).reshape(-1, variable.shape[-1])
                totals[id(layer)] = totals[id(layer)] + product.sum(0) ** 2
    return {key: value for key, value in totals.items() if np.ndim(value)}


# -- removing them -----------------------------------------------------------------------


def apply_plan(model, plan: PrunePlan):
    """A new, smaller model without the channels ``plan`` removes, holding the kept weights."""
    positions, made = plan.positions(), {}

    def replace(layer, *args, **kwargs):
        if id(layer) not in positions:
            return None
        return sliced_layer(layer, *positions[id(layer)], made)(*args, **kwargs)

    return rewrite(model, replace, "channel_prune")


def zero_plan(model, plan: PrunePlan) -> None:
    """Set to 0, in ``model`` itself, every weight of the channels ``plan`` removes (in and out).

    The zeroed model computes exactly what the pruned one does: the correctness check of pruning.
    """
    for key, (keep_in, keep_out) in plan.positions().items():
        layer = plan.graph.layers[key].layer
        layer.set_weights(handler_for(layer).zeroed(layer, keep_in, keep_out))
