"""Multiply-accumulates and parameters, per layer and in total.

One inference of batch 1. Conv1D/2D/3D and Dense count ``outputs x kernel
fan-in``; DepthwiseConv ``outputs x window``; SeparableConv its depthwise and
pointwise parts; pooling one operation per window element of each output;
global pooling one per input element; BatchNormalization one per element
(TFLite folds it into the convolution before it, so a .tflite runs fewer).
Element-wise merges and activations count 0. Layers of nested models are
listed as ``outer/inner``. A layer shared by several calls counts every call.

>>> import keras
>>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, padding="same")])
>>> count_macs(model)  # 8 * 8 * 4 outputs, each 3 * 3 * 3 multiply-accumulates
6912
"""

from __future__ import annotations

from .graph import iter_calls
from .layers import handler_for


def layer_costs(model) -> list:
    """One dict per layer, in execution order: ``name``, ``type``, ``params``, ``macs``."""
    costs = {}
    calls, _, _ = iter_calls(model, "count_macs")
    for call in calls:
        layer = call.layer
        if call.path not in costs:
            built = getattr(layer, "built", False)  # a keras.ops operation in the graph (x + 3) has no weights
            costs[call.path] = {"name": call.path, "type": type(layer).__name__,
                                "params": layer.count_params() if built else 0, "macs": 0}
        costs[call.path]["macs"] += int(handler_for(layer).macs(layer, call.in_shapes, call.out_shapes))
    return list(costs.values())


def count_macs(model) -> int:
    """Total multiply-accumulates of one inference of ``model`` (batch 1)."""
    return sum(cost["macs"] for cost in layer_costs(model))


def replaced_costs(before, after, infos: dict, suffixes) -> dict:
    """``infos`` (per replaced layer name) plus the layer's MACs and params before, and after as the sum
    of the layers named ``name + suffix`` that replaced it."""
    old = {c["name"].split("/")[-1]: c for c in layer_costs(before)}
    new = {c["name"].split("/")[-1]: c for c in layer_costs(after)}

    def total(name, key):
        return sum(new[name + suffix][key] for suffix in suffixes if name + suffix in new)

    return {
        name: dict(info, macs_before=old[name]["macs"], macs_after=total(name, "macs"),
                   params_before=old[name]["params"], params_after=total(name, "params"))
        for name, info in infos.items()
    }

