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
import time
from dataclasses import asdict, dataclass, field
from typing import Protocol

import keras
import numpy as np

from .checks import check_choice
from .errors import ConversionError
from .graph import ends_in_softmax
from .inputs import call_model
from .kernels import all_layers
from .metrics import is_class_ids
from .verify import agreement, is_classifier_output, model_outputs, output_checks, predicted_classes


LEARNING_RATE_SCHEDULES = ("constant", "cosine", "warmup_cosine")
RECOVERY_SCHEDULE = "constant"  # what the passes recover with (measured: see learning_rate_schedule)
WARMUP_SHARE = 0.05  # of the optimizer steps, spent raising the learning rate linearly from 0 ("warmup_cosine")
BATCHNORM_BATCHES = 20  # training batches the BatchNorm statistics are re-estimated on after fine-tuning
TRAINING_BATCH_VALUES = 1 << 21  # input values in one forward/backward pass (see micro_batches)
VALIDATION_SHARE = 0.1  # of the training rows, held out to pick the best epoch (see validation_split)
VALIDATION_ROWS = (256, 2000)  # the fewest (when the data has 5x that) and the most rows held out
PATIENCE = 2  # epochs without a better validation score before training stops


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
    """Raise :class:`UnknownOptionError` listing the valid schedules if ``schedule`` is not one."""
    check_choice("schedule", schedule, LEARNING_RATE_SCHEDULES)


def check_recovery_time(recovery_time) -> None:
    """Raise :class:`ConversionError` unless ``recovery_time`` (a pass option, seconds) is None or positive."""
    if recovery_time is not None and not float(recovery_time) > 0:
        raise ConversionError(f"recovery_time is seconds of fine-tuning, above 0 (or None), got {recovery_time!r}")


def learning_rate_schedule(learning_rate: float, schedule: str, steps: int):
    """Adam's learning rate over ``steps`` optimizer steps: ``learning_rate`` throughout (``"constant"``),
    decaying from it to 0 (``"cosine"``), or rising linearly from 0 over the first :data:`WARMUP_SHARE` of
    the steps, then decaying (``"warmup_cosine"``).

    The passes recover at a constant rate (:data:`RECOVERY_SCHEDULE`), which recovered the most in
    benchmarks/recovery.py: a MobileNetV2 (alpha 0.35, MNIST as 32 px RGB, 87.8 %) lost 25 % of its channels
    and was fine-tuned 3 epochs at 1e-3 on 3,000 images; over two seeds, on the labels it scored 79.4 % at a
    constant rate, 72.8 % with cosine decay, 71.2 % with warm-up and cosine; distilled, 84.3 % constant and
    77.4 % with warm-up and cosine. A short recovery needs all the steps it has at the full rate.

    >>> rate = learning_rate_schedule(1e-3, "warmup_cosine", 100)
    >>> [round(float(rate(step)), 6) for step in (0, 1, 5, 100)]   # 5 steps up, 95 down
    [0.0, 0.0002, 0.001, 0.0]
    """
    check_schedule(schedule)
    if schedule == "constant" or not isinstance(learning_rate, (int, float)):
        return learning_rate  # constant, or already a keras LearningRateSchedule
    warmup = int(round(WARMUP_SHARE * steps)) if schedule == "warmup_cosine" else 0
    if not warmup:
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, steps))
    return keras.optimizers.schedules.CosineDecay(0.0, decay_steps=max(1, steps - warmup), warmup_target=learning_rate,
                                                  warmup_steps=warmup)


def loss_for(model):
    """Sparse categorical cross-entropy, on logits or on probabilities as ``model`` outputs."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=not ends_in_softmax(model))


@dataclass
class RecoveryReport:
    """What one fine-tuning run did, as a pass's record shows it (``details["recovery"]``)."""

    distilled: bool  # trained on a teacher's soft labels (and the labels, if any)
    on_targets: bool = False  # also on the data's targets of every output (several outputs, regression, segmentation)
    epochs: int = 0  # epochs run (one stopped by the time limit counts)
    best_epoch: int | None = None  # 1-based epoch whose weights the model kept (None: no validation rows)
    val_accuracy: list = field(default_factory=list)  # per epoch, held-out rows: top-1, or worst output SNR dB
    stopped: str | None = None  # "early" (no better score for PATIENCE epochs), "time" (time_limit), None
    validation_rows: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def fine_tune(model, data, **options):
    """Train ``model`` in place (see :func:`recover` for ``options``) and return it.

    >>> from edgesmith.converters.kernels import copy_model
    >>> tuned = copy_model(model)
    >>> fine_tune(tuned, data, epochs=1) is tuned
    True
    """
    recover(model, data, **options)
    return model


def recover(model, data, *, epochs: int = 1, learning_rate: float = 1e-3, progress=None, teacher=None,
            temperature: float = 4.0, label_weight: float = 0.1, features=(), batch_size: int | None = None,
            callbacks=(), stage: str = "train", schedule: str = "constant", time_limit: float | None = None,
            validation: float = VALIDATION_SHARE, patience: int = PATIENCE,
            start_from_epoch: int = 0) -> RecoveryReport:
    """Train ``model`` in place on ``data`` (see :func:`as_dataset`) for at most ``epochs`` and ``time_limit``
    seconds, keep its best epoch and say what happened.

    Without ``teacher``, on the labels. With one, on its soft labels (``keras.distillation``: softmax at
    ``temperature``, plus MSE between the ``features`` layer pairs), mixed at ``label_weight`` with the labels
    when ``data`` has them, or with the targets of every output (:func:`output_targets`). Adam at
    ``learning_rate`` (the peak, with ``schedule``); ``progress(stage, done, total)`` is called after every
    optimizer step (with ``time_limit``, ``total`` is the steps expected to fit in it).

    A ``validation`` share of the training rows (see :func:`validation_split`) is held out: after every epoch
    the BatchNorm statistics are re-estimated (:func:`refresh_batchnorm`) and the model is scored on those rows
    (top-1 against the labels, or against the teacher's top-1); after ``patience`` epochs without a better
    score training stops, and the best epoch's weights (all of them: BatchNorm statistics, QAT ranges) are
    restored (an epoch before ``start_from_epoch`` is never kept: prune's sparsity may still be rising).
    Weight constraints (pruning masks, shared clusters) hold on the restored weights.

    >>> from edgesmith.converters.kernels import copy_model
    >>> report = recover(copy_model(model), data, epochs=2, teacher=model, time_limit=600)
    >>> report.distilled, report.validation_rows, len(report.val_accuracy) == report.epochs <= 2
    (True, 256, True)
    """
    data = as_dataset(data)
    report = RecoveryReport(distilled=teacher is not None)
    if epochs <= 0:
        return report
    if data is None or not (data.labeled or teacher is not None):
        raise ConversionError(f"{stage} fine-tunes the model and needs labeled data (--data with classes)")
    train_rows, validation_rows = validation_split(len(data.x_train), validation)
    micro_batch, accumulation = micro_batches(data.x_train.shape[1:], batch_size or data.batch_size)
    targets, target_loss = (None, None) if teacher is None or data.labeled else output_targets(model, data, teacher)
    report.on_targets = targets is not None
    batches = TrainingBatches(data.x_train, data.y_train if targets is None else targets, micro_batch,
                              rows=train_rows)
    steps = len(batches) * epochs
    started = time.monotonic()
    with frozen(teacher):
        watch = _Watch(model, _validation_set(data, validation_rows, teacher), batches, time_limit, patience,
                       start_from_epoch)
        trainer = model if teacher is None else distiller(
            teacher, model, temperature, label_weight if data.labeled or targets is not None else 0.0, features)
        optimizer = keras.optimizers.Adam(learning_rate_schedule(learning_rate, schedule, steps),
                                          gradient_accumulation_steps=accumulation if accumulation > 1 else None)
        trainer.compile(optimizer=optimizer,
                        loss=target_loss or loss_for(model if teacher is None else trainer.student))
        reporters = [_Progress(progress, stage, steps, time_limit)] if progress else []
        trainer.fit(batches, epochs=epochs, verbose=0, callbacks=[*callbacks, *reporters, *watch.callbacks()])
    apply_constraints(model)
    if not len(validation_rows):
        refresh_batchnorm(model, batches)  # with validation rows, every epoch's end did, the kept one's included
    return watch.report(report, epochs, round(time.monotonic() - started, 2))


def validation_split(count: int, share: float = VALIDATION_SHARE, seed: int = 0) -> tuple:
    """``(training_rows, validation_rows)``, sorted row numbers of ``count`` training samples: ``share`` of them
    held out, at least :data:`VALIDATION_ROWS`[0] when there are five times as many (else a fifth), at most
    :data:`VALIDATION_ROWS`[1]; none below 50 samples or at ``share`` 0.

    >>> [len(rows) for rows in validation_split(3000)], [len(rows) for rows in validation_split(100_000)]
    ([2700, 300], [98000, 2000])
    >>> len(validation_split(40)[1]), len(validation_split(1000)[1])
    (0, 200)
    """
    fewest, most = VALIDATION_ROWS
    held = 0 if share <= 0 or count < 50 else int(min(most, max(round(share * count), min(fewest, count // 5))))
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[held:]), np.sort(order[:held])


def rows_of(samples, rows):
    """Rows ``rows`` of an array (a copy) or of :class:`edgesmith.samples.Samples` (a view, read when used)."""
    return samples.subset(rows) if hasattr(samples, "subset") else samples[rows]


def training_sample(data, count: int, seed: int = 0) -> tuple:
    """``(rows, samples)``: up to ``count`` training rows drawn at random (in order), and their samples.

    >>> from types import SimpleNamespace
    >>> training_sample(SimpleNamespace(x_train=np.arange(10) * 10), 3)
    (array([2, 4, 6]), array([20, 40, 60]))
    """
    rows = np.sort(np.random.default_rng(seed).permutation(len(data.x_train))[:count])
    return rows, rows_of(data.x_train, rows)


def _validation_set(data, rows, teacher) -> tuple:
    """``(samples, expected)`` of the held-out rows: their labels, or :func:`expected_from` ``teacher``."""
    samples = rows_of(data.x_train, rows)
    if not len(rows):
        return samples, None
    return samples, np.asarray(data.y_train)[rows] if data.labeled else expected_from(teacher, samples)


def expected_from(teacher, samples):
    """What a student should predict on ``samples`` with no labels: ``teacher``'s top-1 classes, or its outputs
    when they are not one [samples, classes] array (see :func:`validation_score`)."""
    outputs = model_outputs(teacher, samples)
    return outputs.argmax(axis=-1) if is_classifier_output(outputs) else outputs


def validation_score(model, samples, expected) -> float:
    """``model``'s top-1 agreement with ``expected`` classes, or, for expected outputs (not class ids), its worst
    output's SNR in dB against them: higher is better either way."""
    if isinstance(expected, np.ndarray) and expected.ndim == 1 and expected.dtype.kind in "iu":
        return agreement(predicted_classes(model, samples), expected)
    return min(check.snr_db for check in output_checks(expected, model_outputs(model, samples)))


def apply_constraints(model) -> None:
    """Project every constrained variable of ``model`` onto its constraint (pruning mask, shared clusters), as
    the optimizer does after each step: weights set from elsewhere (a restored epoch) keep them too."""
    for variable in model.weights:
        if getattr(variable, "constraint", None) is not None:
            variable.assign(variable.constraint(variable))


class _Watch(keras.callbacks.Callback):
    """The end of every epoch: re-estimated BatchNorm statistics, the validation score, early stopping with the
    best epoch restored (``keras.callbacks.EarlyStopping``); and the time limit, checked after every step."""

    def __init__(self, student, validation_set, batches, time_limit: float | None, patience: int,
                 start_from_epoch: int):
        super().__init__()
        self.student, (self.samples, self.expected), self.batches = student, validation_set, batches
        self.scores, self.epochs, self.time_limit, self.stopped_by_time = [], 0, time_limit, False
        self.started = None
        self.stopping = keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=patience,
                                                      restore_best_weights=True, start_from_epoch=start_from_epoch)

    def callbacks(self) -> list:
        return [self, self.stopping] if self.expected is not None else [self]

    def on_train_begin(self, logs=None):
        self.started = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if self.time_limit is not None and time.monotonic() - self.started > float(self.time_limit):
            self.model.stop_training = self.stopped_by_time = True  # self.model: what fit trains (a distiller)

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1
        if self.expected is not None:
            refresh_batchnorm(self.student, self.batches)
            logs["val_accuracy"] = validation_score(self.student, self.samples, self.expected)
            self.scores.append(round(logs["val_accuracy"], 4))

    def report(self, report: RecoveryReport, planned_epochs: int, seconds: float) -> RecoveryReport:
        report.epochs, report.val_accuracy, report.seconds = self.epochs, self.scores, seconds
        report.validation_rows = 0 if self.expected is None else len(self.samples)
        kept = self.stopping.best_weights is not None  # else the last epoch's (none came after start_from_epoch)
        report.best_epoch = (self.stopping.best_epoch + 1 if kept else self.epochs) if self.scores else None
        early = self.stopping.stopped_epoch and self.epochs < planned_epochs
        report.stopped = "time" if self.stopped_by_time else "early" if early else None
        return report


class _Progress(keras.callbacks.Callback):
    """``progress(stage, done, total)`` after every step; with a time limit, ``total`` is the steps expected
    to fit in it at the pace so far (at most the epochs' steps). The last call has ``done == total``."""

    def __init__(self, progress, stage: str, steps: int, time_limit: float | None):
        super().__init__()
        self.progress, self.stage, self.steps, self.time_limit = progress, stage, steps, time_limit
        self.done, self.started = 0, None

    def on_train_begin(self, logs=None):
        self.started = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        self.progress(self.stage, self.done, self.total())

    def total(self) -> int:
        if self.time_limit is None:
            return self.steps
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return int(min(self.steps, max(self.done, round(self.done * self.time_limit / elapsed))))

    def on_train_end(self, logs=None):
        if self.done and self.done < self.total():
            self.progress(self.stage, self.done, self.done)  # stopped early or by time: the bar ends full


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
    """A ``keras.distillation.Distiller`` training ``student`` on ``teacher``'s outputs and, at ``label_weight``,
    on the labels: class scores (seen as logits, see :func:`logits_view`) by their soft labels at
    ``temperature``, other outputs (a regression head, an image) by their mean squared error."""
    # An explicit KLDivergence instance: Keras 3.15 turns the default "kl_divergence" string into the plain
    # function, which skips LogitsDistillation's softmax and compares raw logits (the loss stays ~0).
    per_output = [keras.losses.KLDivergence() if _class_scores(output) else _ScaledSquaredError(temperature)
                  for output in student.outputs]
    losses = [keras.distillation.LogitsDistillation(temperature=temperature,
                                                    loss=tuple(per_output) if len(per_output) > 1 else per_output[0])]
    losses += [keras.distillation.FeatureDistillation(teacher_layer_name=t, student_layer_name=s)
               for t, s in features]
    return keras.distillation.Distiller(teacher=logits_view(teacher), student=logits_view(student),
                                        distillation_losses=losses, student_loss_weight=label_weight)


def _class_scores(output) -> bool:
    """A [batch, classes] output (a classifier head's scores)."""
    return len(output.shape) == 2 and (output.shape[-1] or 0) > 1


class _ScaledSquaredError(keras.losses.MeanSquaredError):
    """Mean squared error of outputs ``LogitsDistillation`` divided by the temperature, scaled back."""

    def __init__(self, temperature: float):
        super().__init__()
        self.scale = float(temperature) ** 2

    def call(self, y_true, y_pred):
        return super().call(y_true, y_pred) * self.scale


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
    """``model`` itself, or, if an output ends in softmax, a model sharing its layers whose softmax outputs are
    log-probabilities.

    ``LogitsDistillation`` divides logits by the temperature; ``softmax(log(p) / T) = softmax(z / T)``,
    so log-probabilities are exact stand-ins for logits.
    """
    softmax = [ends_in_softmax(model, index) for index in range(len(model.outputs))]
    if not any(softmax) and len(softmax) == 1:
        return model
    outputs = [_Log()(output) if is_softmax else output for output, is_softmax in zip(model.outputs, softmax)]
    # several outputs as a tuple: the distiller matches its student loss, its targets (batches give a tuple) and
    # the outputs by structure, and a list of losses becomes a tracked list that matches neither
    return keras.Model(model.inputs, tuple(outputs) if len(outputs) > 1 else outputs[0], name=f"{model.name}_logits")


def output_targets(model, data, teacher) -> tuple:
    """``(targets, losses)`` to train ``model``'s outputs on beside its ``teacher`` (whose outputs, in the same
    order, keep the names the data's targets use: QAT renames them): the data's training targets of every output,
    in that order (a tuple for several), each with its loss: cross-entropy for class ids (on the logits
    :func:`logits_view` gives), squared error for values shaped like the output. ``(None, None)`` when an output
    has no targets or none it can be trained on (an autoencoder's anomaly labels).
    """
    targets, chosen, losses = getattr(data, "targets", None) or {}, [], []
    names = getattr(teacher, "output_names", None) or []  # a Sequential has none: its targets are plain labels
    if len(names) != len(model.outputs) or not set(names) <= set(targets):
        return None, None
    for name, output in zip(names, model.outputs):
        train, shape = np.asarray(targets[name][0]), tuple(output.shape[1:])
        ids = is_class_ids(train, shape)
        if not (ids or train[0].size == int(np.prod(shape))):
            return None, None
        chosen.append(train if ids else train.reshape(-1, *shape))
        losses.append(keras.losses.SparseCategoricalCrossentropy(from_logits=True) if ids else
                      keras.losses.MeanSquaredError())
    return (tuple(chosen), tuple(losses)) if len(chosen) > 1 else (chosen[0], losses[0])


class TrainingBatches(keras.utils.PyDataset):
    """``(x, y)`` training batches (``x`` alone when ``y`` is None), in a new random order every epoch.

    ``x`` is anything indexable by an array of rows: a numpy array, or the
    :class:`edgesmith.samples.Samples` of a dataset, which reads and normalizes just those rows.
    ``rows``: the rows of ``x`` (and ``y``) trained on (default: all).

    >>> batches = TrainingBatches(np.zeros((10, 3)), np.arange(10), batch_size=4)
    >>> len(batches), batches[2][0].shape
    (3, (2, 3))
    """

    def __init__(self, x, y, batch_size: int, seed: int = 0, rows=None):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, int(batch_size)
        self.rows = np.arange(len(x)) if rows is None else np.asarray(rows, dtype=np.int64)
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(self.rows)

    def __len__(self) -> int:
        return -(-len(self.rows) // self.batch_size)  # the last batch may be smaller

    def __getitem__(self, index: int):
        rows = np.sort(self._order[index * self.batch_size:(index + 1) * self.batch_size])
        if self.y is None:
            return self.x[rows]
        return self.x[rows], (tuple(y[rows] for y in self.y) if isinstance(self.y, tuple) else np.asarray(self.y)[rows])

    def on_epoch_end(self) -> None:
        self._order = self._rng.permutation(self.rows)

