"""Quantization-aware training, native to Keras 3 (TensorFlow backend), without tfmot.

>>> from edgesmith.converters import qat, ptq, record_of
>>> trained = qat(model, data, epochs=2)
>>> tflite = ptq(trained, data, mode="int8")     # a true int8 graph from the learned ranges
>>> record_of(trained).details["float_layers"]   # layers left in float32: none
[]
>>> small = qat(model, data, epochs=2, weight_bits=4)   # 4-bit kernels: ptq(small, data, mode="int8") writes int4
>>> record_of(small).details["weight_bits"]
4

The model is rebuilt with fake quantization where TFLite's int8 graph holds a
scale of its own (:func:`.int8_ops.int8_role`; a layer's is a fact of its handler in
:mod:`.layers`): weights per output channel, symmetric int8 (``narrow_range``);
(``weight_bits=4``: 4-bit, symmetric [-7, 7], on Conv1D/Conv2D/Dense, the kernels LiteRT
runs with int4 weights; depthwise kernels stay 8-bit, which is all TFLite runs);
activations per tensor, asymmetric int8, on the model input and after each op
with its own output scale (Conv/Dense with folded BatchNorm and fused
ReLU/ReLU6, Add, Multiply, global average pooling, Rescaling, hard-swish...).

Ops that TFLite runs with one scale on both sides (pooling, PAD, RESHAPE,
CONCATENATION, slicing, RESIZE, TRANSPOSE, Dropout...) get no quantizer of their
own: the tensors they connect form one group with ONE shared quantizer, applied
where the group's values are made. The converter keeps a single scale per
tensor: two quantizers in a row before such an op fail the conversion ("violate
the same scale constraint"), and differing quantizers on a concatenation's
inputs are silently replaced by one range, so the .tflite would no longer match
the Keras model. The outputs of softmax, sigmoid and tanh, whose int8 scale
TFLite fixes, are rounded to that fixed grid (1/256 for softmax), so near-ties
break the same way in Keras and in the .tflite.

BatchNorm after a linear convolution is folded into it (with its statistics
frozen), SeparableConv2D becomes the depthwise and pointwise convolutions TFLite
runs. Pruning masks and cluster constraints move to the new kernels, so sparsity
and weight sharing survive. Layers and operations edgesmith does not quantize
stay float, are logged as a warning (logger ``edgesmith.converters.qat``) and
listed in the record's ``details["float_layers"]``.

Before any training, the ranges are calibrated on one batch and the model is
converted to int8 once (a dry run, :func:`~edgesmith.converters.ptq.to_tflite` as
:func:`ptq` converts a QAT model): a graph TFLite cannot convert is refused with a
one-line :class:`~edgesmith.converters.errors.UnsupportedModelError` naming the layer.
The pipeline runs that check before a recipe's first pass trains
(:func:`~edgesmith.converters.registry.check_model`), and hands the graph it built
to the pass (``prepared``), which then neither rebuilds nor converts it again.

The layers live in :mod:`.qat_layers`, where the quantizers go in :mod:`.qat_plan`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

from .checks import checked
from .errors import UnsupportedModelError
from .graph import iter_calls, require_graph
from .kernels import recurrent_layers
from .ptq import to_tflite
from .qat_layers import calibrate_ranges, clear_ranges, has_fake_quant
from .qat_plan import prepare_qat
from .record import remember
from .stage import stage_record
from .train import RECOVERY_SCHEDULE, check_recovery_time, expected_from, recover, training_sample, validation_score

log = logging.getLogger(__name__)

CALIBRATION_SAMPLES = 64  # one batch sets the initial ranges of the dry conversion
WATCH_SAMPLES = 512  # training samples QAT scores itself on before and after training, with their ranges
WEIGHT_BITS = (4, 8)  # kernel widths qat trains for; the converter writes a 4-bit fake-quantized kernel as INT4


@dataclass(frozen=True)
class PreparedQat:
    """The QAT graph of ``source`` at ``weight_bits`` (``model``, untrained, ranges empty, and its ``plan``),
    which a dry int8 conversion accepted: what :func:`qat`'s model check returns and the pass reuses."""

    source: object
    model: object
    plan: object
    weight_bits: int
    eight_bit_layers: tuple = ()


def prepared_qat(model, weight_bits: int = 8, samples=None, eight_bit_layers=()) -> PreparedQat:
    """:func:`~.qat_plan.prepare_qat`, then the dry int8 conversion on ranges from ``samples`` (None: none)."""
    rebuilt, plan = prepare_qat(model, weight_bits, eight_bit_layers)
    if samples is not None:
        check_int8_conversion(rebuilt, samples)
    return PreparedQat(model, rebuilt, plan, weight_bits, tuple(eight_bit_layers))


def _check_options(weight_bits, eight_bit_layers=(), recovery_time=None):
    check_recovery_time(recovery_time)
    if weight_bits not in WEIGHT_BITS:
        raise ValueError(f"weight_bits is one of {', '.join(map(str, WEIGHT_BITS))}")
    if isinstance(eight_bit_layers, str) or not all(isinstance(name, str) for name in eight_bit_layers):
        raise ValueError("eight_bit_layers is a list of layer names")


def _check_model(model, weight_bits=8, eight_bit_layers=()) -> PreparedQat | None:
    """The dry int8 conversion on ranges from random inputs, run by the pipeline before a recipe's first pass
    trains (the ranges' values do not matter to whether TFLite converts the graph, only the ops do)."""
    require_graph(model, "qat")
    if has_fake_quant(model):
        return None
    recurrent = recurrent_layers(model)
    if recurrent:
        raise UnsupportedModelError(
            f"qat cannot make an int8 graph of recurrent layer {recurrent[0]}: a Keras 3 RNN converts only at a "
            "fixed batch, as a WHILE loop TFLite's int8 quantizer does not take; use fp16 or dynamic-int8")
    shape = (CALIBRATION_SAMPLES, *model.inputs[0].shape[1:])
    prepared = prepared_qat(model, weight_bits, np.random.default_rng(0).standard_normal(shape).astype(np.float32),
                            eight_bit_layers)
    clear_ranges(prepared.model)  # ranges from random inputs: training starts from none, as from a new graph
    return prepared


@checked(options=_check_options, model=_check_model)
def qat(model, data, epochs: int = 2, learning_rate: float = 2e-4, weight_bits: int = 8, progress=None,
        prepared: PreparedQat | None = None, eight_bit_layers=(), *, distill: bool = True,
        recovery_time: float | None = None):
    """Rebuild ``model`` with int8 fake quantization (BatchNorm folded), check it converts, and fine-tune it.

    Args:
        model: a Sequential or Functional Keras model (left unchanged; a new model is returned).
        data: labeled :class:`edgesmith.data.Dataset` for fine-tuning.
        epochs: fine-tuning epochs (at least one).
        learning_rate: Adam learning rate. The ranges are first calibrated on 512 training samples, which are
            scored before and after training: when training leaves them scoring lower, it starts again
            from the untrained model at a tenth of the rate (``details["learning_rate_lowered_from"]``).
        weight_bits: 8, or 4 for Conv1D/Conv2D/Dense kernels (the int8 conversion then writes them as INT4;
            depthwise kernels stay 8-bit).
        prepared: what this pass's model check returned for ``model`` (not a recipe option): its graph is
            trained instead of building and converting another; None, or one for another model: built here.
        eight_bit_layers: with ``weight_bits=4``, layers whose kernels stay 8-bit (the most sensitive ones:
            what the pipeline's walk-back raises first when a 4-bit model misses its budget).
        distill: recover by distillation from ``model``, the float model (its soft labels, plus the labels).
        recovery_time: seconds each training run may take at most (None: ``epochs`` alone; see
            :func:`~edgesmith.converters.train.recover`, which keeps the best epoch on held-out training rows).

    Raises:
        UnsupportedModelError: the prepared int8 graph does not convert (checked before training).
    """
    require_graph(model, "qat")
    if has_fake_quant(model):
        return remember(model, stage_record("qat", model, details={"note": "already quantization-aware"}))
    _check_options(weight_bits, eight_bit_layers, recovery_time)
    if prepared is None or prepared.source is not model or (prepared.weight_bits, prepared.eight_bit_layers) != (
            weight_bits, tuple(eight_bit_layers)):
        samples = data.calibration(CALIBRATION_SAMPLES) if data is not None else None
        prepared = prepared_qat(model, weight_bits, samples, eight_bit_layers)
    rebuilt, plan = prepared.model, prepared.plan
    if plan.float_layers:
        log.warning("qat: left in float (edgesmith cannot quantize these layers): %s", ", ".join(sorted(plan.float_layers)))
    training = _train_watched(rebuilt, data, max(1, epochs), learning_rate, progress,
                              teacher=model if distill else None, time_limit=recovery_time)
    details = {"folded_batchnorm": sorted(plan.folded), "float_layers": sorted(plan.float_layers),
               "activation_quantizers": plan.quantizer_count, "weight_bits": weight_bits,
               **({"eight_bit_layers": sorted(eight_bit_layers)} if eight_bit_layers else {}), **training}
    return remember(rebuilt, stage_record("qat", rebuilt, details=details))


def _train_watched(model, data, epochs: int, learning_rate: float, progress, **recovery) -> dict:
    """Fine-tune ``model``; when that leaves it scoring lower on its training samples than before, start again
    from the untrained model at a tenth of the learning rate. The samples are trained on, so training that works
    raises their score (the wide CNN of benchmarks/compression.py lost 0.4-0.8 pt there at 2e-4, 8- and 4-bit,
    and 0.1-1.5 pt on the test split; at 2e-5 it gained on both).

    Quantization-aware training only has to recover rounding error: a model that gets worse was moved too far
    (keras.applications ResNet50 went from 86 % to 52 % at 2e-4 in one epoch, and to 91 % at 2e-5).
    """
    teacher = recovery.get("teacher")
    if data is None or not (data.labeled or teacher is not None):  # recover refuses, naming what is missing
        recover(model, data, epochs=epochs, learning_rate=learning_rate, stage="qat", **recovery)
    rows, samples = training_sample(data, WATCH_SAMPLES)
    expected = np.asarray(data.y_train)[rows] if data.labeled else expected_from(teacher, samples)

    def score() -> float:  # top-1 on the labels, or against the teacher (its worst output's SNR in dB)
        return round(validation_score(model, samples, expected), 4)

    calibrate_ranges(model, samples)
    untrained, before = model.get_weights(), score()
    report = recover(model, data, epochs=epochs, learning_rate=learning_rate, progress=progress, stage="qat",
                     schedule=RECOVERY_SCHEDULE, **recovery)
    after = score()
    if after >= before:
        return {"learning_rate": learning_rate, "train_accuracy_before": before, "train_accuracy_after": after,
                "recovery": report.as_dict()}
    lower = learning_rate / 10
    log.warning("qat: training at learning rate %g took %d training samples from %.1f%% to %.1f%%; training again "
                "from the start at %g", learning_rate, len(rows), 100 * before, 100 * after, lower)
    model.set_weights(untrained)
    report = recover(model, data, epochs=epochs, learning_rate=lower, progress=progress, stage="qat",
                     schedule=RECOVERY_SCHEDULE, **recovery)
    details = {"learning_rate": lower, "learning_rate_lowered_from": learning_rate, "train_accuracy_before": before,
               "first_train_accuracy_after": after, "train_accuracy_after": score(), "recovery": report.as_dict()}
    if details["train_accuracy_after"] < before:  # training did not help at either rate: undone
        model.set_weights(untrained)
        details.update(train_accuracy_after=before, training_undone=True)
    return details


# -- the dry conversion ----------------------------------------------------------------


def check_int8_conversion(model, samples) -> bytes:
    """Calibrate ``model``'s ranges on ``samples``, convert it to int8 as :func:`ptq` does for a QAT model,
    and return the .tflite; raise :class:`UnsupportedModelError` (one line, naming the layer) if TFLite refuses."""
    calibrate_ranges(model, samples)
    try:
        return to_tflite(model, "int8")
    except Exception as exc:  # TFLite's ConverterError, or a failure to trace the graph
        raise UnsupportedModelError(conversion_failure(str(exc), model)) from None


_LOCATION = re.compile(r'fused\["(?P<op>[^":]+):?", "(?P<path>[^"@]+)')


def conversion_failure(message: str, model) -> str:
    """One line from a TFLite converter error: the Keras layer (or keras.ops call) it happened at, and why."""
    lines = [line for line in message.splitlines() if line.strip()] or ["unknown converter error"]
    line = next((line for line in lines if "error:" in line), lines[0])
    reason = line.rsplit("error:", 1)[-1]
    reason = re.sub(r"\s+", " ", reason.rsplit("): ", 1)[-1] if "loc(" in reason else reason).strip()
    located = _LOCATION.search(line)
    where = ""
    if located:
        names = {call.layer.name for call in iter_calls(model, "qat")[0]}
        layer = _layer_named_in(located["path"], names)
        where = f" at layer {layer!r} ({located['op']})" if layer else f" at {located['path']}"
    return f"qat: the int8 conversion of {model.name} would fail{where}: {reason[:240]}; nothing was trained"


def _layer_named_in(path: str, names: set) -> str | None:
    """The Keras layer a TensorFlow op path (``model_1/layer_name_1/Op``) belongs to."""
    for part in reversed(path.split("/")[1:]):
        for candidate in (part, re.sub(r"_\d+$", "", part)):
            if candidate in names:
                return candidate
    return None
