"""The recipe space the search samples: which passes, their per-layer ratios, and per-layer precisions.

Each trial's candidate is a validated :class:`~edgesmith.recipes.Recipe` (recorded in its .tflite's metadata)::

    passes = [{"pass": "channel_prune", "ratios": {"conv2d": 0.25}, ...}, {"pass": "prune", "sparsity": 0.6, ...},
              {"pass": "mixed_precision", "precisions": {"conv2d": "int8", "dense": "int16x8"}}]

Passes run in a fixed order (channel_prune, prune, cluster) and each is
skipped when its sampled strength is 0; the conversion is always
:func:`~edgesmith.converters.mixed_precision.mixed_precision`. Keras loads when a model is searched, not on import
(the CLI reads :data:`SEARCHABLE_PASSES`, :data:`OBJECTIVES` and :data:`SAMPLERS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgesmith.converters.errors import UnknownOptionError
from edgesmith.converters.precisions import ALL_PRECISIONS, PRECISIONS
from edgesmith.recipes import Recipe, recipe_from_dict

SEARCHABLE_PASSES = ("channel_prune", "prune", "cluster")
# objective -> the row key it minimizes ("size": the raw bytes of the graph as stored)
OBJECTIVES = {"size": "graph_bytes", "gzip-size": "gzip_bytes", "latency": "latency_ms", "energy": "energy_mj"}
SAMPLERS = ("tpe", "nsga2")
CHANNEL_RATIOS = (0.0, 0.125, 0.25, 0.375, 0.5, 0.625)
SPARSITIES = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9)
CLUSTERS = (0, 8, 16, 32)


@dataclass
class SearchSpace:
    """What a trial may choose for one model.

    Args:
        layers: weighted layers a precision is chosen for.
        channel_groups: first layer of each channel group channel pruning may thin.
        passes: the training passes the search may apply (subset of :data:`SEARCHABLE_PASSES`).
        epochs: fine-tuning epochs of each applied pass.
        precisions: the precisions a layer may take (a layer whose op cannot take one, such as int4 on a
            depthwise convolution, is offered the others).
    """

    layers: list
    channel_groups: list = field(default_factory=list)
    passes: tuple = SEARCHABLE_PASSES
    epochs: int = 1
    precisions: tuple = PRECISIONS
    layer_ops: dict = field(default_factory=dict)  # layer -> the TFLite op it becomes (None: not known)

    @classmethod
    def for_model(cls, model, passes=SEARCHABLE_PASSES, epochs: int = 1, precisions=PRECISIONS) -> "SearchSpace":
        from edgesmith.converters.kernels import all_layers
        from edgesmith.converters.mixed_precision import keras_op, weighted_layers

        unknown = sorted(set(passes) - set(SEARCHABLE_PASSES))
        if unknown:
            raise UnknownOptionError(f"the search cannot apply pass(es) {', '.join(unknown)}; "
                                     f"choose from {', '.join(SEARCHABLE_PASSES)}")
        bad = sorted(set(precisions) - set(ALL_PRECISIONS))
        if bad:
            raise UnknownOptionError(f"unknown precision(s) {', '.join(bad)}; valid: {', '.join(ALL_PRECISIONS)}")
        ops = {layer.name: keras_op(layer) for layer in all_layers(model)}
        layers = weighted_layers(model)
        return cls(layers, channel_groups(model) if "channel_prune" in passes else [], tuple(passes), epochs,
                   tuple(precisions), {layer: ops.get(layer) for layer in layers})

    def suggest(self, trial) -> Recipe:
        """The recipe of an Optuna ``trial`` (see the module docstring), validated like any recipe."""
        steps = []
        if "channel_prune" in self.passes:
            ratios = {g: trial.suggest_categorical(f"channels:{g}", CHANNEL_RATIOS) for g in self.channel_groups}
            ratios = {g: r for g, r in ratios.items() if r > 0}
            if ratios:
                steps.append({"pass": "channel_prune", "ratio": 0.0, "ratios": ratios, "scope": "layer",
                              "round_to": 1, "epochs": self.epochs})
        if "prune" in self.passes:
            sparsity = trial.suggest_categorical("sparsity", SPARSITIES)
            if sparsity > 0:
                steps.append({"pass": "prune", "sparsity": sparsity, "epochs": self.epochs})
        if "cluster" in self.passes:
            clusters = trial.suggest_categorical("clusters", CLUSTERS)
            if clusters:
                steps.append({"pass": "cluster", "clusters": clusters, "epochs": self.epochs})
        precisions = {layer: trial.suggest_categorical(f"precision:{layer}", self.choices(layer)) for layer in self.layers}
        return recipe_from_dict({"name": f"optimize-trial-{trial.number}", "description": "found by edgesmith optimize",
                                 "passes": [*steps, {"pass": "mixed_precision", "precisions": precisions}]})

    def baseline(self) -> dict:
        """Optuna parameters of the plain all-int8 conversion, the first trial of a new study."""
        params = {f"channels:{g}": 0.0 for g in self.channel_groups}
        if "prune" in self.passes:
            params["sparsity"] = 0.0
        if "cluster" in self.passes:
            params["clusters"] = 0
        params.update({f"precision:{layer}": "int8" if "int8" in self.choices(layer) else self.choices(layer)[0]
                       for layer in self.layers})
        return params

    def choices(self, layer: str) -> tuple:
        """The precisions ``layer`` may take: :attr:`precisions` minus those its op cannot run."""
        from edgesmith.converters.mixed_precision import takes

        ops = self.layer_ops.get(layer)
        return tuple(p for p in self.precisions if ops is None or takes(p, [ops])) or self.precisions


def channel_groups(model) -> list:
    """Each group of channels that channel pruning removes together, named by its first layer."""
    from edgesmith.converters.graph import ChannelGraph

    return [group.layers[0].split("/")[-1] for group in ChannelGraph(model).groups]
