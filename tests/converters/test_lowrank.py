"""Low-rank factorization: exact at full rank, rank set by energy or ratio, smaller when truncated."""

import keras
import numpy as np
import pytest

from edgesmith.converters.errors import ConversionError
from edgesmith.converters.lowrank import lowrank, rank_for
from edgesmith.converters.record import record_of

L = keras.layers


def _model():
    inputs = keras.Input((10, 10, 8))
    x = L.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="k3")(inputs)
    x = L.Conv2D(48, 1, activation="relu", name="pw")(x)
    x = L.Flatten()(x)
    x = L.Dense(64, activation="relu", name="fc")(x)
    return keras.Model(inputs, L.Dense(5, name="head")(x))


def _outputs(model):
    x = np.random.default_rng(0).normal(size=(4, 10, 10, 8)).astype("float32")
    return model.predict(x, verbose=0)


def _set_low_rank_kernels(model, rng):
    fc = model.get_layer("fc")
    n_in, n_out = fc.kernel.shape
    fc.set_weights([rng.normal(size=(n_in, 4)) @ rng.normal(size=(4, n_out)) / 10, fc.get_weights()[1]])
    k3 = model.get_layer("k3")  # sum of 2 terms, each (column of rows x channels) x (row of columns x filters)
    kernel = sum(np.einsum("ic,jf->ijcf", rng.normal(size=(3, 8)), rng.normal(size=(3, 32))) for _ in range(2))
    k3.set_weights([kernel, k3.get_weights()[1]])


def test_factorization_at_the_true_rank_is_exact_including_spatial_split():
    model = _model()
    _set_low_rank_kernels(model, np.random.default_rng(1))
    full = lowrank(model, energy=1.0, spatial=True)
    layers = record_of(full).details["layers"]
    assert layers["fc"]["rank"] == 4 and layers["k3"]["rank"] == 2 and layers["k3"]["spatial"]
    assert "pw" not in layers  # a random 8 x 48 kernel is full rank: factorizing it would not shrink it
    np.testing.assert_allclose(_outputs(full), _outputs(model), rtol=1e-4, atol=1e-4)


def test_rank_ratio_halves_params_and_reports_rank_and_error():
    model = _model()
    small = lowrank(model, rank_ratio=0.25, skip=("head",))
    layers = record_of(small).details["layers"]
    assert set(layers) == {"pw", "fc"}
    assert layers["fc"]["rank"] == 16 and layers["pw"]["rank"] == 8
    for info in layers.values():
        assert info["params_after"] < info["params_before"] and 0 < info["error"] < 1
    assert small.count_params() < model.count_params()
    assert not np.allclose(_outputs(small), _outputs(model), atol=1e-4)


def test_rank_for_energy():
    s = np.array([3.0, 2.0, 1.0, 0.0])
    assert rank_for(s, energy=9 / 14, rank_ratio=None) == 1
    assert rank_for(s, energy=0.99, rank_ratio=None) == 3
    assert rank_for(s, energy=0.9, rank_ratio=0.5) == 2


def test_bad_energy():
    with pytest.raises(ConversionError, match="energy must be in"):
        lowrank(_model(), energy=1.5)
