"""Remove whole blocks of layers: fewer ops, not only fewer MACs, which is what makes a small model faster.

>>> from edgesmith.converters.depth_prune import depth_prune, residual_blocks
>>> import keras
>>> inputs = keras.Input((8, 8, 4))
>>> x = inputs
>>> for _ in range(3):
...     x = keras.layers.Add()([x, keras.layers.Conv2D(4, 3, padding="same")(x)])
>>> toy = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
>>> len(residual_blocks(toy))
3
>>> shallow = depth_prune(toy, None, blocks=2)
>>> len(residual_blocks(shallow)), len(shallow.layers) < len(toy.layers)
(1, True)

A block is a residual block, an ``Add`` of a tensor and a branch computed from it alone, of the same shape
(MobileNetV2's inverted residuals, ResNet's identity blocks, EfficientNet's MBConv with a skip): removing it
makes the ``Add`` pass its skip input on, and the branch's layers leave the graph. Or it is a chain that gives
back its input's shape (a stride-1 depthwise or pointwise convolution with its BatchNorm and activation, as in
MobileNet), each of whose tensors feeds only the next layer: its consumers then read its input. Or it is a dense
unit, a ``Concatenate`` of a tensor and channels computed from it alone (DenseNet's conv blocks): removing it
makes the ``Concatenate`` pass the tensor on, and every layer that read the unit's channels downstream (the
next units, the transition, the classifier) keeps its weights for the others, sliced as channel pruning does.
Blocks are removed least damaging first: each is removed alone and the model's top-1 agreement with itself
measured on training samples. With ``latency_reduction`` the number removed is the fewest whose int8 .tflite
runs that many times faster than the model's own, measured on this machine (:mod:`.latency`); with ``blocks``,
that many.

Fewer MACs is not less time where fixed per-op costs dominate. At 32 x 32 pixels (int8, 1 thread, x86), removing
every residual block made MobileNetV2 (alpha 0.35) 1.48x faster and MobileNetV3Small 1.74x, where channel
pruning to 2x fewer MACs gave 1.04x and 0.74x. A model without such blocks is returned unchanged, and the
record says so.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import partial

import numpy as np

from .checks import checked
from .errors import ConversionError
from .graph import ChannelGraph, iter_calls, require_graph, rewrite, sliced_layer
from .keras_internals import producer
from .layers import int8_handler
from .latency import speedup
from .stage import recorded
from .train import RECOVERY_SCHEDULE, as_dataset, check_recovery_time, recover, training_sample
from .verify import agreement, predicted_classes


SCORING_SAMPLES = 256  # training samples each block's removal is scored on
WEIGHTED = ("Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense")  # a chain starts at one of these
SHAPE_KEEPING = ("BatchNormalization", "ReLU", "Activation", "Dropout")  # what a chain takes along after it
MAX_CHAIN = 6  # layers a chain may span before it gives its input's shape back


def _check_options(latency_reduction=None, blocks=None, recovery_time=None):
    check_recovery_time(recovery_time)
    if latency_reduction is not None and latency_reduction <= 1.0:
        raise ValueError("latency_reduction is a speed-up, above 1.0")
    if blocks is not None and int(blocks) < 0:
        raise ValueError("blocks is a count, at least 0")
    if (latency_reduction is None) == (blocks is None):
        raise ValueError("give one of latency_reduction and blocks")


@checked(options=_check_options, model=partial(require_graph, pass_name="depth_prune"))
def depth_prune(model, data=None, *, latency_reduction: float | None = None, blocks: int | None = None,
                epochs: int = 0, learning_rate: float = 1e-3, progress=None, distill: bool = True,
                recovery_time: float | None = None):
    """Remove residual blocks, least damaging first, then fine-tune by distillation from ``model``.

    Args:
        model: a Functional or Sequential Keras model (left unchanged).
        data: training data (scoring the blocks, measuring latency, fine-tuning); None: blocks in graph order.
        latency_reduction: remove the fewest blocks whose int8 .tflite is this many times faster than
            ``model``'s (measured); all removable blocks when even that is not enough (the record says so).
        blocks: instead, remove this many blocks.
        epochs: at most this many epochs of fine-tuning after the removal (0: none); see
            :func:`~edgesmith.converters.train.recover` (best epoch on held-out training rows, early stopping).
        learning_rate: Adam's peak learning rate (warm-up, then cosine decay).
        progress: optional ``progress(stage, done, total)`` callback.
        distill: recover by distillation from ``model`` (its soft labels, plus the labels); False: labels only.
        recovery_time: seconds the fine-tuning may take at most (None: ``epochs`` alone).
    """
    _check_options(latency_reduction, blocks)
    data = as_dataset(data)
    candidates = residual_blocks(model)
    if not candidates:
        return recorded("depth_prune", model, {"removed": [], "blocks": 0,
                                               "note": "no removable blocks: the model is unchanged"})
    order = _least_damaging_first(model, candidates, data, progress)
    count, measured = (min(int(blocks), len(order)), None) if blocks is not None else _fewest_for(
        model, order, data, latency_reduction)
    pruned = without_blocks(model, order[:count])
    recovery = {}
    if epochs and data is not None:
        recovery = recover(pruned, data, epochs=epochs, teacher=model if distill else None,
                           learning_rate=learning_rate, schedule=RECOVERY_SCHEDULE, progress=progress,
                           stage="depth_prune:fine_tune", time_limit=recovery_time).as_dict()
    details = {"removed": [block.name for block in order[:count]], "blocks": len(candidates),
               "order": [block.name for block in order], **(measured or {}),
               **({"recovery": recovery} if recovery else {})}
    return recorded("depth_prune", pruned, details)


@dataclass(frozen=True)
class Block:
    """A removable block: an ``Add`` of a tensor and its branch (``skip``: which input is the tensor), a chain
    of layers from ``first`` to ``name`` whose output has its input's shape, or (``narrows``) a ``Concatenate``
    of a tensor and the channels a dense unit computed from it."""

    name: str
    skip: int | None = None
    first: str | None = None
    narrows: bool = False


def residual_blocks(model) -> list:
    """The :class:`Block` s of ``model``: the Adds of a tensor and a branch computed from it alone, then the chains
    (a convolution, its BatchNorm and activation, ...) that give back their input's shape, each of whose
    tensors feeds only the next layer (MobileNet's stride-1 depthwise and pointwise units)."""
    calls, _, outputs = iter_calls(model, "depth_prune")
    made_by = {key: call for call in calls for key in call.outputs}
    units = [call for call in calls if _dense_unit(call) and _only_from(call.inputs[1], call.inputs[0], made_by)]
    blocks = _dense_units(model, units)
    for call in calls:
        if type(call.layer).__name__ != "Add" or len(call.inputs) != 2 or len(set(call.in_shapes)) != 1:
            continue
        for skip in (0, 1):
            if _only_from(call.inputs[1 - skip], call.inputs[skip], made_by):
                blocks.append(Block(call.layer.name, skip=skip))
                break
    return blocks + _chains(calls, set(outputs))


def _dense_units(model, concatenations: list) -> list:
    """The :class:`Block` s of the ``concatenations`` whose new channels can go: none of them reaches an output
    (whose shape would change) or a layer the channel graph cannot slice."""
    if not concatenations:
        return []
    graph = ChannelGraph(model, pass_name="depth_prune")
    return [Block(call.layer.name, skip=0, narrows=True) for call in concatenations
            if not graph.closure(graph.layouts[call.inputs[1]].tolist()) & graph.pinned]


def _dense_unit(call) -> bool:
    """A ``Concatenate`` of two tensors along their channels (the last axis)."""
    if type(call.layer).__name__ != "Concatenate" or len(call.inputs) != 2:
        return False
    return call.layer.axis in (-1, len(call.out_shapes[0]) - 1)


def _chains(calls, model_outputs: set) -> list:
    consumers, uses = defaultdict(list), Counter(id(call.layer) for call in calls)
    for call in calls:
        for key in call.inputs:
            consumers[key].append(call)

    def next_of(call):
        """The one layer the call's one output feeds, when it takes that alone and is called once."""
        following = consumers[call.outputs[0]] if call.outputs[0] not in model_outputs else []
        single = len(following) == 1 and len(following[0].inputs) == 1 and len(following[0].outputs) == 1
        return following[0] if single and uses[id(following[0].layer)] == 1 else None

    chains = []
    for call in calls:
        if type(call.layer).__name__ not in WEIGHTED or len(call.inputs) != 1 or uses[id(call.layer)] != 1:
            continue
        chain = [call]
        while chain[-1].out_shapes[0] != call.in_shapes[0] and len(chain) < MAX_CHAIN and next_of(chain[-1]):
            chain.append(next_of(chain[-1]))
        feeds = consumers[chain[-1].outputs[0]]
        if chain[-1].out_shapes[0] != call.in_shapes[0] or not feeds or any(len(c.inputs) != 1 for c in feeds):
            continue  # a chain ending in a merge is a residual branch: its Add is the block
        while next_of(chain[-1]) is not None and type(next_of(chain[-1]).layer).__name__ in SHAPE_KEEPING:
            chain.append(next_of(chain[-1]))  # the unit's BatchNorm and activation go with it
        chains.append(Block(chain[-1].layer.name, first=call.layer.name))
    return chains


def _only_from(key, source, made_by) -> bool:
    """Whether the tensor ``key`` is computed from ``source`` and nothing else but constants (walking back)."""
    seen, frontier = set(), [key]
    while frontier:
        current = frontier.pop()
        if current == source or current in seen:
            continue
        seen.add(current)
        call = made_by.get(current)
        if call is None:  # a model input other than the skip
            return False
        frontier.extend(call.inputs)
    return key != source


def without_blocks(model, blocks: list):
    """``model`` rebuilt without ``blocks``: an Add passes its skip input on, a chain's consumers read its input.

    A ReLU that then follows the same ReLU (the block's output activation, now on the skip, which already went
    through one) is dropped too: it changes nothing, and TFLite would keep it as an op of its own, which XNNPACK
    does not take in int8, splitting the graph (measured: the demo's CNN 4x slower with them).
    """
    units = [block for block in blocks if block.narrows]
    if units:
        return _without_units(without_blocks(model, [block for block in blocks if not block.narrows]), units)
    skips = {block.name: block.skip for block in blocks if block.first is None}
    chain_of = {block.name: block.first for block in blocks if block.first is not None}
    starts, entered = set(chain_of.values()), {}

    def replace(layer, *args, **kwargs):
        if layer.name in starts:
            entered[layer.name] = args[0]
        if layer.name in skips:
            return args[0][skips[layer.name]]
        if layer.name in chain_of:
            return entered[chain_of[layer.name]]
        if _repeats_its_input_activation(layer, args[0]):
            return args[0]
        return None

    return rewrite(model, replace, "depth_prune")


def _without_units(model, units: list):
    """``model`` without the channels the dense ``units`` add: each ``Concatenate`` passes its first input on,
    and every layer after it keeps the weights of the channels that remain (the unit's own layers, read by
    nothing now, leave the graph)."""
    graph = ChannelGraph(model, pass_name="depth_prune")
    calls, names = {call.layer.name: call for call in graph.calls}, {unit.name for unit in units}
    removed = graph.closure([int(atom) for name in names for atom in graph.layouts[calls[name].inputs[1]]])
    positions, made = graph.kept_positions(removed), {}

    def replace(layer, *args, **kwargs):
        if layer.name in names:
            return args[0][0]
        if id(layer) not in positions:
            return None
        keep_in, keep_out = positions[id(layer)]
        if not len(keep_out):  # the unit's last layer: what it makes is read no more
            return args[0]
        return sliced_layer(layer, keep_in, keep_out, made)(*args, **kwargs)

    return rewrite(model, replace, "depth_prune")


def _repeats_its_input_activation(layer, tensor) -> bool:
    """``layer`` is a ReLU (or ReLU6) applied to the output of the same activation: the identity. Each layer's
    activation is read from its exact class's handler (a subclass may compute something else)."""
    kind = int8_handler(layer).pure_activation(layer)
    if kind not in ("relu", "relu6") or not hasattr(tensor, "shape"):
        return False
    made_by = producer(tensor)
    return int8_handler(made_by).pure_activation(made_by) == kind


def _least_damaging_first(model, candidates: list, data, progress) -> list:
    """``candidates`` ordered by the top-1 agreement with ``model`` left when each is removed alone (highest
    first); in graph order without data."""
    if data is None:
        return list(candidates)
    _, samples = training_sample(data, SCORING_SAMPLES)
    reference = predicted_classes(model, samples)
    scored = []
    for done, block in enumerate(candidates, start=1):
        scored.append((agreement(predicted_classes(without_blocks(model, [block]), samples), reference), block))
        if progress:
            progress("depth_prune:scoring", done, len(candidates))
    return [block for _, block in sorted(scored, key=lambda item: -item[0])]


def _fewest_for(model, order: list, data, target: float) -> tuple:
    """``(count, details)``: the fewest blocks of ``order`` whose removal makes the int8 graph ``target`` times
    faster (bisection on measured speed-ups), or all of them when none does."""
    if data is None:
        raise ConversionError("depth_prune with latency_reduction needs data: the int8 graphs it times are "
                              "calibrated on it")
    samples = data.calibration(16) if hasattr(data, "calibration") else np.asarray(data.x_train[:16])
    low, high, speedups = 0, len(order), {}
    speedups[high] = round(speedup(model, without_blocks(model, order), samples)[0], 3)
    if speedups[high] < target:
        return high, {"speedup": speedups[high], "target_reached": False}
    while high - low > 1:
        middle = (low + high) // 2
        speedups[middle] = round(speedup(model, without_blocks(model, order[:middle]), samples)[0], 3)
        low, high = (low, middle) if speedups[middle] >= target else (middle, high)
    return high, {"speedup": speedups[high], "target_reached": True, "measured": speedups}
