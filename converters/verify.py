"""Measure the .tflite that was written, not the Keras model it came from.

>>> from edgesmith.converters import export, ptq, verify
>>> path = export(ptq(model, data, mode="int8"), data, "out/model.tflite")
>>> result = verify(path, data, keras_model=model, max_accuracy_drop=1.0)
>>> result.samples, result.top1_agreement > 0.95, result.accuracy_drop_pt <= 1.0
(359, True, True)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edgesmith.runtime import Model
from edgesmith.runtime.report_schema import Verification

from .errors import AccuracyDropError, ConversionError
from .inputs import call_model


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
    if not isinstance(model, bytes):
        return predicted_classes(model, data.x_val, batch_size)
    with tempfile.TemporaryDirectory(prefix="edgesmith-") as folder:
        path = Path(folder) / "model.tflite"
        path.write_bytes(model)
        return predicted_classes(path, data.x_val, batch_size)


def predicted_classes(model, samples, batch_size: int | None = None) -> np.ndarray:
    """Top-1 classes of a Keras model or a .tflite path on ``samples`` (an array or
    :class:`~edgesmith.samples.Samples`), batch by batch.

    A Keras model is called batch by batch rather than through ``model.predict``, which
    traces a new graph function for every model a pipeline measures (TensorFlow then
    warns about retracing); the outputs are the same.
    """
    predict = Model(model).predict if isinstance(model, (str, Path)) else lambda batch: call_model(model, batch)
    size = batch_size or eval_batch_size(samples.shape[1:])
    outputs = [np.asarray(predict(batch)).argmax(axis=-1) for batch in _batches(samples, size)]
    return np.concatenate(outputs) if outputs else np.zeros(0, np.int64)


def eval_batch_size(sample_shape) -> int:
    """Batches of about 1 M input values (256 small images, 6 at 224 x 224 x 3): a Keras model called eagerly
    keeps every activation of the batch, 3.5 GB for MobileNetV2 at 224 x 224 and batch 27 (1.4 GB at 6).

    >>> eval_batch_size((8, 8, 1)), eval_batch_size((224, 224, 3))
    (256, 6)
    """
    return int(max(1, min(256, (1 << 20) // max(1, int(np.prod(sample_shape))))))


def _batches(samples, size: int):
    return (samples[i : i + size] for i in range(0, len(samples), size))


def verify(path, data, keras_model=None, max_accuracy_drop: float | None = None,
           reference_accuracy=None) -> Verification:
    """Run the .tflite on the evaluation data; report accuracy and top-1 agreement with ``keras_model``.

    Args:
        path: the .tflite file to check.
        data: a labeled :class:`edgesmith.data.Dataset`.
        keras_model: the Keras model it was converted from (for agreement and keras_accuracy).
        max_accuracy_drop: allowed drop, in percentage points, below ``reference_accuracy``
            (default: the Keras model's accuracy); exceeding it raises :class:`AccuracyDropError`.
        reference_accuracy: the accuracy the drop is measured from (e.g. the original float model's).
    """
    if data is None or not data.labeled:
        raise ConversionError("verifying a .tflite needs labeled data (--data with classes)")
    predicted = predictions(path, data)
    result = Verification(samples=int(len(data.y_val)), tflite_accuracy=agreement(predicted, data.y_val))
    if keras_model is not None:
        reference = predictions(keras_model, data)
        result.keras_accuracy = agreement(reference, data.y_val)
        result.top1_agreement = agreement(reference, predicted)
    baseline = reference_accuracy if reference_accuracy is not None else result.keras_accuracy
    if baseline is not None:
        result.accuracy_drop_pt = round(100.0 * (baseline - result.tflite_accuracy), 4)
    check_drop(result, max_accuracy_drop, path)
    return result


def check_drop(result: Verification, max_accuracy_drop: float | None, path, report=None) -> None:
    """Raise :class:`AccuracyDropError` (carrying ``report``) when ``result``'s drop exceeds ``max_accuracy_drop``
    points."""
    drop = result.accuracy_drop_pt
    if max_accuracy_drop is not None and drop is not None and drop > max_accuracy_drop:
        raise AccuracyDropError(
            f"{path}: accuracy dropped {drop:.2f} pt (to {100 * result.tflite_accuracy:.2f}%), more than "
            f"the recipe's max_accuracy_drop of {max_accuracy_drop} pt; the artifacts are kept for inspection",
            report,
        )
