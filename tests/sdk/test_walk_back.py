"""The walk back: a recipe whose .tflite misses its budget is run weaker, down to the int8 floor, in real runs."""

import json

import pytest

from edgesmith.recipes import load_recipe, recipe_from_dict
from edgesmith.walk_back import SENSITIVE_HALF, relaxations
from tests.converters.trained import residual_cnn
from tests.sdk.test_convert_cli import edgesmith

# 90 % of the channels removed and no fine-tuning: the digits CNN falls far below a 2-point budget
GUTTED = {"name": "gutted", "max_accuracy_drop": 2.0,
          "passes": [{"pass": "channel_prune", "ratio": 0.9, "epochs": 0}, {"pass": "ptq", "mode": "int8"}]}


def test_each_rung_relaxes_the_one_before_down_to_the_int8_floor():
    rungs = relaxations(load_recipe("raw-size-int4"))
    passes = [[step.as_dict() for step in rung.recipe.passes] for rung in rungs]
    assert passes[0][0]["ratio"] == 0.125 and passes[0][1]["weight_bits"] == 4
    assert rungs[1].change == SENSITIVE_HALF and rungs[1].ranked  # its layers are chosen during the walk
    assert passes[2][1]["weight_bits"] == 8
    assert [step["pass"] for step in passes[3]] == ["qat", "ptq"]
    assert passes[-1] == [{"pass": "ptq", "mode": "int8"}]
    fixed = [json.dumps(steps) for steps, rung in zip(passes, rungs) if not rung.ranked]
    assert len(set(fixed)) == len(fixed)  # no rung repeats another
    assert relaxations(load_recipe("int8-ptq")) == []  # the floor itself: nothing to walk back to
    fast = relaxations(load_recipe("fast-int8"))
    assert fast[0].change == "without channel_prune"  # depth pruning's trained stage is reused, its speed-up kept
    assert fast[0].recipe.passes[0] == load_recipe("fast-int8").passes[0]
    assert [[step.name for step in rung.recipe.passes] for rung in fast[1:]] == [
        ["depth_prune", "qat", "ptq"], ["qat", "ptq"], ["ptq"]]
    io_floor = relaxations(load_recipe("mcu-smallest-flash"))[-1].recipe.passes
    assert [step.as_dict() for step in io_floor] == [{"pass": "ptq", "mode": "int8", "io": "int8"}]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "cnn.keras"
    residual_cnn().save(path)
    return path


@pytest.mark.slow
def test_a_recipe_over_budget_walks_back_to_the_first_rung_that_holds(model_file, tmp_path):
    from edgesmith.pipeline import convert

    report = convert(model_file, recipe_from_dict(GUTTED), "builtin:digits", tmp_path)
    walk = report.walk_back
    assert walk is not None and walk.met
    first, *rest = walk.steps
    assert first["change"] == "as given" and first["accuracy_drop_pt"] > 2.0  # the recipe as given missed
    assert rest[-1]["accuracy_drop_pt"] <= 2.0 and walk.chosen == rest[-1]["recipe"] == report.recipe["name"]
    assert all(step["accuracy_drop_pt"] > 2.0 for step in rest[:-1])  # the walk stopped at the first that held
    assert report.verification.accuracy_drop_pt <= 2.0
    written = json.loads((tmp_path / "report.json").read_text())
    assert written["walk_back"]["chosen"] == walk.chosen and written["recipe"]["name"] == walk.chosen


@pytest.mark.slow
def test_no_walk_back_fails_on_the_recipe_as_given(model_file, tmp_path):
    recipe = tmp_path / "gutted.toml"
    recipe.write_text('name = "gutted"\nmax_accuracy_drop = 2.0\n[[passes]]\npass = "channel_prune"\nratio = 0.9\n'
                      'epochs = 0\n[[passes]]\npass = "ptq"\nmode = "int8"\n', encoding="utf-8")
    done = edgesmith("convert", model_file, "--recipe", recipe, "--data", "builtin:digits", "--out", tmp_path / "out",
                     "--no-walk-back", "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report.get("walk_back") is None and report["verification"]["accuracy_drop_pt"] > 2.0
