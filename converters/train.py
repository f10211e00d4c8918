"""Fine-tuning shared by the training passes (prune, cluster, qat), fed batch by batch.

Weight constraints set by earlier passes (pruning masks, cluster assignments)
live on the variables, and Keras applies them after every optimizer step, so
any later training keeps them. Training reads its data through
:class:`TrainingBatches`: each step reads (and normalizes) one batch, so memory
does not grow with the dataset.
"""

from __future__ import annotations

import keras
import numpy as np

from .errors import ConversionError
from .graph import ends_in_softmax


SCHEDULES = ("constant", "cosine")


def check_schedule(schedule: str) -> None:
    """Raise :class:`ConversionError` listing the valid schedules if ``schedule`` is not one."""
    if schedule not in SCHEDULES:
        raise ConversionError(f"unknown schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")


def learning_rate_schedule(learning_rate: float, schedule: str, steps: int):
    """Adam's learning rate: ``learning_rate`` throughout (``"constant"``) or decaying from it to 0 over
    ``steps`` optimizer steps (``"cosine"``, the usual choice for recovering accuracy after a pass that
    changes the architecture)."""
    check_schedule(schedule)
    if schedule == "constant" or not isinstance(learning_rate, (int, float)):
        return learning_rate  # constant, or already a keras LearningRateSchedule
    return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, steps))


def fine_tune(model, data, epochs: int, learning_rate: float, progress=None, callbacks=(), stage: str = "train",
              schedule: str = "constant"):
    """Train ``model`` in place on ``data`` for ``epochs``, reporting ``progress(stage, done, total)`` per batch."""
    if epochs <= 0:
        return model
    if data is None or not data.labeled:
        raise ConversionError(f"{stage} fine-tunes the model and needs labeled data (--data with classes)")
    batches = TrainingBatches(data.x_train, data.y_train, data.batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate_schedule(learning_rate, schedule, len(batches) * epochs)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not ends_in_softmax(model)),
    )
    reporters = [_progress_callback(progress, stage, len(batches) * epochs)] if progress else []
    model.fit(batches, epochs=epochs, verbose=0, callbacks=[*reporters, *callbacks])
    return model


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
        return steps_per_epoch(len(self.x), self.batch_size)

    def __getitem__(self, index: int):
        rows = np.sort(self._order[index * self.batch_size:(index + 1) * self.batch_size])
        return self.x[rows] if self.y is None else (self.x[rows], np.asarray(self.y)[rows])

    def on_epoch_end(self) -> None:
        self._order = self._rng.permutation(len(self.x))


def steps_per_epoch(samples: int, batch_size: int) -> int:
    """Optimizer steps in one pass over ``samples`` (the last batch may be smaller)."""
    return -(-int(samples) // int(batch_size))



def _progress_callback(progress, stage, total):
    class Reporter(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.done = 0

        def on_train_batch_end(self, batch, logs=None):
            self.done += 1
            progress(stage, self.done, total)

    return Reporter()
