"""The private Keras attributes edgesmith reads (converters/keras_internals.py) are still where Keras 3.15 kept them:
each function on a Sequential, a Functional and a nested model. A Keras upgrade that moves one fails here, naming it."""

import keras
import pytest

from edgesmith.converters.keras_internals import (
    inbound_node, keeps_graph, keras_history, nodes_in_order, producer, sequential_graph)


def _sequential():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="s_hidden"), keras.layers.Dense(2, name="s_out")])


def _functional():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="f_hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="f_out")(hidden), name="functional")


def _nested():
    inputs = keras.Input((4,))
    inner = _functional()
    return keras.Model(inputs, keras.layers.Dense(1, name="n_out")(inner(inputs)), name="nested")


def _graph(model):
    return sequential_graph(model) if isinstance(model, keras.Sequential) else model


MODELS = {"sequential": (_sequential, ["s_hidden", "s_out"]), "functional": (_functional, ["f_hidden", "f_out"]),
          "nested": (_nested, ["functional", "n_out"])}


@pytest.mark.parametrize("kind", MODELS)
def test_the_graph_keras_keeps_is_read(kind):
    build, layers = MODELS[kind]
    model = build()
    graph = _graph(model)
    assert graph is not None, "Sequential._functional no longer holds the built Sequential's Functional model"
    assert keeps_graph(graph), f"{type(graph).__name__}._nodes_by_depth is gone: keeps_graph says it has no graph"
    ops = [node.operation.name for node in nodes_in_order(graph) if not node.is_input]
    assert ops == layers, f"_nodes_by_depth no longer gives the running order: {ops}"
    output = graph.outputs[0]
    assert producer(output).name == layers[-1], "KerasTensor._keras_history no longer names the layer that made it"
    operation, node_index, tensor_index = keras_history(output)
    node = inbound_node(operation, node_index)
    assert node.operation is operation and node.outputs[tensor_index] is output, \
        f"{type(operation).__name__}._inbound_nodes no longer holds the call that made the output"


def test_a_subclassed_model_keeps_no_graph_and_an_unbuilt_sequential_none():
    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert not keeps_graph(Subclassed())
    assert sequential_graph(keras.Sequential([keras.layers.Dense(2)])) is None


def test_a_moved_attribute_is_named():
    class Moved:
        pass

    for read, name in ((keras_history, "_keras_history"), (lambda o: inbound_node(o, 0), "_inbound_nodes"),
                       (sequential_graph, "_functional"), (nodes_in_order, "_nodes_by_depth")):
        with pytest.raises(AttributeError, match=rf"Moved\.{name} is missing in Keras .*checked on Keras 3\.15"):
            read(Moved())
