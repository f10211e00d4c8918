"""Recovery in the one fine-tuning loop: held-out rows, early stopping to the best epoch, the time limit, and
distillation from the model before each training pass."""

import time

import keras
import numpy as np
import pytest
from keras import layers

from edgesmith.converters import record_of
from edgesmith.converters.channel_prune import channel_prune
from edgesmith.converters.cluster import cluster
from edgesmith.converters.kernels import copy_model, kernels
from edgesmith.converters.prune import prune
from edgesmith.converters.qat import qat
from edgesmith.converters.train import ArrayData, recover, validation_split

pytestmark = pytest.mark.slow  # trains


def _small_cnn(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    x = layers.ReLU()(layers.BatchNormalization(name="bn")(layers.Conv2D(8, 3, name="conv")(inputs)))
    return keras.Model(inputs, layers.Dense(10, name="head")(layers.Flatten()(x)))


def _diverging(data, good_epochs=1):
    """A learning rate that trains well for ``good_epochs``, then blows the weights up: later epochs get worse."""
    steps = -(-len(validation_split(len(data.x_train))[0]) // data.batch_size)
    return keras.optimizers.schedules.PiecewiseConstantDecay([steps * good_epochs], [3e-3, 30.0])


class _Snapshots(keras.callbacks.Callback):
    """Every weight of ``model`` (BatchNorm statistics included) as each epoch's end left it."""

    def __init__(self, model):
        super().__init__()
        self.student, self.taken = model, []

    def on_epoch_begin(self, epoch, logs=None):  # after the previous epoch's end (statistics re-estimated, scored)
        if epoch:
            self.taken.append([np.array(w) for w in self.student.weights])


def test_early_stopping_keeps_the_best_epochs_weights(digits):
    model = _small_cnn()
    snapshots = _Snapshots(model)
    report = recover(model, digits, epochs=10, learning_rate=_diverging(digits, 2), callbacks=[snapshots])
    assert report.stopped == "early" and report.epochs < 10, report
    assert report.best_epoch == int(np.argmax(report.val_accuracy)) + 1 < report.epochs, report
    assert report.val_accuracy[report.best_epoch - 1] > max(report.val_accuracy[report.best_epoch:]) + 0.2
    kept = snapshots.taken[report.best_epoch - 1]
    assert all(np.array_equal(np.asarray(w), k) for w, k in zip(model.weights, kept))
    mean = next(i for i, w in enumerate(model.weights) if "moving_mean" in w.path)  # restored too
    assert not np.array_equal(np.asarray(model.weights[mean]), snapshots.taken[-1][mean])


def test_the_time_limit_stops_training_and_the_bar_shows_it(digits):
    calls = []
    started = time.monotonic()
    report = recover(_small_cnn(), digits, epochs=1000, time_limit=0.5,
                     progress=lambda stage, done, total: calls.append((done, total)))
    assert time.monotonic() - started < 60
    assert report.stopped == "time" and 1 <= report.epochs < 1000 and len(report.val_accuracy) == report.epochs
    steps = 1000 * -(-len(validation_split(len(digits.x_train))[0]) // digits.batch_size)
    assert calls[-1][0] == calls[-1][1]  # the bar ends full, at the steps the time allowed
    assert all(total < steps / 10 for _, total in calls)


class _Recording:
    """An array whose row reads are recorded."""

    def __init__(self, array):
        self.array, self.reads = array, []
        self.shape = array.shape

    def __len__(self):
        return len(self.array)

    def __getitem__(self, rows):
        self.reads.append(np.atleast_1d(np.arange(len(self.array))[rows]))
        return self.array[rows]


def test_validation_rows_are_never_trained_on(digits):
    x = _Recording(np.asarray(digits.x_train[:]))
    train_rows, validation_rows = validation_split(len(x))
    report = recover(_small_cnn(), ArrayData(x, digits.y_train), epochs=2)
    assert report.validation_rows == len(validation_rows) > 0
    touching = [rows for rows in x.reads if np.intersect1d(rows, validation_rows).size]
    assert len(touching) == 1 and np.array_equal(np.sort(touching[0]), validation_rows)  # read once, to score
    trained = np.unique(np.concatenate([rows for rows in x.reads if rows is not touching[0]]))
    assert np.array_equal(trained, train_rows)


@pytest.mark.parametrize("make", [
    lambda model, data, **o: prune(model, data, sparsity=0.5, epochs=1, **o),
    lambda model, data, **o: cluster(model, data, clusters=8, epochs=1, **o),
    lambda model, data, **o: channel_prune(model, data, ratio=0.25, epochs=1, **o),
    lambda model, data, **o: qat(model, data, epochs=1, **o),
], ids=["prune", "cluster", "channel_prune", "qat"])
def test_every_training_pass_distils_from_the_model_before_it_unless_told_not_to(make, residual_cnn, digits):
    for distill in (True, False):
        recovery = record_of(make(residual_cnn, digits, distill=distill, recovery_time=120)).details["recovery"]
        recovery = recovery[0] if isinstance(recovery, list) else recovery
        assert recovery["distilled"] is distill and recovery["validation_rows"] == 256, recovery


def test_masks_and_clusters_hold_on_the_restored_epoch(residual_cnn, digits):
    rate = _diverging(digits)
    pruned = prune(residual_cnn, digits, sparsity=0.5, epochs=4, learning_rate=rate)
    assert record_of(pruned).details["recovery"]["best_epoch"] == 1
    for kernel in kernels(pruned):
        assert np.all(np.asarray(kernel.variable)[~kernel.constraint.numpy()] == 0)
        assert abs(np.mean(np.asarray(kernel.variable) == 0) - 0.5) < 0.05
    shared = cluster(copy_model(pruned), digits, clusters=8, epochs=4, learning_rate=rate)
    assert record_of(shared).details["recovery"]["best_epoch"] == 1
    for kernel in kernels(shared):
        values = np.asarray(kernel.variable)
        assert np.unique(values[values != 0]).size <= 8 and np.mean(values == 0) >= 0.45
