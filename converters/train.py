"""Fine-tuning shared by the training passes (prune, cluster, qat).

Weight constraints set by earlier passes (pruning masks, cluster assignments)
live on the variables, and Keras applies them after every optimizer step, so
any later training keeps them.
"""

from __future__ import annotations

from .errors import ConversionError


def fine_tune(model, data, epochs: int, learning_rate: float, progress=None, callbacks=(), stage: str = "train"):
    """Train ``model`` in place on ``data`` for ``epochs``, reporting ``progress(stage, done, total)`` per batch."""
    import keras

    if epochs <= 0:
        return model
    if data is None or not data.labeled:
        raise ConversionError(f"{stage} fine-tunes the model and needs labeled data (--data with classes)")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not _ends_in_softmax(model)),
    )
    steps = -(-len(data.x_train) // data.batch_size)
    reporters = [_progress_callback(progress, stage, steps * epochs)] if progress else []
    model.fit(data.x_train, data.y_train, batch_size=data.batch_size, epochs=epochs, verbose=0,
              shuffle=True, callbacks=[*reporters, *callbacks])
    return model


def _ends_in_softmax(model) -> bool:
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    return type(last).__name__ == "Softmax" or getattr(activation, "__name__", "") == "softmax"


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
