"""When a recipe's .tflite misses its accuracy budget: weaker variants of the recipe, the most compressed first,
each run and verified as a .tflite, down to the int8 floor; the first that holds is the answer.

>>> from edgesmith.recipes import load_recipe
>>> from edgesmith.walk_back import relaxations
>>> for rung in relaxations(load_recipe("raw-size-int4")):
...     print(rung.recipe.name, "|", rung.change)
raw-size-int4~1 | channel_prune: ratio 0.25 -> 0.125
raw-size-int4~2 | 8-bit kernels on the most sensitive half of the 4-bit layers
raw-size-int4~3 | qat: all kernels 8-bit
raw-size-int4~4 | without channel_prune
raw-size-int4~5 | the int8 floor: int8 post-training quantization of the source

The ladder, each rung keeping what the one before relaxed (so it is ordered from most to least compressed):

0. with several structural passes, the last one removed: the stages before it are reused as trained, so this rung
   costs only the passes after it, and the compression the earlier passes bought stays (``fast-int8``'s depth
   pruning keeps its measured speed-up when channel pruning is what cost the accuracy);
1. structure halved: pruning sparsity, channels removed (or the MAC reduction, as a square root), residual blocks
   removed (or the speed-up they aim at, as a square root) and clusters (four times as many);
2. 4-bit kernels raised to 8 bits, the most sensitive half first (ranked by ``edgesmith debug``'s impact on the
   model output, :func:`edgesmith.converters.debug.debug_quantization`), then all of them;
3. the structural passes removed (QAT alone remains);
4. the floor: int8 post-training quantization of the source model, with the recipe's input/output types.

A rung that would repeat the recipe or the rung before is skipped. Every rung is a full run of a recipe
(:func:`edgesmith.pipeline.run_recipe`), so each step of the walk is measured on the actual .tflite; rungs that
share their first passes reuse the stages already trained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from edgesmith.recipes import Recipe, Step

STRUCTURAL_PASSES = ("prune", "channel_prune", "depth_prune", "cluster", "lowrank", "mobilenetize", "distill")
SENSITIVE_HALF = "8-bit kernels on the most sensitive half of the 4-bit layers"
FOUR_BIT_LAYER_TYPES = ("Conv1D", "Conv2D", "Dense", "SeparableConv2D")
MAX_CLUSTERS = 256  # clusters past which weight sharing saves nothing over int8: the pass is dropped instead
# passes that can aim at a reduction factor: the option that names it, and what it reduces (halved as a square root)
REDUCTION_TARGETS = {"depth_prune": ("latency_reduction", "speed-up"),
                     "channel_prune": ("macs_reduction", "MACs reduction")}


@dataclass(frozen=True)
class Rung:
    """A weaker variant of a recipe: ``change`` says in words what it relaxes; ``ranked``: its QAT keeps the most
    sensitive half of the 4-bit layers at 8 bits, which the walk fills in from the model that missed."""

    change: str
    recipe: Recipe
    ranked: bool = False


def relaxations(recipe: Recipe) -> list:
    """The rungs of the walk back from ``recipe``, most compressed first (see the module docstring)."""
    rungs, steps = [], list(recipe.passes)
    for change, relaxed in _ladder(steps):
        if relaxed != steps or change == SENSITIVE_HALF:  # that rung's layers are chosen during the walk
            rungs.append((change, relaxed))
            steps = relaxed
    floor = [_with(Step("ptq", {"mode": "int8"}), io=recipe.conversion.options.get("io"))]
    if floor != steps:
        rungs.append(("the int8 floor: int8 post-training quantization of the source", floor))
    return [Rung(change, _variant(recipe, steps, index), ranked=change == SENSITIVE_HALF)
            for index, (change, steps) in enumerate(rungs, start=1)]


def _ladder(steps: list):
    """``(change, steps)`` pairs, each relaxing ``steps`` as the one before left them."""
    structural = [index for index, step in enumerate(steps) if step.name in STRUCTURAL_PASSES]
    if len(structural) > 1:
        removed = steps[structural[-1]]
        steps = [step for step in steps if step is not removed]
        yield f"without {removed.name}", steps
    halved = [_halved(step) for step in steps]
    current = [step for _, step in halved if step is not None]
    yield "; ".join(change for change, _ in halved if change), current
    if any(_four_bit(step) for step in current):
        yield SENSITIVE_HALF, current
        current = [_with(step, weight_bits=8, eight_bit_layers=None) if _four_bit(step) else step
                   for step in current]
        yield "qat: all kernels 8-bit", current
    structural = [step.name for step in current if step.name in STRUCTURAL_PASSES]
    if structural:
        yield f"without {', '.join(dict.fromkeys(structural))}", [
            step for step in current if step.name not in STRUCTURAL_PASSES]


def _halved(step: Step) -> tuple:
    """``(what changed, the step with half the compression)``; ``(change, None)`` when halving leaves none."""
    options = step.options
    if step.name == "prune" and "n_m" not in options:
        sparsity = options.get("sparsity", 0.5)
        return f"prune: sparsity {sparsity:g} -> {sparsity / 2:g}", _with(step, sparsity=round(sparsity / 2, 4))
    option, label = REDUCTION_TARGETS.get(step.name, (None, None))
    if options.get(option):
        smaller = round(options[option] ** 0.5, 4)
        return f"{step.name}: {label} {options[option]:g}x -> {smaller:g}x", _with(step, **{option: smaller})
    if step.name == "depth_prune" and options.get("blocks"):
        return f"depth_prune: blocks {options['blocks']} -> {options['blocks'] // 2}", _with(
            step, blocks=options["blocks"] // 2)
    if step.name == "channel_prune" and "ratios" not in options:
        ratio = options.get("ratio", 0.3)
        return f"channel_prune: ratio {ratio:g} -> {ratio / 2:g}", _with(step, ratio=round(ratio / 2, 4))
    if step.name == "cluster":
        clusters = options.get("clusters", 16) * 4
        if clusters >= MAX_CLUSTERS:
            return "without cluster", None
        return f"cluster: {clusters // 4} -> {clusters} clusters", _with(step, clusters=clusters)
    return "", step


def _four_bit(step: Step) -> bool:
    return step.name == "qat" and step.options.get("weight_bits", 8) == 4


def _with(step: Step, **changes) -> Step:
    """``step`` with ``changes`` to its options (a None value removes the option)."""
    options = {**step.options, **changes}
    return Step(step.name, {key: value for key, value in options.items() if value is not None})


def _variant(recipe: Recipe, steps: list, index: int) -> Recipe:
    return dataclasses.replace(recipe, name=f"{recipe.name}~{index}", passes=tuple(steps), fallback=False)


def with_eight_bit_layers(rung: Rung, layers: list) -> Recipe:
    """``rung``'s recipe with its 4-bit QAT keeping ``layers`` (the most sensitive) at 8 bits."""
    steps = [_with(step, eight_bit_layers=sorted(layers)) if _four_bit(step) else step for step in rung.recipe.passes]
    return dataclasses.replace(rung.recipe, passes=tuple(steps))


def four_bit_candidates(model) -> list:
    """Names of ``model``'s layers whose kernels 4-bit QAT stores in 4 bits (depthwise kernels stay 8-bit)."""
    from edgesmith.converters.kernels import all_layers

    return [layer.name for layer in all_layers(model) if type(layer).__name__ in FOUR_BIT_LAYER_TYPES]


def in_order_of(ranked: list, names: list) -> list:
    """``names`` in the order of ``ranked`` (most sensitive first); names it does not rank last, in their order.

    >>> in_order_of(["fc", "conv2", "relu"], ["conv1", "conv2", "conv3", "fc"])
    ['fc', 'conv2', 'conv1', 'conv3']
    """
    order = [name for name in ranked if name in names]
    return order + [name for name in names if name not in order]
