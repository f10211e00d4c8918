"""Measure the .tflite that was written, not the Keras model it came from.

>>> from edgesmith.converters import export, ptq, verify
>>> path = export(ptq(model, data, mode="int8"), data, "out/model.tflite")
>>> result = verify(path, data, keras_model=model, max_accuracy_drop=1.0)
>>> result.samples, result.top1_agreement > 0.95, result.accuracy_drop_pt <= 1.0, result.verdict
(359, True, True, 'holds')

The accuracy budget is judged on paired disagreements: the reference model and the .tflite run on the same
samples, so what counts is how many samples the reference got right and the .tflite got wrong (``lost``) and the
other way round (``gained``). The drop is ``(lost - gained) / n``, with a 95 % interval (:func:`drop_interval`).
A drop over the budget fails only when its whole interval is over it (``"misses"``); when the interval still
reaches the budget the split is too small to tell (``"unresolved"``), and :func:`samples_to_resolve` says about
how many samples would tell. The arithmetic (:func:`paired_drop`, :func:`drop_interval`,
:func:`budget_verdict`, :func:`samples_to_resolve`) and the lines a user reads (:func:`drop_line`,
:func:`verdict_line`) are pure: importing this module loads no TensorFlow, so the report readers use them too.
"""

from __future__ import annotations

import functools
import math
import tempfile
from pathlib import Path
from statistics import NormalDist

import numpy as np

from edgesmith.runtime import Model
from edgesmith.runtime.tensors import snr_db
from edgesmith.runtime.report_schema import OutputCheck, Verification

from .errors import AccuracyDropError, ConversionError
from .metrics import METRICS, anomaly_scores, default_metric, is_probability_rows, mean_cosine, score

Z95 = NormalDist().inv_cdf(0.975)  # 1.95996...: the two-sided 95 % normal quantile
UNBOUNDED_SHARE = 1e6  # budget_used of any worsening against a budget of 0 (finite: it goes to JSON and Optuna)
MOST_SAMPLES = 10**9  # samples_to_resolve gives up beyond this (a drop a hair over the budget)


def accuracy(model, data, batch_size: int | None = None) -> float | None:
    """Top-1 accuracy on ``data``'s evaluation split (None when unlabeled) of a Keras model, or of a .tflite
    (a path, or its bytes) run by edgesmith.runtime."""
    if data is None or not data.labeled:
        return None
    return agreement(predictions(model, data, batch_size), data.y_val)


def agreement(predicted, expected) -> float:
    """The share of ``predicted`` classes equal to ``expected``."""
    return float(np.mean(np.asarray(predicted) == np.asarray(expected)))


def predictions(model, data, batch_size: int | None = None) -> np.ndarray:
    """Top-1 classes on the evaluation split of a Keras model or a .tflite (path or bytes)."""
    return evaluation_outputs(model, data, batch_size).argmax(axis=-1)


def evaluation_outputs(model, data, batch_size: int | None = None) -> np.ndarray:
    """The outputs (float32, one row per sample) on the evaluation split of a Keras model or a .tflite (path or
    bytes)."""
    if not isinstance(model, bytes):
        return model_outputs(model, data.x_val, batch_size)
    with tempfile.TemporaryDirectory(prefix="edgesmith-") as folder:
        path = Path(folder) / "model.tflite"
        path.write_bytes(model)
        return model_outputs(path, data.x_val, batch_size)


def predicted_classes(model, samples, batch_size: int | None = None) -> np.ndarray:
    """Top-1 classes of a Keras model or a .tflite path on ``samples`` (an array or
    :class:`~edgesmith.samples.Samples`), batch by batch (each batch kept as its classes only)."""
    classes = [outputs.argmax(axis=-1) for outputs in _batch_outputs(model, samples, batch_size)]
    return np.concatenate(classes) if classes else np.zeros(0, np.int64)


def model_outputs(model, samples, batch_size: int | None = None):
    """The outputs of a Keras model or a .tflite path on ``samples``, batch by batch: one float32 array, or for a
    model with several outputs a list of them in the Keras model's output order."""
    batches = list(_batch_outputs(model, samples, batch_size))
    if not batches:
        return np.zeros((0, 1), np.float32)
    if isinstance(batches[0], list):
        return [np.concatenate(parts) for parts in zip(*batches)]
    return np.concatenate(batches)


def _batch_outputs(model, samples, batch_size):
    """Each batch's outputs (float32; a list for several outputs). A Keras model is called batch by batch rather
    than through ``model.predict``, which traces a new graph function for every model a pipeline measures
    (TensorFlow then warns about retracing); the outputs are the same."""
    if isinstance(model, (str, Path)):
        predict = Model(model).predict
    else:
        from .inputs import call_model  # Keras: imported here, so the report readers of this module load no TF
        predict = functools.partial(call_model, model)
    size = batch_size or eval_batch_size(samples.shape[1:])
    return (_as_float32(predict(batch)) for batch in _batches(samples, size))


def _as_float32(outputs):
    """One output as a float32 array, several (a list, tuple or dict: in sorted key order, as Keras flattens and
    exports a dict) as a list of them."""
    if isinstance(outputs, dict):
        outputs = [outputs[key] for key in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(output, dtype=np.float32) for output in outputs] if len(outputs) > 1 else \
            np.asarray(outputs[0], dtype=np.float32)
    return np.asarray(outputs, dtype=np.float32)


def output_checks(reference, produced, names=()) -> list:
    """An :class:`~edgesmith.runtime.report_schema.OutputCheck` per output of ``produced`` (an array, or a list
    of them) against ``reference`` (the same), named by ``names`` (default ``output_0``, ``output_1``, ...).

    Top-1 agreement is measured on outputs whose rows are probabilities (softmax heads).

    >>> heads = [np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[1.0, 2.0], [3.0, 4.0]])]
    >>> [(c.name, c.top1_agreement) for c in output_checks(heads, [heads[0] + 0.01, heads[1]])]
    [('output_0', 1.0), ('output_1', None)]
    """
    reference, produced = _as_list(reference), _as_list(produced)
    if [r.shape for r in reference] != [p.shape for p in produced]:
        raise ConversionError(f"the reference outputs have shapes {[list(r.shape) for r in reference]}, the .tflite's "
                              f"{[list(p.shape) for p in produced]}: give the source model's on the same split")
    names = list(names) or [f"output_{index}" for index in range(len(produced))]
    checks = []
    for name, expected, got in zip(names, reference, produced):
        snr, cosine = output_fidelity(expected, got)
        top1 = agreement(expected.argmax(-1), got.argmax(-1)) if is_probability_rows(expected) else None
        checks.append(OutputCheck(name, list(got.shape[1:]), snr, cosine, top1))
    return checks


def _as_list(outputs) -> list:
    return [np.asarray(output) for output in outputs] if isinstance(outputs, list) else [np.asarray(outputs)]


def is_classifier_output(outputs) -> bool:
    """True for one [samples, classes] array: outputs whose top-1 is a class and that labels can score."""
    return not isinstance(outputs, list) and np.ndim(outputs) == 2 and np.shape(outputs)[1] > 1


def output_fidelity(reference: np.ndarray, produced: np.ndarray) -> tuple:
    """``(SNR in dB, mean cosine similarity)`` of ``produced`` outputs against ``reference`` ones, row by row
    aligned: how closely a .tflite reproduces its source model, with or without labels.

    >>> reference = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> output_fidelity(reference, reference + 0.1)
    (20.9691, 0.9974)
    """
    reference, produced = np.asarray(reference, np.float64), np.asarray(produced, np.float64)
    snr = snr_db(float(np.sum(reference**2)), float(np.sum((produced - reference) ** 2)))
    return round(snr, 4), round(mean_cosine(reference, produced), 4)


def eval_batch_size(sample_shape) -> int:
    """Batches of about 1 M input values (256 small images, 6 at 224 x 224 x 3): a Keras model called eagerly
    keeps every activation of the batch, 3.5 GB for MobileNetV2 at 224 x 224 and batch 27 (1.4 GB at 6).

    >>> eval_batch_size((8, 8, 1)), eval_batch_size((224, 224, 3))
    (256, 6)
    """
    return int(max(1, min(256, (1 << 20) // max(1, int(np.prod(sample_shape))))))


def _batches(samples, size: int):
    return (samples[i : i + size] for i in range(0, len(samples), size))


# -- the budget verdict: pure arithmetic, no TensorFlow ---------------------------------------------------------


def paired_drop(source_correct, tflite_correct) -> tuple:
    """``(lost, gained, n)`` from two aligned per-sample correctness arrays: ``lost`` samples the reference got
    right and the .tflite wrong, ``gained`` the other way round, ``n`` samples in all.

    ``(lost - gained) / n`` is exactly the reference's accuracy minus the .tflite's.

    >>> paired_drop([True, True, False, True, False], [True, False, True, False, False])
    (2, 1, 5)
    >>> paired_drop([], [])
    (0, 0, 0)
    """
    source, tflite = np.asarray(source_correct, dtype=bool), np.asarray(tflite_correct, dtype=bool)
    if source.shape != tflite.shape:
        raise ValueError(f"paired_drop: {source.size} reference samples against {tflite.size} .tflite samples")
    return int(np.sum(source & ~tflite)), int(np.sum(~source & tflite)), int(source.size)


def drop_interval(lost, gained, n) -> tuple | None:
    """The 95 % interval ``(low, high)``, in points, of the paired accuracy drop ``(lost - gained) / n``; None
    when ``n`` is 0.

    Agresti and Min's adjusted Wald interval for the difference of matched proportions (Statistics in Medicine
    24, 2005): add 0.5 to each cell of the 2 x 2 table (2 samples in all), then
    ``d ± 1.96 sqrt((p_lost + p_gained - d²) / (n + 2))`` with ``p_lost = (lost + 0.5) / (n + 2)``,
    ``p_gained = (gained + 0.5) / (n + 2)`` and ``d = p_lost - p_gained``, clipped to ±100 pt. Unlike the plain
    Wald interval it does not shrink to a point when the two models never disagree, and it keeps close to
    95 % coverage down to a few dozen samples. The counts may be fractional (:func:`samples_to_resolve`
    scales them).

    >>> drop_interval(3, 0, 40)         # 3 of 40 lost: a 7.5 pt drop, but anywhere from -1.9 to 16.2 pt
    (-1.9369, 16.2226)
    >>> drop_interval(0, 0, 300)        # no disagreement in 300: still ± 0.65 pt
    (-0.649, 0.649)
    >>> drop_interval(120, 10, 1000)    # 11 pt, and clearly so
    (8.8449, 13.1112)
    >>> drop_interval(0, 0, 0) is None
    True
    """
    bounds = _interval(lost, gained, n)
    return None if bounds is None else (round(100 * bounds[0], 4), round(100 * bounds[1], 4))


def _interval(lost, gained, n) -> tuple | None:
    """:func:`drop_interval` as fractions, unrounded."""
    if n <= 0:
        return None
    total = n + 2
    p_lost, p_gained = (lost + 0.5) / total, (gained + 0.5) / total
    centre = p_lost - p_gained
    half = Z95 * math.sqrt(max(0.0, p_lost + p_gained - centre**2) / total)
    return max(-1.0, centre - half), min(1.0, centre + half)


def budget_verdict(verification: Verification, max_drop, min_snr_db=None) -> str | None:
    """``"holds"``, ``"misses"`` or ``"unresolved"`` for ``verification``'s drop against ``max_drop`` points;
    None without a budget or a drop.

    * ``"holds"``: the drop is at most the budget (the point estimate: its interval may still reach over it);
    * ``"misses"``: the interval's lower bound is over the budget: over it beyond noise. A drop without an
      interval (nothing to pair the .tflite with) misses whenever it is over the budget;
    * ``"unresolved"``: the drop is over the budget but its interval reaches it: too few samples to tell.

    Without a drop (unlabelled data), the output SNR against the source model decides: ``"holds"`` at
    ``min_snr_db`` or more, else ``"misses"``.

    >>> def verdict(n, lost, gained, budget):
    ...     checked = Verification(samples=n, tflite_accuracy=None, accuracy_drop_pt=100 * (lost - gained) / n,
    ...                            lost=lost, gained=gained, drop_ci95_pt=list(drop_interval(lost, gained, n)))
    ...     return budget_verdict(checked, budget)
    >>> verdict(40, 3, 0, 2.0), verdict(300, 0, 0, 1.0), verdict(1000, 120, 10, 1.0)
    ('unresolved', 'holds', 'misses')
    >>> budget_verdict(Verification(samples=300, tflite_accuracy=0.9, accuracy_drop_pt=1.5), 1.0)  # no interval
    'misses'
    >>> budget_verdict(Verification(samples=300, tflite_accuracy=0.9, accuracy_drop_pt=1.5), None) is None
    True
    """
    if verification.outputs:
        verdicts = {output_verdict(check, max_drop, min_snr_db)[0] for check in verification.outputs} - {None}
        return next((verdict for verdict in ("misses", "unresolved", "holds") if verdict in verdicts), None)
    drop, snr = verification.accuracy_drop_pt, verification.output_snr_db
    if drop is None:
        return None if min_snr_db is None or snr is None else ("holds" if snr >= min_snr_db else "misses")
    return None if max_drop is None else _judge(drop, max_drop, verification.drop_ci95_pt)


def _judge(drop: float, budget: float, interval) -> str:
    """``"holds"`` at most at ``budget``; over it, ``"misses"`` when ``interval`` (None: no interval) lies wholly
    over it, else ``"unresolved"``."""
    if drop <= budget:
        return "holds"
    return "misses" if interval is None or interval[0] > budget else "unresolved"


def output_verdict(check: OutputCheck, max_drop, min_snr_db=None) -> tuple:
    """``(verdict, budget)`` of one output: its metric's worsening against the metric's budget (the recipe's
    ``max_drop`` points for accuracy-like metrics) when it has targets, else its SNR against ``min_snr_db``. A
    paired accuracy drop over the budget whose interval still reaches it is ``"unresolved"``, as the run's is.

    >>> check = OutputCheck("box", [4], 30.0, 0.99, metric="mse", source_score=0.010, tflite_score=0.012)
    >>> output_verdict(check, 1.0), output_verdict(OutputCheck("mask", [8, 8, 1], 18.5, 0.99), 1.0, 20.0)
    (('misses', 10.0), ('misses', 20.0))
    >>> head = OutputCheck("digit", [10], 30.0, 0.99, metric="accuracy", source_score=0.95, tflite_score=0.925,
    ...                    drop_ci95_pt=list(drop_interval(3, 0, 40)))
    >>> output_verdict(head, 2.0)  # 3 of 40 lost: 2.5 pt, but the interval reaches the 2 pt budget
    ('unresolved', 2.0)
    """
    if check.metric is None:
        return (None, None) if min_snr_db is None else ("holds" if check.snr_db >= min_snr_db else "misses",
                                                         min_snr_db)
    metric, budget = METRICS[check.metric], check.budget  # the user's, when chosen with the metric
    if budget is None:
        budget = max_drop if metric.default_budget is None else metric.default_budget
    if budget is None:
        return None, None
    return _judge(metric.worsening(check.source_score, check.tflite_score), budget, check.drop_ci95_pt), budget


def budget_used(verification: Verification, min_snr_db=None) -> float | None:
    """After :func:`record_verdict`: how much of its budget a model verified output by output uses, its worst
    output's (1.0: at it; over 1: over it). An output's worsening in its metric's units over its budget; an output
    judged by SNR (and unlabelled data without outputs), ``min_snr_db`` over its SNR. None for one classifier's
    accuracy drop (points are its measure).

    >>> box = OutputCheck("box", [4], 30.0, 0.99, metric="mse", source_score=0.010, tflite_score=0.0105, budget=10.0)
    >>> budget_used(Verification(samples=9, tflite_accuracy=None, outputs=[box, OutputCheck("mask", [4], 25.0,
    ...                                                                                      0.99, budget=20.0)]))
    0.8
    """
    if not verification.outputs:
        if verification.accuracy_drop_pt is not None:  # one classifier: points are its measure
            return None
        return round((min_snr_db or 0.0) / max(verification.output_snr_db or 0.0, 1e-9), 4)
    shares = [_share(METRICS[c.metric].worsening(c.source_score, c.tflite_score), c.budget) if c.metric
              else _share(c.budget, c.snr_db) for c in verification.outputs if c.budget is not None]
    return round(max(shares), 4) if shares else None


def _share(used: float, allowed: float) -> float:
    return max(used, 0.0) / allowed if allowed > 0 else (0.0 if used <= 0 else UNBOUNDED_SHARE)


def samples_to_resolve(lost, gained, n, max_drop) -> int | None:
    """About how many evaluation samples would resolve a paired drop over ``max_drop`` points: the fewest at
    which the 95 % interval (:func:`drop_interval`) of the same drop, at the same disagreement rates
    ``lost / n`` and ``gained / n``, lies wholly over the budget. None when the drop is not over the budget,
    ``n`` is 0, or more than a billion samples would be needed.

    It assumes the rates observed are the true ones: a drop measured on few samples may well come out smaller
    on more, and the budget then holds instead.

    >>> samples_to_resolve(3, 0, 40, 2.0)     # 7.5 pt on 40 samples against a 2 pt budget
    103
    >>> samples_to_resolve(12, 4, 400, 1.0)   # 2.0 pt, 16 disagreements in 400
    1551
    >>> samples_to_resolve(0, 0, 300, 1.0) is None
    True
    """
    if n <= 0 or 100 * (lost - gained) / n <= max_drop:
        return None
    rate_lost, rate_gained, budget = lost / n, gained / n, max_drop / 100

    def resolved(size: int) -> bool:
        return _interval(rate_lost * size, rate_gained * size, size)[0] > budget

    low, high = 1, max(2, n)
    while not resolved(high):  # the lower bound rises towards the drop as the interval narrows
        low, high = high, high * 2
        if high > MOST_SAMPLES:
            return None
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if resolved(middle) else (middle, high)
    return high


def record_verdict(verification: Verification, max_drop, min_snr_db=None) -> str | None:
    """Set ``verification.verdict`` and ``samples_needed`` against the budget ``max_drop`` points (None: no
    budget) and return the verdict; raises nothing (:func:`check_drop` does).

    >>> checked = Verification(samples=40, tflite_accuracy=0.925, accuracy_drop_pt=7.5, lost=3, gained=0,
    ...                        drop_ci95_pt=list(drop_interval(3, 0, 40)))
    >>> record_verdict(checked, 2.0), checked.samples_needed
    ('unresolved', 103)
    """
    verification.verdict = budget_verdict(verification, max_drop, min_snr_db)
    for check in verification.outputs or ():
        check.verdict, check.budget = output_verdict(check, max_drop, min_snr_db)
    unresolved = verification.verdict == "unresolved"
    verification.samples_needed = _samples_needed(verification, max_drop) if unresolved else None
    return verification.verdict


def _samples_needed(verification: Verification, max_drop) -> int | None:
    """:func:`samples_to_resolve` for ``verification`` (None when its drop is not paired)."""
    lost, gained, n = verification.lost, verification.gained, verification.samples
    return None if lost is None or gained is None or not n else samples_to_resolve(lost, gained, n, max_drop)


def describe_drop(verification: Verification) -> str | None:
    """The drop with its evidence: points, 95 % interval, samples lost and gained; None when there is no drop.

    >>> describe_drop(Verification(samples=40, tflite_accuracy=0.925, accuracy_drop_pt=7.5, lost=3, gained=0,
    ...                            drop_ci95_pt=[-1.9369, 16.2226]))
    'accuracy drop 7.50 pt (95 % interval -1.9..16.2 pt, 3 of 40 samples lost, 0 gained)'
    >>> describe_drop(Verification(samples=300, tflite_accuracy=0.9, accuracy_drop_pt=0.5))
    'accuracy drop 0.50 pt (on 300 samples; no interval: not paired with its reference)'
    """
    drop, interval = verification.accuracy_drop_pt, verification.drop_ci95_pt
    if drop is None:
        return None
    if interval is None or verification.lost is None:
        return (f"accuracy drop {drop:.2f} pt (on {verification.samples:,} samples; no interval: not paired with its "
                "reference)")
    return (f"accuracy drop {drop:.2f} pt (95 % interval {interval[0]:.1f}..{interval[1]:.1f} pt, "
            f"{verification.lost:,} of {verification.samples:,} samples lost, {verification.gained:,} gained)")


def drop_line(verification: Verification, max_drop=None) -> str | None:
    """:func:`describe_drop` followed by the verdict against ``max_drop`` points (:func:`budget_verdict`, the
    verdict :func:`check_drop` records); None when there is no drop.

    >>> checked = Verification(samples=1000, tflite_accuracy=0.8, accuracy_drop_pt=11.0, lost=120, gained=10,
    ...                        drop_ci95_pt=list(drop_interval(120, 10, 1000)))
    >>> drop_line(checked, 1.0)
    'accuracy drop 11.00 pt (95 % interval 8.8..13.1 pt, 120 of 1,000 samples lost, 10 gained): over the 1.0 pt budget beyond noise'
    >>> drop_line(checked)
    'accuracy drop 11.00 pt (95 % interval 8.8..13.1 pt, 120 of 1,000 samples lost, 10 gained)'
    """
    head, verdict = describe_drop(verification), budget_verdict(verification, max_drop)
    if head is None or verdict is None:
        return head
    if verdict == "unresolved":
        needed = _samples_needed(verification, max_drop)
        more = f"; about {needed:,} would" if needed else ""
        return (f"{head} cannot be resolved against the {max_drop} pt budget on {verification.samples:,} "
                f"samples{more}")
    if verdict == "holds":
        return f"{head}: within the {max_drop} pt budget"
    beyond = " beyond noise" if verification.drop_ci95_pt is not None else ""
    return f"{head}: over the {max_drop} pt budget{beyond}"


def output_line(check: OutputCheck) -> str:
    """One output against the source model's and, with targets, against its budget, as a user reads it.

    >>> output_line(OutputCheck("box", [4], 30.0, 0.99, metric="mse", source_score=0.010, tflite_score=0.012,
    ...                         verdict="misses", budget=10.0))
    "output box [4]: SNR 30.0 dB, cosine 0.9900; mse 0.012 against the source model's 0.01 (20 % worse; budget 10 %): misses"
    """
    fidelity = f"output {check.name} {check.shape}: SNR {check.snr_db:.1f} dB, cosine {check.cosine:.4f}" + (
        "" if check.top1_agreement is None else f", top-1 agreement {100 * check.top1_agreement:.1f}%")
    if check.metric is None:
        return fidelity + (f" (minimum {check.budget:g} dB): {check.verdict}" if check.verdict else "")
    metric = METRICS[check.metric]
    unit = f" {metric.unit}" if metric.unit else ""
    worse = metric.worsening(check.source_score, check.tflite_score)
    interval = "" if check.drop_ci95_pt is None else (
        f", 95 % interval {check.drop_ci95_pt[0]:.1f}..{check.drop_ci95_pt[1]:.1f} pt")
    budget = f"; budget {check.budget:g}{unit}): {check.verdict}" if check.verdict else ")"
    return (f"{fidelity}; {check.metric} {check.tflite_score:g} against the source model's {check.source_score:g} "
            f"({worse:g}{unit} worse{interval}{budget}")


def verdict_line(verification: Verification, max_drop) -> str | None:
    """The one line to tell a user when the evaluation split is too small to resolve the budget (verdict
    ``"unresolved"``); None for any other verdict (``"misses"`` raises in :func:`check_drop`, ``"holds"`` needs
    no word).

    >>> checked = Verification(samples=40, tflite_accuracy=0.925, accuracy_drop_pt=7.5, lost=3, gained=0,
    ...                        drop_ci95_pt=list(drop_interval(3, 0, 40)))
    >>> verdict_line(checked, 2.0)
    'accuracy drop 7.50 pt (95 % interval -1.9..16.2 pt, 3 of 40 samples lost, 0 gained) cannot be resolved against the 2.0 pt budget on 40 samples; about 103 would'
    >>> verdict_line(checked, 10.0) is None   # holds
    True
    """
    return drop_line(verification, max_drop) if budget_verdict(verification, max_drop) == "unresolved" else None


# -- verification ---------------------------------------------------------------------------------------------


def verify(path, data, keras_model=None, max_accuracy_drop: float | None = None,
           reference_accuracy=None, reference_predictions=None, reference_outputs=None,
           min_snr_db: float | None = None, output_names=()) -> Verification:
    """Run the .tflite on the evaluation data; report its accuracy, its top-1 agreement with ``keras_model``, and
    the accuracy drop with its 95 % interval and verdict.

    The drop is paired with ``reference_predictions`` when given, else with ``keras_model``'s predictions (see
    :class:`~edgesmith.runtime.report_schema.Verification`); ``paired_with`` records which.

    Args:
        path: the .tflite file to check.
        data: a labeled :class:`edgesmith.data.Dataset`.
        keras_model: the Keras model it was converted from (for agreement and keras_accuracy).
        max_accuracy_drop: allowed drop, in percentage points; a drop over it beyond noise raises
            :class:`AccuracyDropError` (:func:`check_drop`).
        reference_accuracy: the accuracy the drop is measured from (e.g. the original float model's) when
            ``reference_predictions`` is not given; the drop then has no interval (unless ``keras_model`` scores
            exactly that), and is judged as a plain number against the budget. Give the source model's
            ``reference_predictions`` instead, as the pipeline does.
        reference_predictions: the source model's top-1 classes on ``data``'s evaluation split (an int array
            aligned with ``data.y_val``): the drop is paired with them, and ``reference_accuracy`` is not used.
        reference_outputs: the source model's outputs on the evaluation split: the .tflite's output SNR, cosine
            and top-1 agreement are measured against them (and its drop paired with their top-1 classes). On
            unlabelled data they are the whole verification, judged against ``min_snr_db``.
        min_snr_db: on unlabelled data, the lowest output SNR the .tflite may have (:func:`check_drop`).
        output_names: the outputs' names, for a model whose outputs are checked one by one (default: the Keras
            model's, else ``output_0``, ``output_1``, ...).
    """
    if data is None:
        raise ConversionError("verifying a .tflite needs data (--data)")
    if len(data.x_val) == 0:
        raise ConversionError("verifying a .tflite needs evaluation samples: the evaluation split is empty")
    if not data.labeled and reference_outputs is None:
        raise ConversionError("verifying a .tflite on unlabelled data needs the source model's outputs to compare")
    produced = evaluation_outputs(path, data)
    result = Verification(samples=int(len(_as_list(produced)[0])), tflite_accuracy=None)
    if getattr(data, "targets", None) or not is_classifier_output(produced):
        if data.labeled:
            raise ConversionError("labels score one [samples, classes] output; verify a model with other outputs "
                                  "against targets per output, or on unlabelled data (by its outputs' fidelity)")
        _verify_outputs(result, reference_outputs, produced, output_names or getattr(keras_model, "output_names", ()))
        _score_targets(result.outputs, reference_outputs, produced, data)
        if max_accuracy_drop is None and min_snr_db is None:  # no budget given: verdicts only, the caller judges
            record_verdict(result, None)  # (the pipeline, after its walk back; a miss here would skip it)
        else:
            check_drop(result, max_accuracy_drop, path, min_snr_db=min_snr_db)
        return result
    predicted = produced.argmax(axis=-1)
    if reference_outputs is not None:
        reference = _aligned(reference_outputs, produced)
        result.output_snr_db, result.output_cosine = output_fidelity(reference, produced)
        result.source_top1_agreement = agreement(reference.argmax(axis=-1), predicted)
        reference_predictions = reference.argmax(axis=-1)
    keras_predicted = None if keras_model is None else predictions(keras_model, data)
    if keras_predicted is not None:
        result.top1_agreement = agreement(keras_predicted, predicted)
    if data.labeled:
        _verify_labelled(result, data, keras_predicted, predicted, reference_accuracy, reference_predictions)
    check_drop(result, max_accuracy_drop, path, min_snr_db=min_snr_db)
    return result


def _score_targets(checks: list, reference, produced, data) -> None:
    """Each output that has targets in ``data``: its metric (as ``data.metrics`` chose, else the default for its
    targets) for the source and the .tflite."""
    targets, chosen, budgets = (getattr(data, key, {}) for key in ("targets", "metrics", "budgets"))
    for check, expected, got in zip(checks, _as_list(reference), _as_list(produced)):
        if check.name in targets:
            truth = np.asarray(targets[check.name][1])
            check.metric = chosen.get(check.name) or default_metric(truth, tuple(got.shape[1:]), data.x_val.shape[1:])
            check.budget = budgets.get(check.name)
            if check.metric == "auc":  # scored on each sample's reconstruction error
                expected, got = (_errors_against_inputs(outputs, data.x_val) for outputs in (expected, got))
            check.source_score = score(check.metric, truth, expected)
            check.tflite_score = score(check.metric, truth, got)
            check.change = round(check.tflite_score - check.source_score, 4)
            if check.metric == "accuracy" and truth.ndim == 1:  # one class per sample: the drop pairs up
                interval = drop_interval(*paired_drop(expected.argmax(-1) == truth, got.argmax(-1) == truth))
                check.drop_ci95_pt = None if interval is None else list(interval)


def _errors_against_inputs(outputs: np.ndarray, samples) -> np.ndarray:
    """:func:`~edgesmith.converters.metrics.anomaly_scores` of ``outputs``, reading the inputs batch by batch."""
    size = eval_batch_size(samples.shape[1:])
    return np.concatenate([anomaly_scores(rows, inputs)
                           for rows, inputs in zip(_batches(outputs, size), _batches(samples, size))])


def _verify_outputs(result: Verification, reference, produced, names) -> None:
    """Each output's fidelity to the source model's; the verdict reads the worst output's SNR."""
    result.outputs = output_checks(reference, produced, names)
    result.output_snr_db = min(check.snr_db for check in result.outputs)
    result.output_cosine = min(check.cosine for check in result.outputs)


def _verify_labelled(result: Verification, data, keras_predicted, predicted, reference_accuracy,
                     reference_predictions) -> None:
    """Accuracies and the paired drop of a .tflite whose top-1 classes are ``predicted`` (its Keras model's:
    ``keras_predicted``)."""
    labels = np.asarray(data.y_val)
    source = None if reference_predictions is None else _aligned(reference_predictions, labels)
    result.tflite_accuracy = agreement(predicted, labels)
    if keras_predicted is not None:
        result.keras_accuracy = agreement(keras_predicted, labels)
    if source is not None:
        _pair(result, "source", source == labels, predicted == labels)
    elif keras_predicted is not None:
        _pair(result, "keras", keras_predicted == labels, predicted == labels, reference_accuracy)
    elif reference_accuracy is not None:
        result.accuracy_drop_pt = round(100.0 * (reference_accuracy - result.tflite_accuracy), 4)


def _aligned(reference, produced: np.ndarray) -> np.ndarray:
    reference = np.asarray(reference)
    if reference.shape != produced.shape:
        raise ConversionError(f"the reference holds {list(reference.shape)} values for {list(produced.shape)} "
                              "of the .tflite: give the source model's on the same evaluation split")
    return reference


def _pair(result: Verification, paired_with: str, reference_correct, tflite_correct,
          reference_accuracy=None) -> None:
    """Set ``result``'s pairing, lost, gained, drop and interval. A separate ``reference_accuracy`` sets the drop;
    unless it equals the paired one, the drop then has no interval: the gap between two accuracies measured on
    different models is noise of its own, which the pairs do not bound."""
    result.paired_with = paired_with
    result.lost, result.gained, n = paired_drop(reference_correct, tflite_correct)
    paired = 100.0 * (result.lost - result.gained) / n
    drop = paired if reference_accuracy is None else 100.0 * (reference_accuracy - result.tflite_accuracy)
    result.accuracy_drop_pt = round(drop, 4)
    if abs(drop - paired) < 1e-9:  # a reference of its own is a second noisy accuracy: no paired interval then
        result.drop_ci95_pt = [round(bound, 4) for bound in drop_interval(result.lost, result.gained, n)]


def check_drop(result: Verification, max_accuracy_drop: float | None, path, report=None, min_snr_db=None) -> None:
    """Record ``result``'s verdict against ``max_accuracy_drop`` points (:func:`record_verdict`) and raise
    :class:`AccuracyDropError` (carrying ``report``) only when it ``"misses"``: over the budget beyond noise.
    An ``"unresolved"`` drop returns normally (:func:`verdict_line` is the line to show the user).

    >>> checked = Verification(samples=1000, tflite_accuracy=0.8, accuracy_drop_pt=11.0, lost=120, gained=10,
    ...                        drop_ci95_pt=list(drop_interval(120, 10, 1000)))
    >>> check_drop(checked, 15.0, "out/model.tflite"), checked.verdict
    (None, 'holds')
    >>> try:
    ...     check_drop(checked, 1.0, "out/model.tflite")
    ... except AccuracyDropError as error:
    ...     print(error)
    out/model.tflite: accuracy drop 11.00 pt (95 % interval 8.8..13.1 pt, 120 of 1,000 samples lost, 10 gained): over the 1.0 pt budget beyond noise (recipe max_accuracy_drop); the artifacts are kept for inspection
    """
    if record_verdict(result, max_accuracy_drop, min_snr_db) != "misses":
        return
    missed = [check for check in result.outputs or () if check.verdict == "misses"]
    if missed:
        raise AccuracyDropError(f"{path}: {output_line(missed[0])}; the artifacts are kept for inspection", report)
    if result.accuracy_drop_pt is None:
        raise AccuracyDropError(f"{path}: output SNR {result.output_snr_db:.1f} dB against the source model, below "
                                f"the {min_snr_db:g} dB minimum (--min-snr); the artifacts are kept for inspection",
                                report)
    raise AccuracyDropError(f"{path}: {drop_line(result, max_accuracy_drop)} (recipe max_accuracy_drop); the "
                            "artifacts are kept for inspection", report)
