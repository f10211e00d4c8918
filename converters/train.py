"""The one fine-tuning loop of the passes (prune, cluster, qat, channel_prune, distill), fed batch by batch.

Training is on labels, or, given a teacher, on the teacher's soft labels
(distillation is fine-tuning with another loss). Weight constraints set by
earlier passes (pruning masks, cluster assignments) live on the variables, and
Keras applies them after every optimizer step, so any later training keeps
them. Data comes in the form every pass consumes, :class:`TrainingData` (what
:func:`as_dataset` makes of plain arrays), and is read through
:class:`TrainingBatches`: each step reads (and normalizes) one batch, so memory
does not grow with the dataset.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from typing import Protocol

import keras
import numpy as np

from .errors import ConversionError
from .graph import ends_in_softmax
from .inputs import call_model
from .kernels import all_layers


LEARNING_RATE_SCHEDULES = ("constant", "cosine")
BATCHNORM_BATCHES = 20  # training batches the BatchNorm statistics are re-estimated on after fine-tuning
TRAINING_BATCH_VALUES = 1 << 21  # input values in one forward/backward pass (see micro_batches)


class TrainingData(Protocol):
    """The data every pass consumes: an :class:`edgesmith.data.Dataset`, or :func:`as_dataset` of arrays.

    ``x_*`` are indexable by an array of rows (numpy arrays, or :class:`edgesmith.samples.Samples`, which
    read just those rows); ``y_*`` are class indices, or None when ``labeled`` is False.
    """

    x_train: object
    y_train: np.ndarray | None
    x_val: object
    y_val: np.ndarray | None
    batch_size: int
    labeled: bool


@dataclass
class ArrayData:
    """Arrays as :class:`TrainingData`: one split, trained on and evaluated on."""

    x_train: object
    y_train: np.ndarray | None
    batch_size: int = 32

    x_val = property(lambda self: self.x_train)
    y_val = property(lambda self: self.y_train)
    labeled = property(lambda self: self.y_train is not None)


def as_dataset(data) -> TrainingData | None:
    """``data`` as :class:`TrainingData`: a Dataset (or None) as it is, an array of inputs or ``(x,)`` /
    ``(x, y)`` arrays as :class:`ArrayData`."""
    if data is None or hasattr(data, "x_train"):
        return data
    x, y = (data[0], data[1] if len(data) > 1 else None) if isinstance(data, (tuple, list)) else (data, None)
    return ArrayData(x if hasattr(x, "shape") else np.asarray(x), None if y is None else np.asarray(y).reshape(-1))


def check_schedule(schedule: str) -> None:
    """Raise :class:`ConversionError` listing the valid schedules if ``schedule`` is not one."""
    if schedule not in LEARNING_RATE_SCHEDULES:
        raise ConversionError(f"unknown schedule {schedule!r}; valid: {', '.join(LEARNING_RATE_SCHEDULES)}")


def learning_rate_schedule(learning_rate: float, schedule: str, steps: int):
    """Adam's learning rate: ``learning_rate`` throughout (``"constant"``) or decaying from it to 0 over
    ``steps`` optimizer steps (``"cosine"``, the usual choice for recovering accuracy after a pass that
    changes the architecture)."""
    check_schedule(schedule)
    if schedule == "constant" or not isinstance(learning_rate, (int, float)):
        return learning_rate  # constant, or already a keras LearningRateSchedule
    return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, steps))


def loss_for(model):
    """Sparse categorical cross-entropy, on logits or on probabilities as ``model`` outputs."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=not ends_in_softmax(model))


def fine_tune(model, data, *, epochs: int = 1, learning_rate: float = 1e-3, progress=None, teacher=None,
              temperature: float = 4.0, label_weight: float = 0.1, features=(), batch_size: int | None = None,
              callbacks=(), stage: str = "train", schedule: str = "constant"):
    """Train ``model`` in place on ``data`` (see :func:`as_dataset`) for ``epochs``.

    Without ``teacher``, on the labels. With one, on its soft labels (``keras.distillation``: softmax at
    ``temperature``, plus MSE between the ``features`` layer pairs), mixed with the labels at
    ``label_weight`` when ``data`` has them. Adam at ``learning_rate`` (the peak, with ``schedule``);
    ``progress(stage, done, total)`` is called after every optimizer step.
    """
    if epochs <= 0:
        return model
    data = as_dataset(data)
    if data is None or not (data.labeled or teacher is not None):
        raise ConversionError(f"{stage} fine-tunes the model and needs labeled data (--data with classes)")
    micro_batch, accumulation = micro_batches(data.x_train.shape[1:], batch_size or data.batch_size)
    batches = TrainingBatches(data.x_train, data.y_train, micro_batch)
    steps = len(batches) * epochs
    with frozen(teacher):
        trainer = model if teacher is None else distiller(
            teacher, model, temperature, label_weight if data.labeled else 0.0, features)
        optimizer = keras.optimizers.Adam(learning_rate_schedule(learning_rate, schedule, steps),
                                          gradient_accumulation_steps=accumulation if accumulation > 1 else None)
        trainer.compile(optimizer=optimizer, loss=loss_for(model if teacher is None else trainer.student))
        done = itertools.count(1)  # optimizer steps so far, counted across epochs
        reporters = [keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: progress(stage, next(done), steps))] if progress else []
        trainer.fit(batches, epochs=epochs, verbose=0, callbacks=[*reporters, *callbacks])
    refresh_batchnorm(model, batches)
    return model


def micro_batches(sample_shape, batch_size: int) -> tuple[int, int]:
    """``(micro_batch, accumulation_steps)``: ``batch_size`` split into the fewest equal passes of at most
    :data:`TRAINING_BATCH_VALUES` input values, whose gradients are averaged into one optimizer step.

    Backpropagation keeps every activation of a pass: MobileNetV2 under fake quantization at 224 x 224 and
    batch 32 peaked at 6.5 GB. Small inputs keep the whole batch in one pass.

    >>> micro_batches((32, 32, 3), 32), micro_batches((224, 224, 3), 32)
    ((32, 1), (8, 4))
    """
    values = max(1, int(np.prod(sample_shape)))
    for steps in range(1, batch_size + 1):
        if batch_size % steps == 0 and (batch_size // steps) * values <= TRAINING_BATCH_VALUES:
            return batch_size // steps, steps
    return 1, batch_size


def refresh_batchnorm(model, batches, count: int = BATCHNORM_BATCHES) -> None:
    """Set the moving mean and variance of every trainable BatchNormalization in ``model`` to their average
    over the first ``count`` of ``batches`` (training-mode calls, no weight update).

    Fine-tuning moves the weights under the statistics, and the high momentum of keras.applications models
    (0.999) leaves them stale after a short run: a 50 %-pruned MobileNetV2 fine-tuned one epoch scored 11 %
    (chance) with the statistics training left, 48 % with re-estimated ones.
    """
    layers = [layer for layer in all_layers(model)
              if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]
    momenta = [layer.momentum for layer in layers]
    for index in range(min(count, len(batches)) if layers else 0):
        for layer in layers:
            layer.momentum = index / (index + 1)  # a running average: batch k weighs 1 / (k + 1)
        batch = batches[index]
        call_model(model, batch[0] if isinstance(batch, tuple) else batch, training=True)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum


def distiller(teacher, student, temperature: float, label_weight: float, features=()):
    """A ``keras.distillation.Distiller`` training ``student`` on ``teacher``'s soft labels (both seen as
    logits, see :func:`logits_view`) and, at ``label_weight``, on the labels."""
    # An explicit KLDivergence instance: Keras 3.15 turns the default "kl_divergence" string into the plain
    # function, which skips LogitsDistillation's softmax and compares raw logits (the loss stays ~0).
    losses = [keras.distillation.LogitsDistillation(temperature=temperature, loss=keras.losses.KLDivergence())]
    losses += [keras.distillation.FeatureDistillation(teacher_layer_name=t, student_layer_name=s)
               for t, s in features]
    return keras.distillation.Distiller(teacher=logits_view(teacher), student=logits_view(student),
                                        distillation_losses=losses, student_loss_weight=label_weight)


@contextlib.contextmanager
def frozen(model):
    """``model`` (None: nothing) untrainable within the block, then as before. Set on the model itself: a
    distiller freezes only a view of its teacher, and Keras ignores setting a flag to the value it has."""
    was_trainable = getattr(model, "trainable", None)
    if model is not None:
        model.trainable = False
    try:
        yield
    finally:
        if model is not None:
            model.trainable = was_trainable


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


class TrainingBatches(keras.utils.PyDataset):
    """``(x, y)`` training batches (``x`` alone when ``y`` is None), in a new random order every epoch.

    ``x`` is anything indexable by an array of rows: a numpy array, or the
    :class:`edgesmith.samples.Samples` of a dataset, which reads and normalizes just those rows.

    >>> batches = TrainingBatches(np.zeros((10, 3)), np.arange(10), batch_size=4)
    >>> len(batches), batches[2][0].shape
    (3, (2, 3))
    """

    def __init__(self, x, y, batch_size: int, seed: int = 0):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, int(batch_size)
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(len(x))

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)  # the last batch may be smaller

    def __getitem__(self, index: int):
        rows = np.sort(self._order[index * self.batch_size:(index + 1) * self.batch_size])
        return self.x[rows] if self.y is None else (self.x[rows], np.asarray(self.y)[rows])

    def on_epoch_end(self) -> None:
        self._order = self._rng.permutation(len(self.x))

