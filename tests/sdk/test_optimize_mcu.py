"""`edgesmith optimize --target mcu:PROFILE`: every candidate measured in TFLite Micro, the profile's SRAM and
flash as hard constraints."""

from __future__ import annotations

import json

import pytest

from edgesmith.mcu import check_mcu, load_mcu_profile
from tests.sdk.test_optimize import FAST, run
from tests.sdk.test_optimize_models import digits, saved, tiny_model

pytest.importorskip("tflite_micro")
pytestmark = pytest.mark.slow  # runs searches that train and convert


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return saved(tiny_model(digits(), epochs=2), tmp_path_factory.mktemp("model"))


def test_every_front_member_fits_the_microcontroller(model_path, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run(["optimize", str(model_path), *FAST, "--out", str(out), "--passes", "prune",
                             "--trials", "3", "--target", "mcu:nrf52840", "--json"], capsys)
    assert code == 0, err
    result = json.loads(stdout)
    profile = load_mcu_profile("nrf52840")
    assert result["met"] and result["trials"]["complete"] == 3 and result["front"]
    for row in result["front"]:
        assert row["precisions"] and set(row["precisions"].values()) == {"int8"}  # the int8-only default
        assert row["arena_limit_bytes"] == profile["arena_ram_bytes"]
        assert row["flash_limit_bytes"] == profile["flash_bytes"]
        assert row["arena_needed_bytes"] <= row["arena_limit_bytes"]
        assert row["flash_needed_bytes"] <= row["flash_limit_bytes"]
        assert row["latency_estimated"] and row["latency_ms"] > 0
        check = check_mcu(out / "front" / f"trial-{row['trial']:04d}.tflite", ["nrf52840"])  # measured again
        assert check["memory"]["arena_bytes"] == row["arena_bytes"] and check["profiles"][0]["fits"]
    assert (out / "model.tflite").is_file()


def test_too_little_sram_makes_every_candidate_infeasible(model_path, tmp_path, capsys):
    board = tmp_path / "tiny-board.toml"
    board.write_text('name = "tiny-board"\ncore = "cortex-m0plus"\nclock_mhz = 48\nram_bytes = 1024\n'
                     'flash_bytes = 1048576\n')
    out = tmp_path / "out"
    code, _, err = run(["optimize", str(model_path), *FAST, "--out", str(out), "--passes", "none", "--trials", "2",
                        "--target", f"mcu:{board}"], capsys)
    message = err.strip().splitlines()[-1]  # after the progress bars: one line
    assert code == 1 and message.startswith("error: no candidate fits tiny-board: the best, trial"), err
    assert "(1,024 B SRAM)" in message
    result = json.loads((out / "optimize.json").read_text())
    assert not result["met"] and result["pick"] is None and result["front"] == []
    assert result["best_effort"]["arena_needed_bytes"] > 1024 and not (out / "model.tflite").exists()


def test_energy_cannot_be_an_objective_on_a_microcontroller(model_path, tmp_path, capsys):
    code, _, err = run(["optimize", str(model_path), *FAST, "--out", str(tmp_path), "--objective", "energy",
                        "--target", "mcu:nrf52840"], capsys)
    assert code == 2 and "energy objective cannot be measured on mcu:nrf52840" in err
