"""Fine-tuning shared by the training passes (prune, cluster, qat).

Weight constraints set by earlier passes (pruning masks, cluster assignments)
live on the variables, and Keras applies them after every optimizer step, so
any later training keeps them.
"""

from __future__ import annotations

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
    import keras

    check_schedule(schedule)
    if schedule == "constant" or not isinstance(learning_rate, (int, float)):
        return learning_rate  # constant, or already a keras LearningRateSchedule
    return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, steps))


def fine_tune(model, data, epochs: int, learning_rate: float, progress=None, callbacks=(), stage: str = "train",
              schedule: str = "constant"):
    """Train ``model`` in place on ``data`` for ``epochs``, reporting ``progress(stage, done, total)`` per batch."""
    import keras

    if epochs <= 0:
        return model
    if data is None or not data.labeled:
        raise ConversionError(f"{stage} fine-tunes the model and needs labeled data (--data with classes)")
    steps = -(-len(data.x_train) // data.batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate_schedule(learning_rate, schedule, steps * epochs)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not ends_in_softmax(model)),
    )
    reporters = [_progress_callback(progress, stage, steps * epochs)] if progress else []
    model.fit(data.x_train, data.y_train, batch_size=data.batch_size, epochs=epochs, verbose=0,
              shuffle=True, callbacks=[*reporters, *callbacks])
    return model



def _progress_callback(progress, stage, total):
    import keras

    class Reporter(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.done = 0

        def on_train_batch_end(self, batch, logs=None):
            self.done += 1
            progress(stage, self.done, total)

    return Reporter()
