"""Task metrics of one model output against its targets: what a user's budget is read in, per output.

Pure numpy (no TensorFlow): the report readers use it too. ``targets`` are class ids (one per sample, or one per
position of a dense output such as a segmentation map), one-hot rows, or values shaped like the output
(regression: boxes, keypoints, images), or one 0/1 anomaly label per sample for an autoencoder (``auc`` of its
reconstruction error).

>>> outputs = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
>>> score("accuracy", np.array([1, 0, 0]), outputs), score("mse", outputs, outputs + 0.1)
(0.6667, 0.01)
>>> default_metric(np.array([1, 0, 0]), (2,)), default_metric(np.zeros((3, 4, 4)), (4, 4, 2))
('accuracy', 'miou')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Metric:
    """How a metric scores an output and how far a .tflite may fall behind the source model on it."""

    name: str
    task: str  # what an output scored this way does: classification, segmentation, regression, anomaly detection
    unit: str  # of the budget: "pt" (points of a 0..1 score), "dB", "%" (a rise over the source's), "" (absolute)
    default_budget: float | None  # None: the recipe's max_accuracy_drop (points)
    compute: Callable  # (targets, outputs as float64) -> the score, unrounded

    def worsening(self, source: float, tflite: float) -> float:
        """How much worse the .tflite scores than the source, in the budget's unit (negative: better).

        >>> round(METRICS["mse"].worsening(0.010, 0.012), 4), METRICS["accuracy"].worsening(0.90, 0.885)
        (20.0, 1.5)
        """
        if self.unit == "pt":
            return round(100.0 * (source - tflite), 4)
        if self.unit == "%":
            return round(100.0 * (tflite - source) / max(abs(source), 1e-12), 4)
        return round(source - tflite, 4)


def is_probability_rows(rows: np.ndarray) -> bool:
    """[samples, classes] rows that are probability distributions (non-negative, summing to 1): a softmax head's
    outputs, or soft / one-hot labels.

    >>> is_probability_rows(np.array([[0.2, 0.8], [1.0, 0.0]])), is_probability_rows(np.array([[0.4, 0.7]]))
    (True, False)
    """
    rows = np.asarray(rows)
    return (rows.ndim == 2 and rows.shape[1] > 1 and bool(np.all(rows >= 0))
            and bool(np.allclose(rows.sum(axis=1), 1.0, atol=1e-3)))


def is_class_ids(targets: np.ndarray, output_shape: tuple) -> bool:
    """Targets that name a class of the output's last axis: whole numbers one rank below the output (one per
    sample for a [classes] output, one per pixel for an [H, W, classes] map)."""
    targets = np.asarray(targets)
    whole = targets.dtype.kind in "iub" or (targets.dtype.kind == "f" and bool(np.all(targets == np.round(targets))))
    return whole and tuple(targets.shape[1:]) == tuple(output_shape[:-1]) and output_shape[-1] > 1


def is_anomaly_labels(targets: np.ndarray, output_shape: tuple) -> bool:
    """One 0/1 label per sample (1: anomalous) for an output of more than one value: an autoencoder's
    reconstruction, scored by its error against the input (see :func:`anomaly_scores`)."""
    targets = np.asarray(targets)
    return targets.ndim == 1 and int(np.prod(output_shape)) > 1 and bool(np.isin(targets, (0, 1)).all())


def reconstructs(output_shape: tuple, input_shape: tuple | None) -> bool:
    """An output shaped like the model's input: an autoencoder's reconstruction (a flat [784] one too, whose 0/1
    anomaly labels would otherwise read as class ids of 784 classes)."""
    return input_shape is not None and tuple(output_shape) == tuple(input_shape)


def default_metric(targets: np.ndarray, output_shape: tuple, input_shape: tuple | None = None) -> str:
    """accuracy for class ids of a [classes] output, miou for class ids of a dense output, auc for anomaly labels
    of a reconstruction (an output shaped like ``input_shape``, or any output the labels cannot be class ids of),
    mse otherwise.

    >>> default_metric(np.array([0, 1, 1]), (784,)), default_metric(np.array([0, 1, 1]), (784,), (784,))
    ('accuracy', 'auc')
    """
    if reconstructs(output_shape, input_shape) and is_anomaly_labels(targets, output_shape):
        return "auc"
    if is_class_ids(targets, output_shape):
        return "accuracy" if len(output_shape) == 1 else "miou"
    return "auc" if is_anomaly_labels(targets, output_shape) else "mse"


def anomaly_scores(outputs: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Per sample, the mean squared error of a reconstruction against its input: high for what the autoencoder
    did not learn (MLPerf Tiny's anomaly detection scores its autoencoder this way).

    >>> anomaly_scores(np.zeros((2, 3)), np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])).tolist()
    [0.0, 1.0]
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    return np.mean((outputs - np.asarray(inputs, np.float64).reshape(outputs.shape)) ** 2,
                   axis=tuple(range(1, outputs.ndim)))


def score(metric: str, targets, outputs) -> float:
    """``metric`` of ``outputs`` (one array, [samples, ...]) against ``targets``, to 4 significant digits (an mse of
    0.0009 to 4 places would judge a 10 % budget in steps of 11 %).

    >>> score("mse", np.zeros((2, 2)), np.full((2, 2), 0.03)), score("mse", np.zeros((2, 2)), np.full((2, 2), 0.031))
    (0.0009, 0.000961)
    """
    targets, outputs = np.asarray(targets), np.asarray(outputs, dtype=np.float64)
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of: {', '.join(METRICS)}")
    return float(f"{float(METRICS[metric].compute(targets, outputs)):.4g}")


def _classes(targets, outputs):
    """(true ids, predicted ids), flat: targets as ids (one-hot rows turned to ids) and the outputs' argmax."""
    ids = targets.argmax(-1) if targets.shape == outputs.shape else targets
    return ids.reshape(-1).astype(np.int64), outputs.argmax(-1).reshape(-1)


def _accuracy(targets, outputs) -> float:
    truth, predicted = _classes(targets, outputs)
    return float(np.mean(truth == predicted))


def _top5(targets, outputs) -> float:
    truth, _ = _classes(targets, outputs)
    best = np.argsort(outputs.reshape(len(truth), -1), axis=-1)[:, -5:]
    return float(np.mean(np.any(best == truth[:, None], axis=1)))


def _per_class(targets, outputs) -> tuple:
    """(true positives, false positives, false negatives) per class."""
    truth, predicted = _classes(targets, outputs)
    classes = outputs.shape[-1]
    hits = np.bincount(truth[truth == predicted], minlength=classes)
    return hits, np.bincount(predicted, minlength=classes) - hits, np.bincount(truth, minlength=classes) - hits


def _miou(targets, outputs) -> float:
    """Mean intersection over union of the classes present in the targets or the predictions."""
    hits, false_pos, false_neg = _per_class(targets, outputs)
    union = hits + false_pos + false_neg
    return float(np.mean(hits[union > 0] / union[union > 0]))


def _f1(targets, outputs) -> float:
    """Macro F1 over the classes present in the targets or the predictions."""
    hits, false_pos, false_neg = _per_class(targets, outputs)
    counted = (hits + false_pos + false_neg) > 0
    return float(np.mean(2 * hits[counted] / (2 * hits + false_pos + false_neg)[counted]))


def _mse(targets, outputs) -> float:
    return float(np.mean((outputs - targets.reshape(outputs.shape)) ** 2))


def _mae(targets, outputs) -> float:
    return float(np.mean(np.abs(outputs - targets.reshape(outputs.shape))))


def _psnr(targets, outputs) -> float:
    """10 log10(peak^2 / mse), the peak being the targets' range (1 for 0..1 images, 255 for pixels)."""
    peak = float(np.max(targets) - np.min(targets)) or 1.0
    return 10.0 * np.log10(peak**2 / max(_mse(targets, outputs), 1e-20))


def mean_cosine(targets, outputs) -> float:
    """The mean cosine similarity of ``outputs``' rows (one per sample) with ``targets``' (any shape per sample).

    >>> round(mean_cosine(np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[1.0, 0.0], [1.0, 1.0]])), 4)
    0.8536
    """
    rows_t, rows_o = (np.asarray(values, dtype=np.float64).reshape(len(values), -1) for values in (targets, outputs))
    norms = np.maximum(np.linalg.norm(rows_t, axis=1) * np.linalg.norm(rows_o, axis=1), 1e-12)
    return float(np.mean(np.sum(rows_t * rows_o, axis=1) / norms))


def _auc(targets, outputs) -> float:
    """Area under the ROC curve of per-sample scores (``outputs``, one per sample: see :func:`anomaly_scores`)
    against 0/1 labels: the chance that an anomalous sample scores above a normal one (ties count half).

    >>> round(_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])), 4)
    0.75
    """
    scores, positive = outputs.reshape(len(targets)), np.asarray(targets).astype(bool)
    values, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # 1-based ranks, ties averaged
    pos, neg = int(positive.sum()), int((~positive).sum())
    if not pos or not neg:
        raise ValueError("auc needs both normal (0) and anomalous (1) samples")
    return float((ranks[positive].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


METRICS = {metric.name: metric for metric in (
    Metric("accuracy", "classification", "pt", None, _accuracy), Metric("top5", "classification", "pt", None, _top5),
    Metric("f1", "classification", "pt", None, _f1), Metric("miou", "segmentation", "pt", None, _miou),
    Metric("psnr", "regression", "dB", 1.0, _psnr), Metric("cosine", "regression", "", 0.01, mean_cosine),
    Metric("mse", "regression", "%", 10.0, _mse), Metric("mae", "regression", "%", 10.0, _mae),
    Metric("auc", "anomaly detection", "", 0.01, _auc))}
