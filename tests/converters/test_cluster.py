"""Weight clustering: at most k values per kernel, kept through fine-tuning, pruning zeros kept."""

import numpy as np
import pytest

from edgesmith.converters.cluster import cluster, kmeans_1d
from edgesmith.converters.errors import UnknownOptionError
from edgesmith.converters.kernels import kernels
from edgesmith.converters.prune import prune
from tests.converters.trained import accuracy


def test_kmeans_finds_separated_groups():
    values = np.concatenate([np.full(50, -1.0), np.full(30, 0.5), np.full(20, 2.0)])
    for init in ("linear", "kmeans++"):
        np.testing.assert_allclose(sorted(kmeans_1d(values, 3, init)), [-1.0, 0.5, 2.0], atol=1e-6)


def test_clusters_hold_through_fine_tuning_and_keep_pruned_zeros(residual_cnn, digits):
    pruned = prune(residual_cnn, digits, sparsity=0.5, epochs=1)
    clustered = cluster(pruned, digits, clusters=8, epochs=1)
    for before, after in zip(kernels(pruned), kernels(clustered)):
        values = np.asarray(after.variable)
        assert np.unique(values[values != 0]).size <= 8, after.name
        assert np.all(values[np.asarray(before.variable) == 0] == 0), after.name
    assert accuracy(clustered) >= accuracy(pruned) - 0.03


def test_bad_options_are_refused(residual_cnn, digits):
    with pytest.raises(UnknownOptionError, match="linear, kmeans\\+\\+"):
        cluster(residual_cnn, digits, init="random")
