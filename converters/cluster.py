"""Weight clustering (k-means weight sharing) on Keras 3, kept through later training and QAT.

>>> from edgesmith.converters import cluster
>>> shared = cluster(model, data, clusters=16)     # every kernel holds at most 16 distinct values
>>> [len(np.unique(kernel.variable.numpy())) for kernel in kernels(shared)]
[16, 16, 16, 16]

Each kernel's values are grouped by 1-D k-means (``linear`` or ``kmeans++``
initialisation); fine-tuning then moves whole clusters: after every optimizer
step each weight is replaced by its cluster's centroid (the least-squares
projection), so the centroids are what is trained. Weights a pruning pass
removed stay zero. The constraint is saved with the model and moved by QAT
to the fake-quantized kernels (which keep any folded BatchNorm factor apart).
"""

from __future__ import annotations

import keras
import numpy as np

from .checks import check_choice, checked
from .errors import UnknownOptionError
from .graph import require_graph
from .kernels import copy_model, decode_array, encode_array, is_skipped, kernels
from .prune import mask_of
from .stage import recorded
from .train import RECOVERY_SCHEDULE, check_recovery_time, recover

INITS = ("linear", "kmeans++")


@keras.saving.register_keras_serializable(package="edgesmith")
class ClusterConstraint(keras.constraints.Constraint):
    """Projects a kernel onto ``centroid[assignment]`` (each centroid the mean of its weights); assignment -1
    pins a weight to zero."""

    def __init__(self, assignments, clusters: int):
        self.assignments = decode_array(assignments) if isinstance(assignments, dict) else np.asarray(assignments)
        self.clusters = int(clusters)
        # segment ids: pinned zeros go to an extra segment whose centroid is forced to 0
        self._segments = np.where(self.assignments < 0, self.clusters, self.assignments).astype("int32").ravel()

    def __call__(self, weights):
        ops = keras.ops
        flat = ops.reshape(weights, (-1,))
        sums = ops.segment_sum(flat, self._segments, num_segments=self.clusters + 1)
        counts = ops.segment_sum(ops.ones_like(flat), self._segments, num_segments=self.clusters + 1)
        centroids = sums / ops.maximum(counts, 1.0)
        centroids = ops.concatenate([centroids[: self.clusters], ops.zeros((1,), weights.dtype)])
        return ops.reshape(ops.take(centroids, self._segments), weights.shape)

    def keep_mask(self) -> np.ndarray:
        """Weights that are not pinned to zero (the pruning mask it carries)."""
        return self.assignments >= 0

    def get_config(self):
        return {"assignments": encode_array(self.assignments.astype(np.int16)), "clusters": self.clusters}


def _check_options(init, clusters, recovery_time=None):
    check_recovery_time(recovery_time)
    check_choice("init", init, INITS)
    if not 2 <= clusters <= 256:
        raise UnknownOptionError(f"clusters must be between 2 and 256, got {clusters}")


@checked(options=_check_options)
def cluster(model, data, clusters: int = 16, init: str = "kmeans++", skip=(), epochs: int = 1,
            learning_rate: float = 5e-4, seed: int = 0, progress=None, distill: bool = True,
            recovery_time: float | None = None):
    """Share weights: every kernel gets at most ``clusters`` distinct values, then fine-tune the centroids.

    Args:
        model: a Sequential or Functional Keras model (a copy is clustered).
        data: labeled :class:`edgesmith.data.Dataset` for fine-tuning.
        clusters: distinct values per kernel (pruned zeros come on top, as a fixed cluster).
        init: ``kmeans++`` or ``linear`` (evenly spaced between the smallest and largest weight).
        skip: layer names, regular expressions or class names to leave unclustered.
        epochs: fine-tuning epochs with shared centroids (0: cluster only).
        learning_rate: Adam learning rate.
        seed: seed of the k-means++ initialisation.
        distill: recover by distillation from ``model`` (its soft labels, plus the labels), else on the labels.
        recovery_time: seconds the fine-tuning may take at most (None: ``epochs`` alone); see
            :func:`~edgesmith.converters.train.recover`, which keeps the best epoch on held-out training rows.
    """
    require_graph(model, "cluster")
    _check_options(init, clusters, recovery_time)
    source, model = model, copy_model(model)
    done, skipped = [], []
    for kernel in kernels(model):
        if is_skipped(kernel.layer, skip):
            skipped.append(kernel.name)
            continue
        _cluster_kernel(kernel, clusters, init, np.random.default_rng(seed))
        done.append(kernel.name)
    recovery = recover(model, data, epochs=epochs, learning_rate=learning_rate, progress=progress, stage="cluster",
                       schedule=RECOVERY_SCHEDULE, teacher=source if distill else None, time_limit=recovery_time)
    details = {"clusters": clusters, "init": init, "layers": done, "skipped": skipped, "recovery": recovery.as_dict()}
    return recorded("cluster", model, details)


def _cluster_kernel(kernel, clusters, init, rng) -> None:
    values = np.asarray(kernel.variable)
    kept = mask_of(kernel)
    kept = np.ones(values.shape, bool) if kept is None else kept
    live = values[kept]
    count = min(clusters, max(1, np.unique(live).size))
    centroids = kmeans_1d(live, count, init, rng)
    assignments = np.full(values.shape, -1, np.int64)
    assignments[kept] = np.abs(live[:, None] - centroids[None, :]).argmin(axis=1)
    constraint = ClusterConstraint(assignments, count)
    kernel.set_constraint(constraint)
    kernel.variable.assign(np.asarray(constraint(keras.ops.convert_to_tensor(values))))


def kmeans_1d(values: np.ndarray, clusters: int, init: str = "kmeans++", rng=None, iterations: int = 30) -> np.ndarray:
    """Centroids of 1-D k-means (Lloyd's algorithm) over ``values``."""
    rng = rng or np.random.default_rng(0)
    if init == "linear":
        centroids = np.linspace(values.min(), values.max(), clusters)
    else:
        centroids = _kmeans_plus_plus(values, clusters, rng)
    for _ in range(iterations):
        nearest = np.abs(values[:, None] - centroids[None, :]).argmin(axis=1)
        updated = np.array([values[nearest == k].mean() if np.any(nearest == k) else centroids[k]
                            for k in range(clusters)])
        if np.allclose(updated, centroids):
            break
        centroids = updated
    return centroids.astype(np.float32)


def _kmeans_plus_plus(values, clusters, rng):
    centroids = [values[rng.integers(len(values))]]
    for _ in range(1, clusters):
        distance = np.min((values[:, None] - np.array(centroids)[None, :]) ** 2, axis=1)
        total = distance.sum()
        centroids.append(values[rng.choice(len(values), p=distance / total)] if total > 0 else values[0])
    return np.sort(np.array(centroids, dtype=np.float64))
