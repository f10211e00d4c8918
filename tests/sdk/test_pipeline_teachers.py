"""Teachers travel with stages: channel_prune -> distill uses the unpruned model, also after --resume."""

import pytest

from edgesmith.pipeline import convert
from edgesmith.recipes import recipe_from_dict
from tests.converters.trained import residual_cnn

pytestmark = pytest.mark.slow  # runs a recipe that trains

PRUNE_THEN_DISTILL = recipe_from_dict({"name": "prune-distill", "passes": [
    {"pass": "channel_prune", "ratio": 0.25, "epochs": 0},
    {"pass": "distill", "epochs": 1},
]})


def _distill_stage(report):
    return next(stage for stage in report.stages if stage.name == "distill")


def test_distill_after_channel_prune_learns_from_the_unpruned_model_also_when_resumed(tmp_path):
    model = residual_cnn()
    report = convert(model, PRUNE_THEN_DISTILL, "builtin:digits", tmp_path)
    assert _distill_stage(report).details["teacher"] == model.name
    assert (tmp_path / "stages" / "01-channel_prune.teacher.keras").is_file()
    (tmp_path / "stages" / "02-distill.json").unlink()  # distill reruns; channel_prune is reused from disk
    resumed = convert(model, PRUNE_THEN_DISTILL, "builtin:digits", tmp_path, resume=True)
    assert _distill_stage(resumed).details["teacher"] == model.name
    assert resumed.stages[1].params == report.stages[1].params
