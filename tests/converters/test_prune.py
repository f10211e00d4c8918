"""Magnitude and N:M pruning: sparsity reached, masks kept through fine-tuning, QAT and saving."""

import re

import numpy as np
import pytest

from edgesmith.converters import record_of
from edgesmith.converters.errors import UnknownOptionError
from edgesmith.converters.kernels import kernels
from edgesmith.converters.load import load_model
from edgesmith.converters.prune import PruningMask, prune, strip
from edgesmith.converters.qat import qat
from tests.converters.trained import accuracy

pytestmark = pytest.mark.slow  # fine-tunes trained models


def _sparsity(kernel) -> float:
    values = np.asarray(kernel.variable)
    return 1.0 - np.count_nonzero(values) / values.size


def test_layer_sparsity_is_reached_and_kept_through_fine_tuning(residual_cnn, digits):
    pruned = prune(residual_cnn, digits, sparsity=0.5, epochs=1)
    for kernel in kernels(pruned):
        assert _sparsity(kernel) == pytest.approx(0.5, abs=0.02), kernel.name
    assert accuracy(pruned) >= accuracy(residual_cnn) - 0.05
    assert record_of(pruned).nonzero_params < record_of(pruned).params
    assert all(k.variable.constraint is None for k in kernels(residual_cnn))  # the original is untouched


def test_polynomial_global_schedule_with_skip(sequential_mlp, digits):
    names = [k.layer.name for k in kernels(sequential_mlp)]
    skip = [re.escape(names[-1]) + "$", "Conv2D"]  # a regular expression matching the output layer, a type
    pruned = prune(sequential_mlp, digits, sparsity=0.7, sparsity_schedule="polynomial", scope="global", frequency=5,
                   epochs=1, skip=skip)
    found = {k.layer.name: _sparsity(k) for k in kernels(pruned)}
    assert found[names[-1]] == 0.0  # skipped by name
    assert found[names[0]] > 0.6
    assert record_of(pruned).details["skipped"] == [names[-1]]


def test_schedule_is_the_deprecated_spelling_of_sparsity_schedule(sequential_mlp, digits):
    assert record_of(prune(sequential_mlp, digits, schedule="polynomial", epochs=0)).name == "prune"
    with pytest.raises(UnknownOptionError, match="unknown sparsity_schedule 'cosine'; valid: constant, polynomial"):
        prune(sequential_mlp, digits, schedule="cosine", epochs=0)


def test_two_of_four_keeps_two_in_every_group_of_four(residual_cnn, digits):
    pruned = prune(residual_cnn, digits, n_m="2:4", epochs=1)
    for kernel in kernels(pruned):
        if kernel.name in record_of(pruned).details["skipped"]:
            continue
        values = np.asarray(kernel.variable)
        groups = values.reshape(-1, values.shape[-1]).T.reshape(values.shape[-1], -1, 4)
        assert (np.count_nonzero(groups, axis=-1) <= 2).all(), kernel.name
    assert "conv2d" in " ".join(record_of(pruned).details["skipped"])  # fan-in 9 is not a multiple of 4


def test_masks_survive_qat_and_saving(residual_cnn, digits, tmp_path):
    pruned = prune(residual_cnn, digits, sparsity=0.6, epochs=1)
    zeros_before = {k.name: _sparsity(k) for k in kernels(pruned)}
    quantized = qat(pruned, digits, epochs=1)
    for kernel in kernels(quantized):
        if kernel.name in zeros_before:
            assert _sparsity(kernel) >= zeros_before[kernel.name] - 1e-6, kernel.name
    pruned.save(tmp_path / "pruned.keras")
    loaded = load_model(tmp_path / "pruned.keras")
    assert isinstance(kernels(loaded)[0].constraint, PruningMask)
    np.testing.assert_array_equal(kernels(loaded)[0].constraint.numpy(), kernels(pruned)[0].constraint.numpy())


def test_strip_leaves_a_plain_model(residual_cnn, digits):
    plain = strip(prune(residual_cnn, digits, sparsity=0.5, epochs=0))
    assert all(k.constraint is None for k in kernels(plain))
    assert _sparsity(kernels(plain)[0]) == pytest.approx(0.5, abs=0.02)
