"""int4 and mixed 4/8-bit weights through litert-quantizer, refusals before any work, and the accuracy fallback."""

from __future__ import annotations

import numpy as np
import pytest

from edgesmith.converters.errors import UnknownOptionError, UnsupportedModelError
from edgesmith.recipes import load_recipe, recipe_from_dict


def depthwise_model():
    """Untrained: conv -> depthwise -> dense (a refusal needs no training)."""
    import keras

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="head")(keras.layers.Flatten()(x)))


def test_int4_on_a_depthwise_layer_is_refused_naming_it_before_any_work(tmp_path):
    from edgesmith.pipeline import convert

    recipe = recipe_from_dict({"max_accuracy_drop": 1.0, "passes": [
        {"pass": "mixed_precision", "precisions": {"dw": "int4", "head": "int4-block32"}}]})
    with pytest.raises(UnsupportedModelError, match=r"layer 'dw' \(DEPTHWISE_CONV_2D\) cannot take int4") as caught:
        convert(depthwise_model(), recipe, "builtin:digits", tmp_path / "out")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists()  # nothing was converted or written
    with pytest.raises(UnknownOptionError, match="unknown precision 'int3'"):
        recipe_from_dict({"passes": [{"pass": "mixed_precision", "default": "int3"}]})


def test_blockwise_int4_is_for_fully_connected_layers_only():
    from edgesmith.converters.registry import check_model

    with pytest.raises(UnsupportedModelError, match="layer 'conv' .*cannot take int4-block32.*FULLY_CONNECTED"):
        check_model("mixed_precision", depthwise_model(), {"precisions": {"conv": "int4-block32"}})
    check_model("mixed_precision", depthwise_model(), {"precisions": {"conv": "int4", "head": "int4-block32"}})


def test_fallback_is_refused_where_it_cannot_raise_layers():
    with pytest.raises(UnknownOptionError, match="discard the ranges qat learned"):
        recipe_from_dict({"fallback": True, "passes": [{"pass": "qat"}, {"pass": "ptq", "mode": "int8"}]})
    with pytest.raises(UnknownOptionError, match="io = float"):
        recipe_from_dict({"fallback": True, "passes": [{"pass": "ptq", "mode": "int8", "io": "int8"}]})
    with pytest.raises(UnknownOptionError, match="fallback is true or false"):
        recipe_from_dict({"fallback": "yes", "passes": []})
    assert recipe_from_dict({"fallback": True, "passes": [{"pass": "ptq", "mode": "int8"}]}).as_dict()["fallback"]
    assert "fallback" not in load_recipe("int8-ptq").as_dict()  # existing recipes are unchanged


# -- converting (slow: trains the tiny model) ---------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    from tests.sdk.test_optimize_models import digits

    return digits()


@pytest.fixture(scope="module")
def model(data):
    from tests.sdk.test_optimize_models import tiny_model

    return tiny_model(data)


@pytest.mark.slow
def test_int4_kinds_are_written_and_read_back_per_layer(model, data):
    from edgesmith.converters.verify import accuracy
    from edgesmith.optimize import layer_precisions, mixed_precision, weighted_layers

    layers = weighted_layers(model)
    asked = {"conv1": "int8", "conv2": "int4-dynamic", "fc1": "int4-block32", "head": "int4"}
    mixed = mixed_precision(model, data, precisions=asked)
    assert layer_precisions(mixed.content, layers) == asked
    int4 = mixed_precision(model, data, default="int4").content
    int8 = mixed_precision(model, data).content
    assert layer_precisions(int4, layers) == dict.fromkeys(layers, "int4")
    assert len(int4) < 0.7 * len(int8)  # the weights are most of this graph: about half the bytes
    assert accuracy(int4, data) > 0.85


@pytest.mark.slow
def test_choose_precisions_can_start_from_int4(model, data):
    from edgesmith.optimize import choose_precisions, layer_precisions, weighted_layers

    choice = choose_precisions(model, data, max_accuracy_drop=1.0, lowest="int4")
    assert choice["met"] and choice["accuracy_drop_pt"] <= 1.0
    assert choice["steps"][0]["precisions"] == dict.fromkeys(weighted_layers(model), "int4")
    assert layer_precisions(choice["content"], weighted_layers(model)) == choice["precisions"]


def sequence_digits(folder):
    """builtin:digits as 8 steps of 8 features (an .npz fed as stored), and the arrays."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = (digits.images / 16.0).astype(np.float32), digits.target.astype(np.int64)
    path = folder / "sequence.npz"
    np.savez(path, x_train=x[:1440], y_train=y[:1440], x_test=x[1440:], y_test=y[1440:])
    return path, x[:1440], y[:1440]


def outlier_transformer(x, y):
    """A pre-norm encoder block (Conv1D embedding, LayerNormalization + MultiHeadAttention, MLP), trained briefly;
    then one unit of mlp_in gets a constant 5000 that mlp_out ignores: harmless in float, but its per-tensor int8
    range rounds every other unit of mlp_in away."""
    import keras

    keras.utils.set_random_seed(0)
    L = keras.layers
    inputs = keras.Input((8, 8))
    x_ = L.Conv1D(32, 3, padding="same", name="embed")(inputs)
    y_ = L.LayerNormalization(name="norm1")(x_)  # named: Keras's automatic names count up across tests
    x_ = L.Add(name="residual1")([x_, L.MultiHeadAttention(num_heads=2, key_dim=16, name="attention")(y_, y_)])
    y_ = L.LayerNormalization(name="norm2")(x_)
    x_ = L.Add(name="residual2")([x_, L.Dense(32, name="mlp_out")(L.Dense(64, activation="relu", name="mlp_in")(y_))])
    x_ = L.GlobalAveragePooling1D(name="pool")(L.LayerNormalization(name="norm3")(x_))
    model = keras.Model(inputs, L.Dense(10, activation="softmax", name="head")(x_), name="tiny_transformer")
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=6, batch_size=64, verbose=0)
    kernel, bias = model.get_layer("mlp_in").get_weights()
    kernel[:, 0], bias[0] = 0.0, 5000.0
    model.get_layer("mlp_in").set_weights([kernel, bias])
    kernel, bias = model.get_layer("mlp_out").get_weights()
    kernel[0, :] = 0.0
    model.get_layer("mlp_out").set_weights([kernel, bias])
    return model


@pytest.mark.slow
def test_int8_ptq_with_fallback_meets_a_2_point_budget_on_a_transformer(tmp_path):
    from edgesmith.converters.mixed_precision import layer_precisions
    from edgesmith.pipeline import convert
    from edgesmith.report.text import markdown_report
    from edgesmith.runtime import read_metadata

    path, x, y = sequence_digits(tmp_path)
    model = outlier_transformer(x, y)
    report = convert(model, "int8-ptq", str(path), tmp_path / "out", fallback=True)  # no AccuracyDropError
    fallback = report.fallback
    assert fallback.met and report.verification.accuracy_drop_pt <= 2.0
    assert fallback.start.accuracy_drop_pt > 2.0  # plain int8 PTQ missed the budget
    raised = {step["layer"]: step["to"] for step in fallback.raised}
    assert raised.get("mlp_in") == "int16x8"  # the layer with the outlier was raised
    assert all(step["from"] == "int8" for step in fallback.raised)
    assert fallback.end.tflite_bytes > 0 and fallback.end.latency_ms_p50 > 0
    content = (tmp_path / "out" / "model.tflite").read_bytes()
    assert layer_precisions(content, ["mlp_in"]) == {"mlp_in": "int16x8"}
    recorded = read_metadata(tmp_path / "out" / "model.tflite")["recipe"]  # replays the raised precisions
    assert recorded["passes"][-1]["pass"] == "mixed_precision" and recorded["passes"][-1]["precisions"]["mlp_in"] == "int16x8"
    assert "fallback raised" in markdown_report(report) and "mlp_in int8->int16x8" in markdown_report(report)


def test_the_search_offers_int4_only_where_the_op_takes_it_and_starts_at_int8():
    from edgesmith.optimize.space import SearchSpace

    from edgesmith.converters.mixed_precision import ALL_PRECISIONS

    space = SearchSpace.for_model(depthwise_model(), passes=("prune",), precisions=ALL_PRECISIONS)
    assert "int4" in space.choices("conv") and "int4-block32" not in space.choices("conv")
    assert not any(p.startswith("int4") for p in space.choices("dw"))
    assert "int4-block32" in space.choices("head")
    assert {value for key, value in space.baseline().items() if key.startswith("precision:")} == {"int8"}
