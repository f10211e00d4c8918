"""Magnitude pruning on Keras 3, with masks that every later training pass keeps.

>>> from edgesmith.converters import prune, strip
>>> pruned = prune(model, data, sparsity=0.5)            # 50% of each kernel set to zero, fine-tuned
>>> [float(np.mean(kernel.variable.numpy() == 0)) for kernel in kernels(pruned)]
[0.5, 0.5, 0.5, 0.5]
>>> pruned = prune(model, data, n_m="2:4")               # 2 of every 4 weights along the fan-in
>>> plain = strip(pruned)                                # no edgesmith constraints left
>>> [kernel.variable.constraint for kernel in kernels(plain)]
[None, None, None, None]

The mask is a constraint on each kernel variable: Keras applies it after every
optimizer step, and it is saved with the model, so QAT or clustering later can
not bring pruned weights back.
"""

from __future__ import annotations

import re

import keras
import numpy as np

from .checks import check_choice, checked
from .errors import UnknownOptionError
from .graph import require_graph
from .kernels import copy_model, decode_array, encode_array, is_skipped, kernels
from .stage import recorded
from .train import RECOVERY_SCHEDULE, check_recovery_time, recover, validation_split

SPARSITY_SCHEDULES = ("constant", "polynomial")
SCOPES = ("layer", "global")


@keras.saving.register_keras_serializable(package="edgesmith")
class PruningMask(keras.constraints.Constraint):
    """Keeps pruned weights at zero: ``w * mask`` after every update."""

    def __init__(self, mask):
        mask = decode_array(mask) if isinstance(mask, dict) else np.asarray(mask)
        self.mask = keras.Variable(mask.astype("float32"), trainable=False, name="pruning_mask")

    def __call__(self, weights):
        return weights * keras.ops.cast(self.mask, weights.dtype)

    def update(self, mask: np.ndarray) -> None:
        self.mask.assign(mask.astype("float32"))

    def numpy(self) -> np.ndarray:
        return np.asarray(self.mask) > 0

    def get_config(self):
        return {"mask": encode_array(self.numpy())}


def _check(sparsity_schedule, scope, sparsity, n_m=None, schedule=None, recovery_time=None):
    check_recovery_time(recovery_time)
    check_choice("sparsity_schedule", schedule or sparsity_schedule, SPARSITY_SCHEDULES)
    check_choice("scope", scope, SCOPES)
    if not 0.0 <= sparsity < 1.0:
        raise UnknownOptionError(f"sparsity must be in [0, 1), got {sparsity}")
    if n_m:
        _parse_n_m(n_m)


@checked(options=_check)
def prune(model, data, sparsity: float = 0.5, sparsity_schedule: str = "constant", begin_step: int = 0,
          end_step: int | None = None, frequency: int = 50, scope: str = "layer", skip=(), n_m: str | None = None,
          epochs: int = 2, learning_rate: float = 5e-4, progress=None, schedule: str | None = None,
          distill: bool = True, recovery_time: float | None = None):
    """Zero the smallest-magnitude weights of every kernel and fine-tune with the masks enforced.

    Args:
        model: a Sequential or Functional Keras model (a copy is pruned).
        data: labeled :class:`edgesmith.data.Dataset` for fine-tuning.
        sparsity: final fraction of zeros in each kernel (``scope="layer"``) or over all kernels.
        sparsity_schedule: ``constant`` (prune to ``sparsity`` at ``begin_step``) or ``polynomial``
            (cubic ramp from 0 to ``sparsity`` between ``begin_step`` and ``end_step``).
        begin_step, end_step, frequency: training steps where pruning starts, ends (default: the
            end of fine-tuning), and how often the masks are recomputed.
        scope: ``layer`` (a threshold per kernel) or ``global`` (one threshold for all kernels).
        skip: layer names, regular expressions or layer class names to leave dense.
        n_m: ``"N:M"`` structured sparsity (e.g. ``"2:4"``): N of every M weights along the fan-in kept.
        epochs: fine-tuning epochs (0 prunes without training).
        learning_rate: Adam learning rate of the fine-tuning.
        schedule: the former name of ``sparsity_schedule`` (deprecated: elsewhere ``schedule`` is the
            learning-rate schedule).
        distill: recover by distillation from ``model`` (its soft labels, plus the labels), else on the labels.
        recovery_time: seconds the fine-tuning may take at most (None: ``epochs`` alone); see
            :func:`~edgesmith.converters.train.recover`, which keeps the best epoch on held-out training rows.
    """
    require_graph(model, "prune")
    _check(sparsity_schedule, scope, sparsity, n_m, schedule, recovery_time)
    sparsity_schedule = schedule or sparsity_schedule
    source, model = model, copy_model(model)
    targets, skipped = _targets(model, skip, n_m)
    masker = _Masker(targets, sparsity, scope, n_m)
    per_epoch = -(-len(validation_split(len(data.x_train))[0]) // data.batch_size) if data is not None else 0
    steps = epochs * per_epoch
    plan = _Schedule(sparsity_schedule, sparsity if n_m is None else masker.final, begin_step, end_step or steps, frequency)
    masker.apply(plan.target(0) if steps else masker.final)
    recovery = recover(model, data, epochs=epochs, learning_rate=learning_rate, progress=progress,
                       callbacks=[_PruningCallback(masker, plan)], stage="prune", schedule=RECOVERY_SCHEDULE,
                       teacher=source if distill else None, time_limit=recovery_time,
                       start_from_epoch=plan.final_epoch(per_epoch, epochs))
    masker.apply(masker.final)  # the schedule's last step may not land on a multiple of frequency
    details = {**masker.details(skipped), "recovery": recovery.as_dict()}
    return recorded("prune", model, details)


def strip(model, data=None, progress=None):
    """A copy of ``model`` without edgesmith's weight constraints: a plain Keras model (weights unchanged)."""
    model = copy_model(model)
    for kernel in kernels(model):
        if kernel.constraint is not None and type(kernel.constraint).__module__.startswith("edgesmith"):
            kernel.set_constraint(None)
    return recorded("strip", model, {})


def mask_of(kernel) -> np.ndarray | None:
    """The pruning mask a kernel carries (True = kept), if any; clustering keeps it."""
    constraint = kernel.constraint
    return constraint.keep_mask() if hasattr(constraint, "keep_mask") else (
        constraint.numpy() if isinstance(constraint, PruningMask) else None
    )


# -- internals -----------------------------------------------------------------


def _targets(model, skip, n_m):
    group = _parse_n_m(n_m)[1] if n_m else None
    targets, skipped = [], []
    for kernel in kernels(model):
        fan_in = int(np.prod(kernel.variable.shape[:-1]))
        (skipped if is_skipped(kernel.layer, skip) or (group and fan_in % group) else targets).append(kernel)
    return targets, [kernel.name for kernel in skipped]


def _parse_n_m(text: str) -> tuple:
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", str(text))
    if not match or not 0 < int(match[1]) < int(match[2]):
        raise UnknownOptionError(f"n_m must look like '2:4' (N < M), got {text!r}")
    return int(match[1]), int(match[2])


class _Masker:
    """Computes and installs masks on the target kernels."""

    def __init__(self, targets, sparsity, scope, n_m):
        self.targets, self.scope = targets, scope
        self.n_m = _parse_n_m(n_m) if n_m else None
        self.final = 1.0 - self.n_m[0] / self.n_m[1] if self.n_m else sparsity

    def apply(self, sparsity: float) -> None:
        weights = [np.asarray(k.variable) for k in self.targets]
        masks = self._n_m_masks(weights) if self.n_m else self._magnitude_masks(weights, sparsity)
        for kernel, value, mask in zip(self.targets, weights, masks):
            mask = mask & _previous_mask(kernel, value.shape)
            if isinstance(kernel.constraint, PruningMask):
                kernel.constraint.update(mask)
            else:
                kernel.set_constraint(PruningMask(mask))
            kernel.variable.assign(value * mask)

    def _magnitude_masks(self, weights, sparsity):
        if self.scope == "global" and weights:
            threshold = _threshold(np.concatenate([np.abs(w).ravel() for w in weights]), sparsity)
            return [np.abs(w) > threshold for w in weights]
        return [np.abs(w) > _threshold(np.abs(w).ravel(), sparsity) for w in weights]

    def _n_m_masks(self, weights):
        keep, group = self.n_m
        masks = []
        for w in weights:
            columns = np.moveaxis(w.reshape(-1, w.shape[-1]), 0, -1).reshape(w.shape[-1], -1, group)
            order = np.argsort(-np.abs(columns), axis=-1, kind="stable")
            kept = np.zeros_like(columns, dtype=bool)
            np.put_along_axis(kept, order[..., :keep], True, axis=-1)
            masks.append(np.moveaxis(kept.reshape(w.shape[-1], -1), -1, 0).reshape(w.shape))
        return masks

    def details(self, skipped) -> dict:
        per_layer = {k.name: round(1.0 - float(np.mean(k.constraint.numpy())), 4) for k in self.targets}
        total = sum(int(np.prod(k.variable.shape)) for k in self.targets)
        zeros = sum(int(np.prod(k.variable.shape)) * s for k, s in zip(self.targets, per_layer.values()))
        return {"sparsity": round(zeros / max(1, total), 4), "per_layer": per_layer, "skipped": skipped,
                "n_m": "%d:%d" % self.n_m if self.n_m else None, "scope": self.scope}


def _previous_mask(kernel, shape) -> np.ndarray:
    """Weights an earlier prune removed stay removed."""
    constraint = kernel.constraint
    return constraint.numpy() if isinstance(constraint, PruningMask) else np.ones(shape, dtype=bool)


def _threshold(magnitudes: np.ndarray, sparsity: float) -> float:
    """The magnitude at or below which a ``sparsity`` fraction of values falls (-1 keeps everything)."""
    count = int(round(sparsity * magnitudes.size))
    return -1.0 if count == 0 else float(np.partition(magnitudes, count - 1)[count - 1])


class _Schedule:
    """Target sparsity per training step (constant or the cubic polynomial of Zhu & Gupta, 2017)."""

    def __init__(self, kind, final, begin, end, frequency):
        self.kind, self.final, self.begin, self.end = kind, final, begin, max(end, begin + 1)
        self.frequency = max(1, int(frequency))

    def final_epoch(self, steps_per_epoch: int, epochs: int) -> int:
        """The first epoch (0-based) that ends at the final sparsity: the first a best epoch may be kept from."""
        if self.kind == "constant":
            return 0
        return min(max(0, epochs - 1), max(0, -(-self.end // max(1, steps_per_epoch)) - 1))

    def due(self, step: int) -> bool:
        return self.begin <= step <= self.end and (step - self.begin) % self.frequency == 0

    def target(self, step: int) -> float:
        if step < self.begin:
            return 0.0
        if self.kind == "constant":
            return self.final
        progress = min(1.0, (step - self.begin) / (self.end - self.begin))
        return self.final * (1.0 - (1.0 - progress) ** 3)


class _PruningCallback(keras.callbacks.Callback):
    def __init__(self, masker, schedule):
        super().__init__()
        self.masker, self.schedule, self.step = masker, schedule, 0

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.schedule.due(self.step):
            self.masker.apply(self.schedule.target(self.step))
