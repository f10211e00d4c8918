"""Per-layer sensitivity: the measurements rank the layer that really is fragile, and the CLI shows them."""

from __future__ import annotations

import json

import pytest

from edgesmith.cli import main
from edgesmith.optimize import format_sensitivity, sensitivity
from tests.sdk.test_optimize_models import digits, saved, tiny_model

pytestmark = pytest.mark.slow  # trains a model and converts it layer by layer


@pytest.fixture(scope="module")
def data():
    return digits()


def test_pruning_and_channel_sensitivity_grow_with_strength(data):
    model = tiny_model(data)
    before = [w.copy() for w in model.get_weights()]
    report = sensitivity(model, data, kinds=("pruning", "channels"), sparsities=(0.3, 0.95), channel_ratios=(0.25, 0.9))
    rows = {row["layer"]: row for row in report["layers"]}
    assert set(rows) == {"conv1", "conv2", "fc1", "head"}
    head = rows["head"]["pruning_drop_pt"]
    assert head["0.95"] > head["0.3"] and head["0.95"] > 20  # 95% of the classifier's weights gone
    assert "channel_drop_pt" not in rows["head"]  # output channels are never removed
    assert rows["fc1"]["channel_drop_pt"]["0.9"] > rows["fc1"]["channel_drop_pt"]["0.25"]
    assert all((a == b).all() for a, b in zip(before, model.get_weights()))  # the model is left as it was
    assert "sparsity 0.95" in format_sensitivity(report)


def test_quantization_sensitivity_points_at_the_outlier_layer(data, tmp_path, capsys):
    path = saved(tiny_model(data, outlier=True), tmp_path)
    plot = tmp_path / "sensitivity.png"
    main(["sensitivity", str(path), "--data", "builtin:digits", "--kind", "quantization", "--plot", str(plot), "--json"])
    report = json.loads(capsys.readouterr().out)
    rows = {row["layer"]: row for row in report["layers"]}
    # the outlier lives in fc1's output: fc1 alone at int8 ruins the model, conv1 alone at int8 does not
    assert rows["fc1"]["int8_alone_drop_pt"] > 2.0
    assert rows["fc1"]["int8_alone_drop_pt"] > rows["conv1"]["int8_alone_drop_pt"] + 1.0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
