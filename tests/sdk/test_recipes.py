"""Recipes load and validate without running anything: built-ins, files, recorded recipes, clear refusals."""

from pathlib import Path

import pytest

from edgesmith.converters.errors import UnknownOptionError
from edgesmith.converters.registry import TFLITE_PASSES
from edgesmith.preprocessing import InputContractError
from edgesmith.recipes import builtin_recipes, load_recipe, recipe_from_dict

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_built_in_recipe_validates_ends_in_one_tflite_pass_and_is_documented():
    page = (DOCS / "recipes.md").read_text(encoding="utf-8")
    assert {"int8-qat", "int8-ptq", "fast-int8"} <= set(builtin_recipes())
    for name in builtin_recipes():
        recipe = load_recipe(name)
        assert recipe.name == name and recipe.description
        assert recipe.conversion.name in TFLITE_PASSES
        assert not any(step.name in TFLITE_PASSES for step in recipe.keras_passes)
        assert f"`{name}`" in page, f"docs/recipes.md does not list {name}"


def test_a_recipe_file_round_trips_through_its_dict():
    recipe = load_recipe("max-compression")
    again = recipe_from_dict(recipe.as_dict())
    assert again == recipe and again.as_dict() == recipe.as_dict()


def test_a_file_without_a_tflite_pass_gets_float32_ptq_appended(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('description = "prune only"\n[[passes]]\npass = "prune"\nsparsity = 0.3\n', encoding="utf-8")
    recipe = load_recipe(path)
    assert recipe.name == "mine"
    assert [step.as_dict() for step in recipe.passes] == [{"pass": "prune", "sparsity": 0.3},
                                                          {"pass": "ptq", "mode": "float32"}]


@pytest.mark.parametrize("table, error, message", [
    ({"passes": [{"pass": "prunee"}]}, UnknownOptionError, "unknown pass 'prunee'; valid passes: channel_prune"),
    ({"passes": [{"pass": "prune", "sparsty": 0.5}]}, UnknownOptionError, "has no option.* sparsty; valid options:.*sparsity"),
    ({"passes": [{"pass": "prune", "sparsity": 1.5}]}, UnknownOptionError, "sparsity"),
    ({"nme": "x"}, UnknownOptionError, "unknown key.* nme; valid keys: name"),
    ({"passes": [{"pass": "ptq"}, {"pass": "prune"}]}, UnknownOptionError, "one .tflite-producing pass .* comes last"),
    ({"passes": [{"sparsity": 0.5}]}, UnknownOptionError, 'needs pass = "NAME"'),
    ({"preprocess": "tff"}, InputContractError, "unknown preprocessing 'tff'; presets: raw"),
])
def test_bad_recipes_are_refused_naming_what_is_valid(table, error, message):
    with pytest.raises(error, match=message):
        recipe_from_dict(table)


def test_unknown_names_missing_files_and_bad_toml_are_one_line_errors(tmp_path):
    with pytest.raises(UnknownOptionError, match="unknown recipe 'int9'; built-in recipes: .*int8-qat"):
        load_recipe("int9")
    with pytest.raises(UnknownOptionError, match="does not exist"):
        load_recipe(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[passes]\n", encoding="utf-8")
    with pytest.raises(UnknownOptionError, match="broken.toml: not valid TOML"):
        load_recipe(broken)


def test_the_recipe_recorded_in_a_tflite_is_loaded_back(tflite_models, tmp_path):
    from edgesmith.runtime.metadata import write_metadata

    recorded = load_recipe("prune50-int8").as_dict()
    path = write_metadata(tflite_models["float"], {"recipe": recorded}, tmp_path / "m.tflite")
    assert load_recipe(path).as_dict() == recorded
    with pytest.raises(UnknownOptionError, match="records no recipe"):
        load_recipe(tflite_models["float"])
