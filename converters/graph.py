"""The channel dependency graph of a Keras functional model, and rebuilding a model layer by layer.

Every channel of every tensor is an *atom*. A Conv/Dense output creates new
atoms; BatchNorm, activations, pooling and depthwise convolutions pass their
input's atoms through; Add/Multiply tie the atoms of their inputs together
(residuals, squeeze-excite); Concatenate lines its inputs' atoms up one after
another (so offsets come for free); Flatten and depthwise-with-multiplier make
several *derived* atoms from each input atom. Atoms tied together form a
component: removing a channel means removing one component, plus everything
derived from it. Components touching a model input, a model output, a
protected layer or a layer edgesmith does not know (``untouched``) are never
removed. Nested models are walked through as if they were inlined.

>>> inputs = keras.Input((8, 8, 3))
>>> stem = keras.layers.Conv2D(16, 3, padding="same", name="stem")(inputs)
>>> branch = keras.layers.Conv2D(16, 3, padding="same", name="branch")(stem)
>>> wide = keras.layers.Conv2D(32, 1, name="wide")(keras.layers.Add()([stem, branch]))
>>> head = keras.layers.Dense(10, name="head")(keras.layers.GlobalAveragePooling2D()(wide))
>>> graph = ChannelGraph(keras.Model(inputs, head))
>>> [(g.name, g.size) for g in graph.groups]  # the Add ties stem and branch; head is an output
[('branch+stem', 16), ('wide', 32)]
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

import keras
import numpy as np
from keras import tree

from .errors import UnsupportedModelError
from .keras_internals import keeps_graph, nodes_in_order, sequential_graph
from .layers import activation_name, handler_for, kind_of, mixes_outputs
from .sources import SavedModelSource

GRAPH_PASSES = "count_macs, channel_prune, mobilenetize, lowrank"


def functional_view(model, pass_name: str = "this pass") -> keras.Model:
    """The functional graph of a Functional or built Sequential model; a clear error for anything else."""
    if isinstance(model, keras.Sequential):
        if not model.built or sequential_graph(model) is None:
            raise UnsupportedModelError(
                f"{pass_name} needs a built model: give the Sequential model an Input (or call it once) first")
        return sequential_graph(model)
    if not keeps_graph(model) or not hasattr(model, "inputs"):
        raise UnsupportedModelError(
            f"{pass_name} needs a functional graph, and {type(model).__name__} is a subclassed model; "
            f"passes that need one: {GRAPH_PASSES}. Rebuild it with keras.Model(inputs, outputs) or keras.Sequential")
    return model


def require_graph(model, pass_name: str) -> None:
    """Refuse models whose layer graph a pass cannot see (subclassed models, SavedModels)."""
    if isinstance(model, SavedModelSource):
        raise UnsupportedModelError(f"{pass_name} needs a Keras model; a SavedModel supports post-training passes "
                                    "(ptq) only")
    if not _is_graph(model):
        raise UnsupportedModelError(
            f"{pass_name} needs a Sequential or Functional model; {type(model).__name__} is subclassed "
            "(its layer graph is hidden in Python code). Post-training quantization (ptq) still works.")
    hidden = next((call.layer for call in iter_calls(model, pass_name)[0] if isinstance(call.layer, keras.Model)), None)
    if hidden is not None:  # nested graphs are inlined: a keras.Model left as a call is a subclassed one
        raise UnsupportedModelError(
            f"{pass_name} cannot see inside layer {hidden.name!r}: a subclassed {type(hidden).__name__} whose layers "
            "are hidden in Python code. Rebuild it with keras.Model(inputs, outputs), or use a post-training "
            "recipe (int8-ptq), which converts it as it runs")


def _is_graph(layer) -> bool:
    return isinstance(layer, keras.Model) and (isinstance(layer, keras.Sequential) or keeps_graph(layer))


@dataclass
class Call:
    """One call of a layer, with nested models inlined: tensor keys and shapes in and out."""

    layer: object
    path: str  # "outer_model_layer/inner_layer" for layers of nested models
    inputs: list
    outputs: list
    in_shapes: list
    out_shapes: list


def iter_calls(model, pass_name: str = "this pass"):
    """``(calls, input_keys, output_keys)`` of ``model`` in execution order, nested models inlined."""
    graph = functional_view(model, pass_name)
    alias, scopes = {}, itertools.count(1)

    def key(scope, tensor):
        """A tensor's key: a nested model's inputs and outputs stand for the outer tensors they are."""
        return alias.get((scope, id(tensor)), (scope, id(tensor)))

    def calls_of(graph, prefix, scope):
        for node in nodes_in_order(graph):
            if node.operation is None or node.is_input:
                continue
            layer = node.operation
            inputs = [key(scope, t) for t in node.input_tensors]
            outputs = [(scope, id(t)) for t in node.outputs]
            if not _is_graph(layer):
                yield Call(layer, prefix + layer.name, inputs, outputs,
                           [tuple(t.shape) for t in node.input_tensors], [tuple(t.shape) for t in node.outputs])
                continue
            inner, inner_scope = functional_view(layer, pass_name), next(scopes)
            alias.update({(inner_scope, id(tensor)): outer for tensor, outer in zip(inner.inputs, inputs)})
            yield from calls_of(inner, f"{prefix}{layer.name}/", inner_scope)
            alias.update({outer: key(inner_scope, tensor) for tensor, outer in zip(inner.outputs, outputs)})

    calls = list(calls_of(graph, "", 0))
    return calls, [(0, id(t)) for t in graph.inputs], [key(0, t) for t in graph.outputs]


def ends_in_softmax(model, output: int = 0) -> bool:
    """Whether ``model``'s output number ``output`` is a softmax, i.e. probabilities rather than logits.

    >>> ends_in_softmax(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")]))
    True
    """
    try:
        calls, _, outputs = iter_calls(model, "softmax detection")
        last = next(c.layer for c in reversed(calls) if outputs[output] in c.outputs)
    except UnsupportedModelError:  # a subclassed model: its last layer is the best guess
        last = model.layers[-1]
    return (handler_for(last).pure_activation(last) or activation_name(last)) == "softmax"


# -- rebuilding -----------------------------------------------------------------


def rewrite(model, replace, pass_name: str = "this pass") -> keras.Model:
    """A new functional model with every layer rebuilt by ``replace(layer, inputs)``.

    ``replace`` returns the output tensor(s) of whatever should stand for ``layer``
    (new layers called on ``inputs``), or None to copy the layer with its weights.
    Nested models are rebuilt as nested models, on their new input shapes.
    """
    graph = functional_view(model, pass_name)
    inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t.name) for t in graph.inputs]
    return _rewrite_on(graph, inputs, replace, {}, model.name)


def _rewrite_on(graph, inputs, replace, copies, name):
    def call(layer, *args, **kwargs):
        if _is_graph(layer):
            flat = tree.flatten(args)
            inner_inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype) for t in flat]
            inner = _rewrite_on(functional_view(layer), inner_inputs, replace, copies, layer.name)
            return inner(flat if len(flat) > 1 else flat[0], **kwargs)
        replaced = replace(layer, *args, **kwargs)
        return replaced if replaced is not None else copy_layer(layer, copies)(*args, **kwargs)

    structured = tree.pack_sequence_as(graph.input, inputs)  # [x] stays a list (Keras 2 .h5, Model([x], y))
    rebuilt = keras.models.clone_model(graph, input_tensors=structured, clone_function=lambda layer: layer,
                                       call_function=call)
    rebuilt.name = name
    return rebuilt


def replace_with_chains(model, chains: dict, pass_name: str) -> keras.Model:
    """A copy of ``model`` in which each layer ``L`` with ``id(L)`` in ``chains`` becomes the chain of new
    layers ``chains[id(L)] = [(layer, weights), ...]`` (each called on the previous one's output)."""
    made = {}

    def replace(layer, *args, **kwargs):
        if id(layer) not in chains:
            return None
        steps = made.setdefault(id(layer), [WithWeights(new, weights) for new, weights in chains[id(layer)]])
        outputs = steps[0](*args, **kwargs)
        for step in steps[1:]:
            outputs = step(outputs)
        return outputs

    return rewrite(model, replace, pass_name)


class WithWeights:
    """Calls a freshly made layer, then gives it its weights (they exist only once it is built)."""

    def __init__(self, layer, weights):
        self.layer, self.weights = layer, weights

    def __call__(self, *args, **kwargs):
        outputs = self.layer(*args, **kwargs)
        if self.weights is not None:
            self.layer.set_weights(self.weights)
            self.weights = None  # a shared layer gets them once
        return outputs


def sliced_layer(layer, keep_in, keep_out, cache: dict):
    """A copy of ``layer`` keeping only its channel positions ``keep_in``/``keep_out`` (made once per layer)."""
    if id(layer) not in cache:
        config, weights = handler_for(layer).slice(layer, keep_in, keep_out)
        cache[id(layer)] = WithWeights(type(layer).from_config(config), weights)
    return cache[id(layer)]


def copy_layer(layer, cache: dict):
    """A copy of ``layer`` with its weights; a layer that cannot be re-created from its config is reused."""
    if id(layer) not in cache:
        try:
            cache[id(layer)] = WithWeights(type(layer).from_config(layer.get_config()), layer.get_weights())
        except Exception:  # custom layer without a complete get_config: untouched means the very same layer
            cache[id(layer)] = layer
    return cache[id(layer)]


# -- channel dependencies ----------------------------------------------------------------


@dataclass
class ChannelGroup:
    """Channels that must be removed together, one component (set of atoms) per removable channel."""

    name: str
    layers: list  # paths of the layers whose output channels the group holds
    components: list = field(default_factory=list)  # one np.ndarray of atoms per channel

    @property
    def size(self) -> int:
        return len(self.components)


@dataclass
class LayerChannels:
    """One weighted layer's input and output channel atoms (its first call's)."""

    layer: object
    path: str
    inputs: np.ndarray
    outputs: np.ndarray


class ChannelGraph:
    """Which channels of a functional model must shrink together (see the module docstring).

    Args:
        model: a Functional or built Sequential Keras model (nested models allowed).
        protect: names of layers whose output channels are never removed (the
            model's outputs and inputs are always protected).
    """

    def __init__(self, model, protect=(), pass_name: str = "channel_prune"):
        self.parent: list[int] = []
        self.derived_from: dict[int, int] = {}
        self.derived: dict[int, list] = defaultdict(list)
        self.pinned: set[int] = set()
        self.source_of: dict[int, str] = {}  # atom -> path of the layer making it
        self.layers: dict[int, LayerChannels] = {}  # id(layer) -> its channels
        self.untouched: list[str] = []
        self.calls, inputs, outputs = iter_calls(model, pass_name)
        shapes = [tuple(t.shape) for t in functional_view(model).inputs]
        self.layouts = {key: self._new(int(shape[-1]), pinned=True) for key, shape in zip(inputs, shapes)}
        for call in self.calls:
            self._add(call, self.layouts)
        for key in outputs:
            self.pinned.update(self.layouts[key].tolist())
        for info in self.layers.values():
            if info.layer.name in protect or info.path in protect:
                self.pinned.update(info.outputs.tolist())
        self.groups = self._groups()

    # union-find over atoms
    def _new(self, count, pinned=False, source=None):
        atoms = np.arange(len(self.parent), len(self.parent) + count)
        self.parent.extend(atoms.tolist())
        if pinned:
            self.pinned.update(atoms.tolist())
        if source is not None:
            self.source_of.update(dict.fromkeys(atoms.tolist(), source))
        return atoms

    def find(self, atom: int) -> int:
        root = atom
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[atom] != root:
            self.parent[atom], atom = root, self.parent[atom]
        return root

    def _union(self, first, second):
        for a, b in zip(first.tolist(), second.tolist()):
            self.parent[self.find(a)] = self.find(b)

    def _add(self, call: Call, layouts):
        layer = call.layer
        ins = [layouts[key] for key in call.inputs]
        kind = "opaque" if not ins else kind_of(layer, call.in_shapes, call.out_shapes)
        if kind == "merge" and len({len(i) for i in ins}) != 1:
            kind = "opaque"  # broadcasting over channels (e.g. a 1-channel attention map)
        if kind == "source":
            out = self._source(call, ins[0])
        elif kind in ("same", "merge"):
            for other in ins[1:]:
                self._union(ins[0], other)
            out = ins[0]
        elif kind == "concat":
            out = np.concatenate(ins)
        elif kind == "expand":
            out = self._expand(call, ins[0])
        else:
            self._opaque(call, ins, layouts)
            return
        if (getattr(layer, "weights", ()) or handler_for(layer).config_has_channels) and id(layer) not in self.layers:
            self.layers[id(layer)] = LayerChannels(layer, call.path, ins[0], out)
        layouts[call.outputs[0]] = out

    def _source(self, call, inputs):
        known = self.layers.get(id(call.layer))
        if known is not None:  # a shared layer: every call reads the same input channels
            self._union(known.inputs, inputs)
            return known.outputs
        count = handler_for(call.layer).count_out(call.layer, call.out_shapes[0])
        return self._new(count, pinned=mixes_outputs(call.layer), source=call.path)

    def _expand(self, call, inputs):
        rows = handler_for(call.layer).expansion(call.layer, call.in_shapes[0])
        out = self._new(rows.size)
        for atom, positions in zip(inputs.tolist(), rows):
            self.derived[atom].extend(out[positions].tolist())
            self.derived_from.update(dict.fromkeys(out[positions].tolist(), atom))
        return out

    def _opaque(self, call, ins, layouts):
        for atoms in ins:
            self.pinned.update(atoms.tolist())
        layer = call.layer
        if type(layer).__name__ != "InputLayer" and (getattr(layer, "weights", ()) or handler_for(layer).kind == "opaque"):
            self.untouched.append(f"{call.path} ({type(layer).__name__})")
        for key, shape in zip(call.outputs, call.out_shapes):
            layouts[key] = self._new(int(shape[-1]) if shape else 1, pinned=True)

    # components and groups
    def closure(self, atoms) -> set:
        """Every atom that goes when ``atoms`` go: their components and everything derived from them."""
        removed, todo = set(), list(atoms)
        while todo:
            atom = todo.pop()
            if atom in removed:
                continue
            removed.add(atom)
            todo.extend(self._members[self.find(atom)])
            todo.extend(self.derived.get(atom, ()))
        return removed

    def _groups(self) -> list:
        self._members = defaultdict(list)
        for atom in range(len(self.parent)):
            self._members[self.find(atom)].append(atom)
        groups = {}
        for root, members in self._members.items():
            if not any(a in self.source_of for a in members) or any(a in self.derived_from for a in members):
                continue  # not a channel a layer makes, or only removable with the channel it comes from
            removed = self.closure(members)
            if removed & self.pinned:
                continue
            sources = sorted({self.source_of[a] for a in removed if a in self.source_of})
            group = groups.setdefault(tuple(sources), ChannelGroup("+".join(sources), sources))
            group.components.append(np.array(sorted(removed)))
        return list(groups.values())

    def macs(self, removed=()) -> int:
        """Multiply-accumulates of one inference of the model without the atoms ``removed``.

        The same count as :func:`~edgesmith.converters.macs.count_macs` of the rebuilt model, without
        rebuilding it: every call is counted on its tensors' shapes with the kept channels only.
        """
        removed_array = np.fromiter(removed, dtype=np.int64, count=len(removed))
        kept = {key: int(np.count_nonzero(~np.isin(atoms, removed_array))) for key, atoms in self.layouts.items()}

        def shapes(keys, original):
            return [shape[:-1] + (kept[key],) if shape and key in kept and len(self.layouts[key]) == shape[-1]
                    else shape for key, shape in zip(keys, original)]

        return sum(int(handler_for(call.layer).macs(call.layer, shapes(call.inputs, call.in_shapes),
                                                    shapes(call.outputs, call.out_shapes))) for call in self.calls)

    def kept_positions(self, removed: set):
        """``{id(layer): (keep_in, keep_out)}`` channel positions each weighted layer keeps."""
        removed_array = np.fromiter(removed, dtype=np.int64, count=len(removed))
        return {
            key: (np.flatnonzero(~np.isin(info.inputs, removed_array)),
                  np.flatnonzero(~np.isin(info.outputs, removed_array)))
            for key, info in self.layers.items()
        }
