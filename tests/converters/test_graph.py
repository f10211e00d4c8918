"""The channel dependency graph: which channels must shrink together."""

import keras
import numpy as np

from edgesmith.converters.graph import ChannelGraph, iter_calls
from edgesmith.converters.macs import count_macs

L = keras.layers


def _groups(model, **options):
    return {tuple(g.layers): g.size for g in ChannelGraph(model, **options).groups}


def test_residual_add_ties_both_branches_and_batchnorm_passes_through():
    inputs = keras.Input((8, 8, 3))
    a = L.BatchNormalization()(L.Conv2D(8, 3, padding="same", name="a")(inputs))
    b = L.Conv2D(8, 3, padding="same", name="b")(L.ReLU()(a))
    x = L.Add()([a, b])
    x = L.DepthwiseConv2D(3, padding="same")(x)  # multiplier 1: the same channels
    model = keras.Model(inputs, L.Conv2D(4, 1, name="out")(x))
    assert _groups(model) == {("a", "b"): 8}


def test_concatenate_keeps_offsets_and_flatten_dense_sees_every_position():
    inputs = keras.Input((4, 4, 3))
    a, b = L.Conv2D(5, 1, name="a")(inputs), L.Conv2D(7, 1, name="b")(inputs)
    x = L.Flatten()(L.Concatenate()([a, b]))
    model = keras.Model(inputs, L.Dense(2, name="head")(L.Dense(6, name="fc")(x)))
    graph = ChannelGraph(model)
    assert {tuple(g.layers): g.size for g in graph.groups} == {("a",): 5, ("b",): 7, ("fc",): 6}
    b_group = next(g for g in graph.groups if g.layers == ["b"])
    fc = next(info for info in graph.layers.values() if info.path == "fc")
    # MACs without b's channel 0: b makes one channel fewer (3 MACs each of 16 positions), fc reads 16 fewer inputs
    assert graph.macs() == count_macs(model)
    assert graph.macs(set(b_group.components[0].tolist())) == count_macs(model) - 16 * 3 - 16 * 6
    # removing b's channel 0 removes the Flatten positions p * 12 + 5 for all 16 positions p
    removed = set(b_group.components[0].tolist())
    positions = np.flatnonzero(np.isin(fc.inputs, list(removed)))
    np.testing.assert_array_equal(positions, np.arange(16) * 12 + 5)


def test_depth_multiplier_removes_all_derived_channels_and_nested_models_are_inlined():
    inner = keras.Sequential([keras.Input((6, 6, 4)), L.DepthwiseConv2D(3, depth_multiplier=3, name="dw"),
                              L.Conv2D(5, 1, name="inner_pw")], name="inner")
    inputs = keras.Input((6, 6, 2))
    model = keras.Model(inputs, L.Dense(2)(L.GlobalAveragePooling2D()(inner(L.Conv2D(4, 1, name="stem")(inputs)))))
    calls, _, _ = iter_calls(model)
    assert [c.path for c in calls][:3] == ["stem", "inner/dw", "inner/inner_pw"]
    graph = ChannelGraph(model)
    stem = next(g for g in graph.groups if g.layers == ["stem"])
    assert stem.size == 4 and all(len(component) == 1 + 3 for component in stem.components)


def test_inputs_outputs_protected_layers_and_unknown_layers_are_not_pruned():
    inputs = keras.Input((8, 8, 3))
    a = L.Conv2D(8, 3, name="a")(inputs)
    b = L.Conv2D(8, 3, name="b")(L.LayerNormalization(name="ln")(a))  # mixes channels: unknown here
    c = L.Conv2D(8, 3, name="c")(b)
    model = keras.Model(inputs, L.Conv2D(3, 1, name="out")(c))
    graph = ChannelGraph(model, protect=("c",))
    assert {tuple(g.layers) for g in graph.groups} == {("b",)}
    assert graph.untouched == ["ln (LayerNormalization)"]
