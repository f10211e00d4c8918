"""MobileNet-style replacement: exact at full rank, fewer MACs at rank 1, distillation recovers accuracy."""

import keras
import numpy as np
import pytest

from edgesmith.converters.errors import ConversionError
from edgesmith.converters.macs import count_macs
from edgesmith.converters.mobilenetize import mobilenetize, separable_kernels
from edgesmith.converters.record import record_of

L = keras.layers


def _model(channels=1):
    inputs = keras.Input((12, 12, channels))
    x = L.Conv2D(16, 3, padding="same", activation="relu", name="c1")(inputs)
    y = L.Conv2D(16, 3, strides=2, padding="same", name="c2")(x)
    y = L.Conv2D(16, (3, 2), padding="valid", dilation_rate=(1, 2), activation="relu", name="c3")(y)  # 4 x 4
    x = L.Conv2D(16, 1, name="pw")(x)  # 1 x 1: never replaced
    x = L.GlobalAveragePooling2D()(L.Add()([L.MaxPooling2D(3)(x), y]))
    return keras.Model(inputs, L.Dense(4, activation="softmax", name="head")(x))


def test_svd_kernels_are_exact_at_full_rank():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 5, 7)).astype("float32")
    depthwise, pointwise, error = separable_kernels(kernel, rank=9)
    assert depthwise.shape == (3, 3, 5, 7) and pointwise.shape == (1, 1, 35, 7)  # rank capped at F = 7
    rebuilt = np.einsum("ijcr,crf->ijcf", depthwise, pointwise[0, 0].reshape(5, 7, 7))
    np.testing.assert_allclose(rebuilt, kernel, atol=1e-4)
    assert error < 1e-5
    _, _, rank1_error = separable_kernels(kernel, rank=1)
    assert 0.3 < rank1_error < 1.0


def test_full_rank_replacement_computes_the_same_outputs():
    model = _model()
    full = mobilenetize(model, rank=9)
    x = np.random.default_rng(0).normal(size=(3, 12, 12, 1)).astype("float32")
    np.testing.assert_allclose(full.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    names = [layer.name for layer in full.layers]
    assert {"c1_dw", "c1_pw", "c2_dw", "c3_dw"} <= set(names) and "pw" in names and "c1" not in names


def test_rank_one_cuts_macs_of_replaced_layers_by_4x_and_reports_each():
    model = _model()
    small = mobilenetize(model, rank=1, skip=("c3",), min_macs=1000)
    layers = record_of(small).details["layers"]
    assert set(layers) == {"c1", "c2"}
    for info in layers.values():
        assert info["rank"] == 1 and 0 < info["error"] < 1
        assert info["macs_before"] >= 4 * info["macs_after"]
    assert record_of(small).macs < count_macs(model)


@pytest.mark.slow  # trains
def test_distillation_after_replacement_trains_against_the_original():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.pad(digits.images[..., None] / 16.0, ((0, 0), (2, 2), (2, 2), (0, 0))).astype("float32")
    y = digits.target % 4
    keras.utils.set_random_seed(0)
    model = _model()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x[:1000], y[:1000], epochs=4, verbose=0)
    small = mobilenetize(model, rank=1)
    before = np.mean(np.argmax(small.predict(x[1000:], verbose=0), -1) == y[1000:])
    # 6 epochs: a tenth of the rows is held out to keep the best epoch, so 3 short epochs barely move it (+1 pt)
    distilled = mobilenetize(model, (x[:1000], y[:1000]), rank=1, distill_epochs=6)
    after = np.mean(np.argmax(distilled.predict(x[1000:], verbose=0), -1) == y[1000:])
    assert after > before + 0.02, (before, after)


def test_bad_rank():
    with pytest.raises(ConversionError, match="rank must be at least 1"):
        mobilenetize(_model(), rank=0)


def test_recipe_mobilenetize_distill_channel_prune_qat_int8_cuts_macs_stage_by_stage(residual_cnn, digits, tmp_path):
    from edgesmith.pipeline import convert

    recipe = tmp_path / "arch.toml"
    recipe.write_text(
        'name = "arch"\n'
        '[[passes]]\npass = "mobilenetize"\nrank = 1\n'
        '[[passes]]\npass = "distill"\nepochs = 2\n'
        '[[passes]]\npass = "channel_prune"\nratio = 0.3\nepochs = 1\n'
        '[[passes]]\npass = "qat"\nepochs = 1\n'
        '[[passes]]\npass = "ptq"\nmode = "int8"\n'
    )
    report = convert(residual_cnn, recipe, digits, tmp_path / "out")
    macs = {stage.name: stage.macs for stage in report.stages if stage.macs}
    first = report.stages[0].macs
    assert macs["mobilenetize"] < first and macs["channel_prune"] < macs["distill"] <= macs["mobilenetize"]
    assert (tmp_path / "out" / "model.tflite").is_file()
