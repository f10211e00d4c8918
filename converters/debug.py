"""Layer by layer, how far a quantized .tflite strays from its float Keras model, and what would help.

>>> from edgesmith.converters.debug import debug_quantization, format_debug
>>> report = debug_quantization(model, "digits.tflite", data, samples=64)
>>> sorted(row["layer"] for row in report["layers"] if row["class"] != "Flatten")
['conv1', 'conv2', 'fc1', 'head']
>>> worst = report["layers"][0]                         # ranked: the layer that hurts most first
>>> sorted(k for k in worst if k.endswith("_db")), worst["dtype"], report["unmatched"]
(['channel_snr_db', 'local_channel_snr_db', 'local_snr_db', 'output_snr_db', 'snr_db'], 'int8', [])
>>> print(format_debug(report))                         # doctest: +SKIP
rank  layer  dtype  output SNR dB  local SNR dB  SNR dB  cosine  max error  float range  ...

Both models run on the same real samples, the .tflite with every tensor kept and dequantized
(:class:`edgesmith.runtime.tensors.TensorProbe`). Each Keras layer is matched to the tensor that
holds its output:

1. by name: TFLiteConverter names a tensor after the layers whose ops made it
   (``tiny_1/conv1_1/Relu;tiny_1/conv1_1/convolution``); a tensor named after several layers (a fused
   Conv + BatchNorm + ReLU) holds the output of the last of them, and the others are reported as
   fused into it. The model's output is the tensor feeding the final DEQUANTIZE (or the output).
2. by shape and order, for a layer no tensor is named after: the first unclaimed, unnamed tensor of
   the layer's output shape between its inputs' tensors and its consumers'.

Layers matched neither way are listed in ``unmatched`` with the reason.

Per matched layer, over the samples (``f``: float Keras output, ``q``: the .tflite's, dequantized):

* ``snr_db``: ``10 log10(sum f^2 / sum (q - f)^2)``, the error accumulated up to this layer;
* ``channel_snr_db``: the same per channel (last axis), averaged in dB over the channels that carry
  a signal, so that one huge channel cannot hide the others being rounded away;
* ``local_snr_db`` / ``local_channel_snr_db``: the error this layer adds by itself: the Keras layer
  (with any layer fused into it) is fed the .tflite's own dequantized inputs, and its float output
  compared with the .tflite's;
* ``output_snr_db``: what that error costs the model: the float model's output when only this layer's
  own error is added to its output, against the float output (on the first ``impact_samples``). Layers
  are ranked by it (worst first): a layer's local SNR alone does not say how much the layers after it
  amplify or absorb its error (on the two CNNs of benchmarks/compression.py at int4, against the measured
  gain of raising each layer alone to int8, the local ranking scored Spearman -0.26 and -0.89, this one
  0.83 and 0.83; see benchmarks/debug_agreement.py).
  Where it is unknown, by ``local_channel_snr_db``, else by ``channel_snr_db``;
* ``cosine`` (mean over samples), ``max_abs_error``, ``float_range`` (min and max seen),
  ``quantized_range`` (what the integer type can hold with the tensor's scale and zero point),
  ``step`` (the scale), ``typical_steps`` (how many steps a typical channel spans),
  ``clipped_fraction`` (float values outside the quantized range);
* ``weights``: how the layer's op stores its weights (``granularity``: per-channel, per-tensor or
  float, and ``dtype``), None for an op without constant weights;
* ``advice``: in words, what would help (keep float, int16x8 activations, per-channel weights,
  more calibration data), or that the layer is fine.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from edgesmith.runtime.metadata import read_metadata
from edgesmith.runtime.tensors import (
    TensorProbe, channel_snr_db, constant_values, constant_weight, granularity, graph_output, is_quantized,
    quantization_step, quantized_range, snr_db)
from edgesmith.runtime.tflite_file import WEIGHTED_OPS, read_contents, read_tflite_file

from .errors import NotFromThisModelError, NotQuantizedError
from .keras_internals import inbound_node, keras_history, producer

FINE_DB = 30.0  # a layer at or above this (channel) SNR adds no error worth a change
LOW_DB = 15.0  # below this, advise keeping the layer in float if nothing cheaper helps
FEW_STEPS = 4.0  # a typical channel spanning fewer integer steps than this is rounded coarsely


@dataclass
class Match:
    """The .tflite tensor that holds a Keras layer's output, and how it was found (``name``, ``shape``, ``output``)."""

    layer: object
    tensor: object
    how: str
    position: int  # of the op that writes it, in execution order (-1: a graph input)
    fused: list = field(default_factory=list)  # layers whose ops were fused into this tensor's op
    op: object = None


def debug_quantization(model, tflite, data, *, samples: int = 256, source_sha256: str | None = None,
                       batch_size: int = 32, impact_samples: int = 64) -> dict:
    """Compare ``tflite`` (a quantized .tflite path) with its float Keras ``model`` layer by layer on ``data``.

    Args:
        model: the float Keras model the .tflite was converted from.
        tflite: path of the .tflite file.
        data: a :class:`edgesmith.data.Dataset`; its evaluation split (else its training split) is fed.
        samples: how many samples to compare on (the first ones of the split).
        source_sha256: the SHA-256 of the Keras file (``edgesmith.converters.load.source_sha256``); a .tflite whose
            edgesmith metadata names another source is refused.
        impact_samples: how many of those samples ``output_snr_db`` is measured on (one pass of the rest of
            the float model per matched layer and batch).

    Returns ``{"layers": [row per matched layer, worst first], "unmatched": [{"layer", "reason"}],
    "ranked_by", "samples", "tflite", "notes"}`` (see the module docstring for the row's fields).
    Raises :class:`NotFromThisModelError` when the .tflite was not converted from ``model`` (input or
    output shapes differ), :class:`NotQuantizedError` when it holds no quantized tensor.
    """
    path = Path(tflite)
    content = read_tflite_file(path)
    contents = read_contents(content)
    main = contents.subgraphs[0]
    check_same_model(model, main, path, source_sha256)
    check_quantized(main, path)
    matches, unmatched = match_layers(model, main)
    check_weights(matches, contents.buffers, path)
    pool = data.x_val if len(data.x_val) else data.x_train
    count = min(int(samples), len(pool))
    stats = {name: _Stats(quantized_range(m.tensor), quantization_step(m.tensor)) for name, m in matches.items()}
    local_ok = dict.fromkeys(matches, True)
    probe = keras.Model(model.inputs, [match.layer.output for match in matches.values()])  # every float output
    impact = _Impact(model, matches)
    runner = TensorProbe(content, main, {name: match.tensor for name, match in matches.items()})
    for start in range(0, count, batch_size):
        batch = np.asarray(pool[start: min(count, start + batch_size)], dtype=np.float32)
        outputs = probe([batch], training=False)
        floats = dict(zip(matches, (np.asarray(v) for v in keras.tree.flatten(outputs))))
        quantized = runner.run(batch)
        known = {id(model.inputs[0]): runner.input_values,  # keras tensor -> the .tflite's dequantized value
                 **{id(match.layer.output): quantized[name] for name, match in matches.items()}}
        impact.start_batch(batch if start < impact_samples else None)
        for name, match in matches.items():
            local = _local_output(match.layer, known) if local_ok[name] else None
            local_ok[name] = local is not None
            stats[name].add(floats[name], quantized[name], local)
            if local is not None:
                impact.add(name, floats[name] + (quantized[name] - local))
    rows = [_row(order, match, stats[name], local_ok[name], impact.output_snr_db(name))
            for order, (name, match) in enumerate(matches.items())]
    rows.sort(key=lambda row: (_rank_value(row), row["order"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return {
        "tflite": str(path),
        "samples": count,
        "ranked_by": "output_snr_db (local_channel_snr_db where unknown, else channel_snr_db)",
        "layers": rows,
        "unmatched": unmatched,
        "notes": _notes(path),
    }


# -- refusals -------------------------------------------------------------------------------------


def check_same_model(model, main, path, source_sha256: str | None = None) -> None:
    """Refuse a .tflite whose input or output shapes differ from ``model``'s, or (with ``source_sha256``, the
    Keras file's hash) whose edgesmith metadata names another source model."""
    for role, keras_tensors, indices in (("input", model.inputs, main.inputs), ("output", model.outputs, main.outputs)):
        keras_shapes = [_shape(t.shape) for t in keras_tensors]
        tflite_shapes = [_shape(main.tensors[i].shape) for i in indices]
        if not _same_shapes(keras_shapes, tflite_shapes):
            raise NotFromThisModelError(
                f"{path} was not converted from this model: its {role} shapes {tflite_shapes} differ from the "
                f"model's {keras_shapes}")
    recorded = (read_metadata(path) or {}).get("source_sha256") if source_sha256 is not None else None
    if recorded and recorded != source_sha256:
        raise NotFromThisModelError(
            f"{path} was converted from another model (source sha256 {recorded[:12]}..., this model's is "
            f"{source_sha256[:12]}...)")


def check_quantized(main, path) -> None:
    """Refuse a .tflite that holds no quantized tensor (float32 or float16): there is nothing to debug."""
    if not any(map(is_quantized, main.tensors)):
        raise NotQuantizedError(f"{path} has no quantized tensors (a float model): nothing to compare layer by layer")


def check_weights(matches: dict, buffers: list, path, threshold: float = 0.5) -> None:
    """Refuse a .tflite whose convolution or dense weights are not the Keras layer's (cosine below ``threshold``):
    a file converted from another model with the same shapes and layer names. Quantization, pruning or
    fine-tuning leave the cosine near 1; layers with a BatchNorm folded in are not compared."""
    from .qat_layers import stored_kernel

    for match in matches.values():
        kernel = stored_kernel(match.layer) if hasattr(match.layer, "kernel") else None
        stored = _stored_kernel(match, buffers)
        if kernel is None or stored is None or match.fused:
            continue
        if kernel.size != stored.size:
            raise NotFromThisModelError(
                f"{path} was not converted from this model: layer {match.layer.name} has {kernel.size} "
                f"weights {list(kernel.shape)}, the .tflite's op named after it {stored.size}")
        if tuple(kernel.shape) != stored.shape:  # Conv1D runs as CONV_2D: same weights, another layout
            continue
        keras_kernel = np.asarray(kernel, dtype=np.float64).ravel()
        norms = np.linalg.norm(keras_kernel) * np.linalg.norm(stored)
        cosine = float(keras_kernel @ stored.ravel() / norms) if norms > 0 else 1.0
        if cosine < threshold:
            raise NotFromThisModelError(
                f"{path} was not converted from this model: the weights of layer {match.layer.name} differ "
                f"(cosine {cosine:.2f} with the .tflite's)")


def _stored_kernel(match: Match, buffers: list):
    """The .tflite weights of a matched CONV_2D or FULLY_CONNECTED op, dequantized, in the Keras kernel's layout."""
    weight = constant_weight(match.op, ("CONV_2D", "FULLY_CONNECTED"))
    values = None if weight is None else constant_values(weight, buffers)
    if values is None:
        return None
    return (np.transpose(values, (1, 2, 3, 0)) if match.op.name == "CONV_2D" else values.T).astype(np.float64)


def _shape(shape) -> list:
    """A shape without its batch dimension, unknown dimensions as None."""
    return [None if d is None or d < 0 else int(d) for d in list(shape)[1:]]


def _same_shape(a: list, b: list) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def _same_shapes(keras_shapes: list, tflite_shapes: list) -> bool:
    """The same shapes in any order: a .tflite's graph lists its outputs in an order of the converter's making.

    >>> _same_shapes([[4], [10]], [[10], [4]]), _same_shapes([[4], [10]], [[10], [10]])
    (True, False)
    """
    unmatched = list(tflite_shapes)
    for shape in keras_shapes:
        match = next((other for other in unmatched if _same_shape(shape, other)), None)
        if match is None:
            return False
        unmatched.remove(match)
    return not unmatched


# -- matching Keras layers to tensors --------------------------------------------------------------


def match_layers(model, main) -> tuple:
    """``({layer name: Match}, [{"layer", "reason"}])``: the tensor holding each layer's output, and the layers
    without one (see the module docstring for the rules)."""
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]  # in the order they run
    order = {layer.name: i for i, layer in enumerate(layers)}
    written = [(position, tensor, op, _layers_named(tensor.name, order)) for position, op in enumerate(main.operators)
               for tensor in op.outputs if tensor is not None and not tensor.constant]
    matches, fused = {}, {}  # fused: layer -> the later layer whose tensor holds its output
    for position, tensor, op, names in written:  # by name; later tensors of a layer win (its activation follows)
        if not names:
            continue
        last = max(names, key=order.get)
        fused.pop(last, None)  # the last tensor naming a layer decides whether it was fused into a later one
        fused.update({name: last for name in names if name != last})
        layer = layers[order[last]]
        if _same_shape(_shape(layer.output.shape), _shape(tensor.shape)):
            matches[last] = Match(layer, tensor, "name", position, sorted(set(names) - {last}, key=order.get), op)
    for name in fused:
        matches.pop(name, None)  # what matched it was an intermediate (a SeparableConv2D's depthwise half)
    for output_layer, graph_index in _output_layers(model, main):
        if output_layer.name in order:
            position, tensor, op = graph_output(main, graph_index)
            matches[output_layer.name] = Match(output_layer, tensor, "output", position,
                                               getattr(matches.get(output_layer.name), "fused", []), op)
    _match_by_shape(layers, matches, written)
    fused_into = {**fused, **{name: match.layer.name for match in matches.values() for name in match.fused}}
    absent = "not in the .tflite: no tensor is named after it or has its shape where it runs"
    unmatched = [{"layer": layer.name, "reason": f"fused into {fused_into[layer.name]}" if layer.name in fused_into
                  else absent} for layer in layers if layer.name not in matches]
    return {layer.name: matches[layer.name] for layer in layers if layer.name in matches}, unmatched


def _output_layers(model, main) -> list:
    """``(layer, position in the graph's output list)`` of each Keras output the graph holds once: one output, or
    one of several whose shape no other output has (the graph lists them in an order of the converter's making)."""
    shapes, single = [_shape(main.tensors[index].shape) for index in main.outputs], len(model.outputs) == 1
    sames = [[position for position, shape in enumerate(shapes) if _same_shape(_shape(tensor.shape), shape)]
             for tensor in model.outputs]
    return [(producer(tensor), 0 if single else same[0]) for tensor, same in zip(model.outputs, sames)
            if single or len(same) == 1]


def _layers_named(name: str, order: dict) -> list:
    """The layers a tensor name mentions. Each ``;``-separated part is a scope path ``model/layer/op...``; its
    layer segment (the second, else the first) names a layer with or without the trace's ``_1`` suffix. Deeper
    segments are op names (``batchnorm/add_1``) and would mistake ops for layers called ``add``."""
    found = []
    for segments in (part.split("/") for part in name.split(";")):
        candidate = next((c for segment in segments[1:2] + segments[:1]
                          for c in (re.sub(r"_\d+$", "", segment), segment) if c in order), None)
        if candidate is not None and candidate not in found:
            found.append(candidate)
    return found


def _match_by_shape(layers, matches: dict, written: list) -> None:
    """Match each layer left over to the first unclaimed, unnamed tensor of its shape that runs after its
    inputs' tensors and before its consumers' tensors."""
    claimed = {m.tensor.index for m in matches.values()}
    for layer in layers:
        if layer.name in matches:
            continue
        after = max((matches[p.name].position for p in _parents(layer) if p.name in matches), default=-1)
        before = min((matches[c.name].position for c in layers if layer in _parents(c) and c.name in matches),
                     default=len(written))
        for position, tensor, op, names in written:
            if (after < position < before and tensor.index not in claimed and not names
                    and _same_shape(_shape(layer.output.shape), _shape(tensor.shape))):
                matches[layer.name] = Match(layer, tensor, "shape", position, [], op)
                claimed.add(tensor.index)
                break


def _parents(layer) -> list:
    """The layers (or operations) whose outputs ``layer`` takes, through its first call."""
    try:
        inputs = layer.input
    except (AttributeError, ValueError):
        return []
    return [producer(t) for t in (inputs if isinstance(inputs, (list, tuple)) else [inputs])]


# -- running both models ---------------------------------------------------------------------------


class _Impact:
    """Running sums for ``output_snr_db``: the float model's output with one layer's own error added to that
    layer's output (the rest of the model run in float by a Keras model cut at that tensor), against the float
    output."""

    def __init__(self, model, matches: dict):
        self.model, self.rests, self.sums = model, {}, {}
        self.batch = self.reference = None
        outputs = [id(tensor) for tensor in model.outputs]
        for name, match in matches.items():
            if id(match.layer.output) in outputs:
                self.rests[name] = outputs.index(id(match.layer.output))  # an output layer: its error is that output's
                continue
            # a Functional model cut at the layer's output, which becomes an input (none for a layer called
            # twice or a nested model's tensor: no figure for it)
            with contextlib.suppress(Exception):
                self.rests[name] = keras.Model([*model.inputs, match.layer.output], model.outputs)

    def start_batch(self, batch) -> None:
        """Run the float model on ``batch``, the reference for the next :meth:`add` calls (None: ignore them)."""
        self.batch = batch
        self.reference = None if batch is None else keras.tree.flatten(self.model(batch, training=False))

    def add(self, name: str, noisy: np.ndarray) -> None:
        """The rest of the model after layer ``name``, run from ``noisy`` (its float output plus its own error);
        with several outputs, all of them count."""
        rest = self.rests.get(name)
        if rest is None or self.batch is None:
            return
        if isinstance(rest, int):  # an output layer: the other outputs keep their float values
            outputs = [noisy if position == rest else output for position, output in enumerate(self.reference)]
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Keras warns that the cut model's input structure is a list
                outputs = keras.tree.flatten(rest([self.batch, noisy], training=False))
        reference, output = (np.concatenate([np.asarray(v, np.float64).reshape(len(self.batch), -1) for v in values],
                                            axis=1) for values in (self.reference, outputs))
        self.sums[name] = self.sums.get(name, 0) + np.array([np.sum(reference ** 2), np.sum((output - reference) ** 2)])

    def output_snr_db(self, name: str) -> float | None:
        """The layer's figure over the batches added so far (None: no figure for it)."""
        return round(snr_db(*self.sums[name]), 2) if name in self.sums else None


def _local_output(layer, known: dict):
    """``layer``'s float output computed from the .tflite's own values of its inputs (running any unmatched
    layer between them, e.g. one fused into it), or None when that cannot be done."""
    try:
        return np.asarray(_compute(layer, 0, known, depth=0))
    except Exception:  # an op this walk cannot replay (a shared layer, an unusual call): no local figure
        return None


def _compute(operation, node_index: int, known: dict, depth: int):
    """Call ``operation`` (its call number ``node_index`` in the graph) on known values, computing unknown inputs
    from theirs first."""
    if depth > 64:
        raise RecursionError("no matched tensor within 64 operations")
    node = inbound_node(operation, node_index)
    for tensor in node.arguments.keras_tensors:  # what is computed here is kept in ``known`` for the next layers
        if id(tensor) not in known:
            made_by, call, position = keras_history(tensor)
            known[id(tensor)] = keras.tree.flatten(_compute(made_by, call, known, depth + 1))[position]
    args, kwargs = node.arguments.fill_in(known)
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        if "training" in inspect.signature(operation.call).parameters:
            kwargs["training"] = False
    return operation(*args, **kwargs)


# -- statistics ------------------------------------------------------------------------------------


class _Stats:
    """Running sums over batches: what every figure of a row is computed from (no activation is kept)."""

    def __init__(self, quantized_range, step):
        self.range, self.step = quantized_range, step  # range: [low, high] real values it can hold, None for float
        self.elements = 0  # per channel
        # per channel (last axis): sum f^2 and sum (q - f)^2; local: the same with the layer's own float output
        self.channel_signal = self.channel_noise = self.channel_local_signal = self.channel_local_noise = 0.0
        self.cosines, self.max_error, self.clipped = [], 0.0, 0
        self.low, self.high = np.inf, -np.inf

    def add(self, floats: np.ndarray, quantized: np.ndarray, local) -> None:
        floats, quantized = _channels_last(floats), _channels_last(quantized)
        error = quantized - floats
        axes = tuple(range(floats.ndim - 1))
        self.elements += floats.size // floats.shape[-1]
        self.channel_signal = self.channel_signal + np.sum(floats ** 2, axis=axes)
        self.channel_noise = self.channel_noise + np.sum(error ** 2, axis=axes)
        flat_f, flat_q = floats.reshape(len(floats), -1), quantized.reshape(len(quantized), -1)
        norms = np.linalg.norm(flat_f, axis=1) * np.linalg.norm(flat_q, axis=1)
        self.cosines += list(np.where(norms > 0, np.sum(flat_f * flat_q, axis=1) / np.maximum(norms, 1e-30), 1.0))
        self.max_error = max(self.max_error, float(np.max(np.abs(error))) if error.size else 0.0)
        self.low, self.high = min(self.low, float(floats.min())), max(self.high, float(floats.max()))
        if self.range is not None:
            # more than a step beyond the range: rounding to the edge is not clipping
            self.clipped += int(np.sum((floats < self.range[0] - self.step) | (floats > self.range[1] + self.step)))
        if local is not None:
            local = _channels_last(local)
            self.channel_local_signal = self.channel_local_signal + np.sum(local ** 2, axis=axes)
            self.channel_local_noise = self.channel_local_noise + np.sum((quantized - local) ** 2, axis=axes)

    @property
    def typical(self) -> float:
        """The median over channels of a channel's root-mean-square value."""
        return float(np.median(np.sqrt(np.atleast_1d(self.channel_signal) / self.elements))) if self.elements else 0.0


def _channels_last(values) -> np.ndarray:
    """As float64 with at least a batch and a channel axis."""
    values = np.asarray(values, dtype=np.float64)
    return values[:, None] if values.ndim == 1 else values


def _row(order: int, match: Match, stats: _Stats, local_ok: bool, output_snr: float | None) -> dict:
    tensor, step = match.tensor, stats.step
    row = {
        "layer": match.layer.name,
        "class": type(match.layer).__name__,
        "order": order,
        "tensor": tensor.name,
        "matched_by": match.how,
        "fused": match.fused,
        "dtype": tensor.type.lower(),
        "snr_db": round(snr_db(np.sum(stats.channel_signal), np.sum(stats.channel_noise)), 2),
        "channel_snr_db": round(channel_snr_db(stats.channel_signal, stats.channel_noise), 2),
        "local_snr_db": round(snr_db(np.sum(stats.channel_local_signal), np.sum(stats.channel_local_noise)), 2)
        if local_ok else None,
        "local_channel_snr_db": round(channel_snr_db(stats.channel_local_signal, stats.channel_local_noise), 2)
        if local_ok else None,
        "output_snr_db": output_snr,
        "cosine": round(float(np.mean(stats.cosines)), 6) if stats.cosines else None,
        "max_abs_error": float(f"{stats.max_error:.6g}"),
        "float_range": [float(f"{stats.low:.6g}"), float(f"{stats.high:.6g}")],
        "quantized_range": [float(f"{v:.6g}") for v in stats.range] if stats.range else None,
        "step": float(f"{step:.6g}") if step is not None else None,
        "typical_steps": round(stats.typical / step, 2) if step else None,
        "clipped_fraction": round(stats.clipped / max(1, stats.elements * np.size(stats.channel_signal)), 6),
        "weights": _weight_quantization(match),
    }
    row["advice"] = advice(row)
    return row


def _rank_value(row: dict) -> float:
    """What a layer is ranked by (lower hurts more): its cost at the model's output where known."""
    return _local_value(row) if row["output_snr_db"] is None else row["output_snr_db"]


def _local_value(row: dict) -> float:
    """The error the layer adds by itself where known, else the error accumulated up to it."""
    return row["channel_snr_db"] if row["local_channel_snr_db"] is None else row["local_channel_snr_db"]


def _weight_quantization(match: Match) -> dict | None:
    """How the layer's weights are stored: ``{"granularity", "dtype"}``, or None when its op has no constant weights."""
    weight = constant_weight(match.op, WEIGHTED_OPS)
    return None if weight is None else {"granularity": granularity(weight) or "float", "dtype": weight.type.lower()}


def advice(row: dict) -> list:
    """What would help a layer, in words, most useful first (``["fine"]`` when its error is small)."""
    score = _local_value(row)
    tips = []
    if score < FINE_DB and row["clipped_fraction"] > 0.001:
        tips.append(f"more (or more representative) calibration data: {100 * row['clipped_fraction']:.2g}% of its "
                    f"values fall outside the calibrated range {_range(row['quantized_range'])} "
                    f"(seen {_range(row['float_range'])})")
    if score < FINE_DB and row["dtype"] in ("int8", "uint8") and row["typical_steps"] is not None \
            and row["typical_steps"] < FEW_STEPS:
        tips.append(f"int16x8 (16-bit activations): a typical channel spans {row['typical_steps']:.2g} int8 steps "
                    f"of {row['step']:.3g}, as a few large values stretch the range {_range(row['quantized_range'])}")
    if score < FINE_DB and (row["weights"] or {}).get("granularity") == "per-tensor" and row["class"] != "Dense":
        tips.append("per-channel weights: one scale serves every output channel")
    if score < LOW_DB:
        tips.append(f"keep it in float: it adds noise at {score:.1f} dB by itself")
    return tips or ["fine" if score >= FINE_DB else "more calibration data or int16x8 may help a little"]


def _range(values) -> str:
    return "-" if values is None else f"{values[0]:.3g}..{values[1]:.3g}"


def _notes(path: Path) -> list:
    metadata = read_metadata(path) or {}
    trained = [step.get("pass") for step in (metadata.get("recipe") or {}).get("passes", [])
               if step.get("pass") not in (None, "ptq", "mixed_precision")]
    return [f"the .tflite's recipe changed the model before quantizing it ({', '.join(trained)}): the differences "
            "include what those passes changed, not only quantization"] if trained else []


# -- presenting -------------------------------------------------------------------------------------


def debug_table(report: dict) -> list:
    """Rows of the printed table, worst layer first."""
    return [{
        "rank": row["rank"],
        "layer": row["layer"],
        "dtype": row["dtype"],
        "output SNR dB": _db(row["output_snr_db"]),
        "local SNR dB": _db(row["local_channel_snr_db"]),
        "SNR dB": _db(row["channel_snr_db"]),
        "cosine": "-" if row["cosine"] is None else f"{row['cosine']:.4f}",
        "max error": f"{row['max_abs_error']:.3g}",
        "float range": _range(row["float_range"]),
        "quantized range": _range(row["quantized_range"]),
        "what would help": row["advice"][0],
    } for row in report["layers"]]


def _db(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_debug(report: dict) -> str:
    """The table as aligned text, then the unmatched layers and the notes."""
    rows = debug_table(report)
    widths = {key: max(len(key), *(len(str(row[key])) for row in rows)) for key in rows[0]} if rows else {}
    lines = ["  ".join(key.ljust(widths[key]) for key in widths)] if rows else ["no layer could be matched"]
    lines += ["  ".join(str(row[key]).ljust(widths[key]) for key in widths) for row in rows]
    lines.append(f"(output: the model's output with only this layer's own error; local: that error at the layer; SNR "
                 f"per channel, averaged in dB; {report['samples']} samples; worst first)")
    lines += [f"{row['layer']}: also " + "; ".join(row["advice"][1:]) for row in report["layers"]
              if len(row["advice"]) > 1]
    if report["unmatched"]:
        lines.append("not matched: " + ", ".join(f"{u['layer']} ({u['reason']})" for u in report["unmatched"]))
    lines += report["notes"]
    return "\n".join(lines)
