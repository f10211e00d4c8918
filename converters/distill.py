"""Knowledge distillation: fine-tuning on a teacher's soft labels (:func:`edgesmith.converters.train.fine_tune`).

The teacher is, by default, the model before the previous architecture pass
(mobilenetize, lowrank, channel_prune remember it), or a ``.keras`` file. The
student is the incoming model, a ``.keras`` file, or a builder spec such as
``mobilenet_v2:alpha=0.35`` (see :mod:`edgesmith.converters.builders`), which
is how one distils across architectures. Without labels, the student learns
from the teacher's soft labels alone.

>>> from edgesmith.converters import record_of
>>> from edgesmith.converters.mobilenetize import mobilenetize
>>> small = mobilenetize(model, data, min_macs=10_000)
>>> small = distill(small, data, epochs=3)        # teacher: `model`, the input of mobilenetize
>>> record_of(small).details["teacher"] == model.name
True
>>> student = distill(model, data, student="mobilenet_v3_small", epochs=5)  # doctest: +SKIP
"""

from __future__ import annotations

import weakref

from .checks import checked
from .errors import ConversionError
from .stage import recorded
from .train import as_dataset, check_recovery_time, check_schedule, recover
from .verify import accuracy

_TEACHERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def remember_teacher(model, teacher):
    """Record ``teacher`` (the model before a pass) as the default teacher of ``model``; returns ``model``."""
    _TEACHERS[model] = teacher
    return model


def teacher_of(model):
    """The model ``model`` was made from by an architecture pass, or None."""
    return _TEACHERS.get(model)


def _check_options(label_weight, schedule, recovery_time=None):
    check_recovery_time(recovery_time)
    if not 0.0 <= label_weight <= 1.0:
        raise ConversionError(f"label_weight must be in [0, 1], got {label_weight}")
    check_schedule(schedule)


def _check_model(model, student=None):
    """A student built from a spec is a classifier with one output: it cannot stand in for a model with others."""
    is_spec = student is not None and not hasattr(student, "outputs") and not str(student).endswith((".keras", ".h5"))
    if is_spec and (len(model.outputs) != 1 or len(model.outputs[0].shape) != 2):
        shapes = ", ".join(f"{name} {list(t.shape[1:])}" for name, t in zip(model.output_names, model.outputs))
        raise ConversionError(f"distill: a student built from {student!r} has one [classes] output, but the model "
                              f"outputs {shapes}; give student= a .keras model with the same outputs")


@checked(options=_check_options, model=_check_model)
def distill(model, data, *, teacher=None, student=None, temperature: float = 4.0, label_weight: float = 0.1,
            features=(), epochs: int = 3, batch_size: int | None = None, learning_rate: float = 1e-3,
            schedule: str = "cosine", progress=None, recovery_time: float | None = None):
    """Train a student to match a teacher's outputs (and optionally features).

    Args:
        model: the incoming model: the student, or (when ``student`` is given) the default teacher.
        data: training data: an ``edgesmith.data`` Dataset, ``(x, y)`` / ``(x,)`` arrays or an array of inputs
            (see :func:`~edgesmith.converters.train.as_dataset`). Without labels only the teacher's soft labels
            are used.
        teacher: a Keras model or ``.keras`` path (default: the model before the previous pass).
        student: a Keras model, ``.keras`` path or builder spec (default: ``model``).
        temperature: softmax temperature of the logits distillation (higher: softer targets).
        label_weight: weight of the label loss against the distillation loss, in [0, 1].
        features: ``[(teacher_layer, student_layer), ...]`` whose outputs are matched with MSE.
        epochs, batch_size, learning_rate: training (Adam; ``learning_rate`` is the peak).
        schedule: ``"cosine"`` (decay to 0 over the run), ``"warmup_cosine"`` (a linear rise first) or
            ``"constant"`` learning rate.
        progress: optional ``progress(stage, done, total)`` callback (per optimizer step).
        recovery_time: seconds the training may take at most (None: ``epochs`` alone); the best epoch on
            held-out training rows is kept (see :func:`~edgesmith.converters.train.recover`).
    """
    from .builders import load_student
    from .load import load_model

    _check_options(label_weight, schedule, recovery_time)
    default_teacher = teacher_of(model) if student is None else model
    teacher = load_model(teacher) if teacher is not None else default_teacher
    student = model if student is None else load_student(student, model)
    if teacher is None:
        raise ConversionError("distill needs a teacher: give teacher=FILE.keras, a student=, or run it after "
                              "mobilenetize, lowrank or channel_prune (whose input is the default teacher)")
    data = as_dataset(data)
    recovery = recover(student, data, epochs=epochs, learning_rate=learning_rate, progress=progress, teacher=teacher,
                       temperature=temperature, label_weight=label_weight, features=features, batch_size=batch_size,
                       stage="distill", schedule=schedule, time_limit=recovery_time)
    details = {"teacher": teacher.name, "temperature": temperature, "epochs": epochs, "labels_used": data.labeled,
               "recovery": recovery.as_dict()}
    return recorded("distill", remember_teacher(student, teacher), details, accuracy=accuracy(student, data))
