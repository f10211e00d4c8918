"""Knowledge distillation with ``keras.distillation``, and the training helpers the architecture passes share.

The teacher is, by default, the model before the previous architecture pass
(mobilenetize, lowrank, channel_prune remember it), or a ``.keras`` file. The
student is the incoming model, a ``.keras`` file, or a builder spec such as
``mobilenet_v2:alpha=0.35`` (see :mod:`edgesmith.converters.builders`), which
is how one distils across architectures. Without labels, the student learns
from the teacher's soft labels alone.

>>> small = mobilenetize(model, data)
>>> small = distill(small, data, epochs=3)        # teacher: `model`
>>> student = distill(model, data, student="mobilenet_v3_small", epochs=5)
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import keras
import numpy as np

from .checks import checked
from .errors import ConversionError
from .graph import ends_in_softmax
from .stage import recorded
from .train import TrainingBatches, check_schedule, learning_rate_schedule, steps_per_epoch
from .verify import predicted_classes

_TEACHERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def remember_teacher(model, teacher):
    """Record ``teacher`` (the model before a pass) as the default teacher of ``model``; returns ``model``."""
    _TEACHERS[model] = teacher
    return model


def teacher_of(model):
    """The model ``model`` was made from by an architecture pass, or None."""
    return _TEACHERS.get(model)


def _check_options(label_weight, schedule):
    if not 0.0 <= label_weight <= 1.0:
        raise ConversionError(f"label_weight must be in [0, 1], got {label_weight}")
    check_schedule(schedule)


@checked(options=_check_options)
def distill(model, data, *, teacher=None, student=None, temperature: float = 4.0, label_weight: float = 0.1,
            features=(), epochs: int = 3, batch_size: int | None = None, learning_rate: float = 1e-3,
            schedule: str = "cosine", progress=None):
    """Train a student to match a teacher's outputs (and optionally features).

    Args:
        model: the incoming model: the student, or (when ``student`` is given) the default teacher.
        data: training data: an ``edgesmith.data`` Dataset, ``(x, y)`` / ``(x,)`` arrays, an array of inputs,
            or a tf.data.Dataset of ``(x, y)`` batches. Without labels only the teacher's soft labels are used.
        teacher: a Keras model or ``.keras`` path (default: the model before the previous pass).
        student: a Keras model, ``.keras`` path or builder spec (default: ``model``).
        temperature: softmax temperature of the logits distillation (higher: softer targets).
        label_weight: weight of the label loss against the distillation loss, in [0, 1].
        features: ``[(teacher_layer, student_layer), ...]`` whose outputs are matched with MSE.
        epochs, batch_size, learning_rate: training (Adam; ``learning_rate`` is the peak).
        schedule: ``"cosine"`` (decay to 0 over the run) or ``"constant"`` learning rate.
        progress: optional ``progress(stage, done, total)`` callback (per epoch).
    """
    from .builders import load_student

    _check_options(label_weight, schedule)
    if student is None:
        teacher = _load(teacher) if teacher is not None else teacher_of(model)
        student = model
    else:
        teacher = _load(teacher) if teacher is not None else model
        student = load_student(student, model)
    if teacher is None:
        raise ConversionError("distill needs a teacher: give teacher=FILE.keras, a student=, or run it after "
                              "mobilenetize, lowrank or channel_prune (whose input is the default teacher)")
    x, y = arrays_of(data)
    training = _Training(epochs, batch_size or _batch_size(data), learning_rate, schedule)
    _fit_distiller(teacher, student, x, y, temperature, label_weight if y is not None else 0.0, features,
                   training, _per_epoch(progress, "distill", epochs))
    details = {"teacher": teacher.name, "temperature": temperature, "epochs": epochs, "labels_used": y is not None}
    return recorded("distill", remember_teacher(student, teacher), details, accuracy=accuracy(student, data))


def _load(model_or_path):
    from .load import load_model

    return load_model(model_or_path)


@dataclass
class _Training:
    epochs: int
    batch_size: int
    learning_rate: float
    schedule: str = "cosine"

    def optimizer(self, samples: int):
        steps = self.epochs * steps_per_epoch(samples, self.batch_size)
        return keras.optimizers.Adam(learning_rate_schedule(self.learning_rate, self.schedule, steps))


def _fit_distiller(teacher, student, x, y, temperature, label_weight, features, training: _Training, progress):
    # An explicit KLDivergence instance: Keras 3.15 turns the default "kl_divergence" string into the plain
    # function, which skips LogitsDistillation's softmax and compares raw logits (the loss stays ~0).
    losses = [keras.distillation.LogitsDistillation(temperature=temperature, loss=keras.losses.KLDivergence())]
    losses += [keras.distillation.FeatureDistillation(teacher_layer_name=t, student_layer_name=s)
               for t, s in features]
    was_trainable, teacher.trainable = teacher.trainable, False
    distiller = keras.distillation.Distiller(
        teacher=logits_view(teacher), student=logits_view(student), distillation_losses=losses,
        student_loss_weight=label_weight,
    )
    distiller.compile(optimizer=training.optimizer(len(x)),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callbacks = [keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: progress(epoch + 1))] if progress else []
    distiller.fit(TrainingBatches(x, y, training.batch_size), epochs=training.epochs, verbose=0, callbacks=callbacks)
    teacher.trainable = was_trainable


class _Log(keras.layers.Layer):
    def call(self, probabilities):
        return keras.ops.log(keras.ops.maximum(probabilities, 1e-7))


def logits_view(model) -> keras.Model:
    """``model`` itself, or, if it ends in softmax, a model sharing its layers that outputs log-probabilities.

    ``LogitsDistillation`` divides logits by the temperature; ``softmax(log(p) / T) = softmax(z / T)``,
    so log-probabilities are exact stand-ins for logits.
    """
    if not ends_in_softmax(model):
        return model
    return keras.Model(model.inputs, _Log()(model.outputs[0]), name=f"{model.name}_logits")



# -- data and training helpers ---------------------------------------------------------


def arrays_of(data, split: str = "train"):
    """``(x, y)`` numpy arrays from any data form the passes accept (``y`` None when unlabeled)."""
    if hasattr(data, "x_train"):  # edgesmith.data.Dataset
        return (data.x_train, data.y_train) if split == "train" else (data.x_val, data.y_val)
    if isinstance(data, np.ndarray):
        return data, None
    if isinstance(data, (tuple, list)):
        return np.asarray(data[0]), (np.asarray(data[1]) if len(data) > 1 and data[1] is not None else None)
    batches = [tuple(b) if isinstance(b, (tuple, list)) else (b,) for b in data]  # tf.data.Dataset of batches
    x = np.concatenate([np.asarray(b[0]) for b in batches])
    y = np.concatenate([np.asarray(b[1]) for b in batches]) if len(batches[0]) > 1 else None
    return x, y


def batches_of(data, batch_size: int = 32, split: str = "train"):
    """``(x, y)`` batches of ``data`` (see :func:`arrays_of`)."""
    x, y = arrays_of(data, split)
    for start in range(0, len(x), batch_size):
        yield x[start:start + batch_size], None if y is None else y[start:start + batch_size]


def _batch_size(data) -> int:
    return int(getattr(data, "batch_size", 32))


def loss_for(model):
    """Sparse categorical cross-entropy, on logits or on probabilities as ``model`` outputs."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=not ends_in_softmax(model))


def fine_tune(model, data, *, epochs: int = 1, teacher=None, learning_rate: float = 1e-3, schedule: str = "cosine",
              progress=None, stage: str = "fine_tune"):
    """Train ``model`` in place: on labels, or (unlabeled data) on ``teacher``'s soft labels."""
    from .train import fine_tune as train_on_labels

    x, y = arrays_of(data)
    if y is not None:
        return train_on_labels(model, _Arrays(x, y, _batch_size(data)), epochs, learning_rate, progress, stage=stage,
                               schedule=schedule)
    if teacher is None:
        raise ConversionError(f"{stage}: fine-tuning on unlabeled data needs a teacher")
    _fit_distiller(teacher, model, x, None, 4.0, 0.0, (), _Training(epochs, _batch_size(data), learning_rate, schedule),
                   _per_epoch(progress, stage, epochs))
    return model


class _Arrays:
    """Labeled arrays in the shape of an ``edgesmith.data`` Dataset (what ``train.fine_tune`` takes)."""

    labeled = True

    def __init__(self, x, y, batch_size):
        self.x_train, self.y_train, self.batch_size = x, y, batch_size


def accuracy(model, data, split: str = "val"):
    """Top-1 accuracy of ``model`` on ``data`` (its validation split for a Dataset), or None without labels."""
    x, y = arrays_of(data, split)
    if y is None:
        return None
    return float(np.mean(predicted_classes(model, x) == np.asarray(y).reshape(-1)))


def _per_epoch(progress, stage, epochs):
    return None if progress is None else (lambda done: progress(stage, done, epochs))
