"""Every read of a private Keras attribute, in one place: the graph Keras keeps of a model but does not publish.

Checked on Keras 3.15. When an upgrade moves one of these attributes, the function reading it raises an
AttributeError naming it, and tests/converters/test_keras_internals.py fails the same way.

>>> import keras
>>> inputs = keras.Input((4,))
>>> hidden = keras.layers.Dense(3, name="hidden")(inputs)
>>> model = keras.Model(inputs, keras.layers.Dense(2, name="fc")(hidden))
>>> producer(model.outputs[0]).name, keras_history(hidden)[1:]
('fc', (0, 0))
>>> [node.operation.name for node in nodes_in_order(model)][1:]
['hidden', 'fc']
"""

from __future__ import annotations

import keras

CHECKED_ON = "3.15"


def _private(owner, name: str):
    """``owner.name``, or an AttributeError saying that Keras moved it."""
    try:
        return getattr(owner, name)
    except AttributeError:
        raise AttributeError(
            f"{type(owner).__name__}.{name} is missing in Keras {keras.version()}: "
            f"edgesmith.converters.keras_internals was checked on Keras {CHECKED_ON}; update it") from None


def keras_history(keras_tensor) -> tuple:
    """``(operation, node_index, tensor_index)``: the call that made a symbolic tensor (``_keras_history``)."""
    history = _private(keras_tensor, "_keras_history")
    return history.operation, history.node_index, history.tensor_index


def producer(keras_tensor):
    """The layer (or operation) whose output a symbolic tensor is."""
    return keras_history(keras_tensor)[0]


def inbound_node(operation, node_index: int):
    """The graph node of ``operation``'s call number ``node_index`` (``_inbound_nodes``)."""
    return _private(operation, "_inbound_nodes")[node_index]


def keeps_graph(model) -> bool:
    """Whether a model keeps a graph of its layers (``_nodes_by_depth``): Functional ones do, subclassed ones not."""
    return getattr(model, "_nodes_by_depth", None) is not None


def sequential_graph(sequential):
    """The Functional model a built Sequential runs (``_functional``); None before it is built."""
    return _private(sequential, "_functional")


def nodes_in_order(graph) -> list:
    """The nodes of a Functional model in the order it runs them, inputs first (``_nodes_by_depth``): Keras keeps
    no public topological order."""
    by_depth = _private(graph, "_nodes_by_depth")
    return [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]]
