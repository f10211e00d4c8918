"""Per-layer mixed precision is realized in the .tflite (read back from its tensors) and runs correctly."""

from __future__ import annotations

import numpy as np
import pytest

from edgesmith.converters.errors import UnknownOptionError
from edgesmith.converters.verify import accuracy
from edgesmith.optimize import choose_precisions, layer_precisions, mixed_precision, weighted_layers
from edgesmith.runtime import Model
from tests.sdk.test_optimize_models import digits, tiny_model

pytestmark = pytest.mark.slow  # trains a model and converts it in every test


@pytest.fixture(scope="module")
def data():
    return digits()


@pytest.fixture(scope="module")
def model(data):
    return tiny_model(data)


def test_each_layer_gets_its_precision_in_the_tflite(model, data, tmp_path):
    asked = {"conv1": "float32", "conv2": "int16x8", "fc1": "float16", "head": "int8"}
    tflite = mixed_precision(model, data, precisions=asked)
    assert layer_precisions(tflite.content, weighted_layers(model)) == asked
    path = tmp_path / "mixed.tflite"
    path.write_bytes(tflite.content)
    runtime = Model(path)
    assert runtime.inputs[0].quantized  # the default (int8) governs the input
    predicted = runtime.predict(data.x_val).argmax(-1)
    assert abs(np.mean(predicted == data.y_val) - accuracy(model, data)) < 0.02


def test_precisions_change_the_size_as_expected(model, data):
    sizes = {p: len(mixed_precision(model, data, default=p).content) for p in ("int8", "float16", "float32")}
    assert sizes["int8"] < sizes["float16"] < sizes["float32"]
    assert layer_precisions(mixed_precision(model, data, default="float16").content, ["fc1"]) == {"fc1": "float16"}


def test_unknown_layer_or_precision_is_a_clear_error(model, data):
    with pytest.raises(UnknownOptionError, match="no weighted layer named nope"):
        mixed_precision(model, data, precisions={"nope": "int8"})
    with pytest.raises(UnknownOptionError, match="unknown precision 'int3'"):
        mixed_precision(model, data, precisions={"fc1": "int3"})


def test_choose_precisions_fits_the_budget_on_a_verified_tflite(data):
    model = tiny_model(data, outlier=True)
    choice = choose_precisions(model, data, max_accuracy_drop=1.0)
    assert choice["met"] and choice["accuracy_drop_pt"] <= 1.0
    assert choice["steps"][0]["accuracy_drop_pt"] > 1.0  # all-int8 was not good enough
    assert choice["precisions"]["fc1"] != "int8"  # the sensitive layer was raised
    assert layer_precisions(choice["content"], weighted_layers(model)) == choice["precisions"]
    assert accuracy(choice["content"], data) == pytest.approx(choice["accuracy"])


def test_large_weights_survive_embedding_metadata(data, tmp_path):
    """litert-quantizer stores buffers after the flatbuffer by offset once they pass 256 KiB (here 512 KiB
    of int8 weights); the .tflite must still load once metadata is embedded (the bug showed as "Constant
    buffer 1 specified an out of range offset")."""
    import keras

    from edgesmith.converters.export import export

    keras.utils.set_random_seed(0)
    inputs = keras.Input(data.sample_shape)
    hidden = keras.layers.Dense(8192, activation="relu", name="wide")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="head")(hidden))
    tflite = mixed_precision(model, data)
    path = export(tflite, data, tmp_path / "wide.tflite")
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(tflite.content)
    assert np.array_equal(Model(path).predict(data.x_val[:50]), Model(plain).predict(data.x_val[:50]))


def test_a_recipe_ending_in_mixed_precision_converts_from_the_cli(model, data, tmp_path):
    """What ``edgesmith optimize`` records as a pick's recipe replays through ``edgesmith convert``."""
    import json

    from edgesmith.runtime import read_metadata
    from tests.sdk.test_convert_cli import edgesmith

    model.save(tmp_path / "tiny.keras")
    recipe = tmp_path / "mixed.toml"
    recipe.write_text('name = "mixed"\n[[passes]]\npass = "mixed_precision"\n'
                      '[passes.precisions]\nconv1 = "float16"\nfc1 = "int16x8"\n')
    done = edgesmith("convert", tmp_path / "tiny.keras", "--recipe", recipe, "--data", "builtin:digits",
                     "--out", tmp_path / "out", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    content = (tmp_path / "out" / "model.tflite").read_bytes()
    assert layer_precisions(content, weighted_layers(model)) == {
        "conv1": "float16", "conv2": "int8", "fc1": "int16x8", "head": "int8"}
    assert report["stages"][-1]["name"].startswith("mixed_precision")
    assert report["verification"]["tflite_accuracy"] > 0.9
    assert read_metadata(tmp_path / "out" / "model.tflite")["recipe"]["passes"][-1]["pass"] == "mixed_precision"


def test_the_recipe_recorded_in_a_tflite_replays_and_bad_files_are_one_line_errors(model, data, tmp_path):
    from edgesmith.converters.errors import UnknownOptionError as RecipeError
    from edgesmith.converters.export import export
    from edgesmith.recipes import load_recipe

    recorded = {"name": "optimize-trial-3", "description": "found by edgesmith optimize",
                "passes": [{"pass": "mixed_precision", "precisions": {"fc1": "float16"}}]}
    path = export(mixed_precision(model, data, precisions={"fc1": "float16"}), data, tmp_path / "pick.tflite",
                  recipe=recorded)
    recipe = load_recipe(path)
    assert recipe.name == "optimize-trial-3"
    assert recipe.conversion.as_dict() == {"pass": "mixed_precision", "precisions": {"fc1": "float16"}}
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(mixed_precision(model, data).content)
    with pytest.raises(RecipeError, match="records no recipe"):
        load_recipe(plain)
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "missing.tflite")
