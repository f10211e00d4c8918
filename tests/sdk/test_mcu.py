"""``edgesmith mcu``: TFLite Micro runs the model, its memory against microcontroller profiles, accuracy and
bit-exact agreement with LiteRT's reference kernels, the latency estimate, and the firmware export."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from edgesmith.cli import cli, main
from edgesmith.mcu import check_mcu, export_firmware, list_mcu_profiles, load_mcu_profile
from edgesmith.mcu.cores import CORES, estimate_ms
from edgesmith.mcu.export import model_ops
from edgesmith.mcu.ops import BUILTIN_METHODS, resolver_calls
from edgesmith.runtime.errors import InputError, UnsupportedOpError
from edgesmith.runtime.metadata import write_metadata
from tests.assets import real_tflite

pytest.importorskip("tflite_micro")

BUILT_IN = ["esp32s3", "nrf52840", "rp2040", "stm32f746", "stm32h743", "stm32u385"]


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def exit_code_and_output(capsys, *args):
    """``edgesmith ARGS`` through the real entry point: (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as done:
        code = done.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_built_in_profile_loads_with_its_core_timing():
    assert list_mcu_profiles() == BUILT_IN
    for name in BUILT_IN:
        profile = load_mcu_profile(name)
        assert profile["name"] == name and profile["core"] in CORES
        assert 0 < profile["arena_ram_bytes"] <= profile["ram_bytes"] < profile["flash_bytes"]
        assert profile["timing"] is CORES[profile["core"]]
    assert not load_mcu_profile("esp32s3")["timing"].calibrated
    assert load_mcu_profile("stm32u385")["clock_mhz"] == 96.0


@pytest.mark.parametrize("missing", ["name", "ram_bytes", "flash_bytes", "clock_mhz", "core"])
def test_a_user_profile_missing_a_field_is_one_line_exit_2(tmp_path, tflite_models, missing, capsys):
    fields = {"name": '"board"', "ram_bytes": "65536", "flash_bytes": "262144", "clock_mhz": "48",
              "core": '"cortex-m4"'}
    path = tmp_path / "board.toml"
    path.write_text("".join(f"{key} = {value}\n" for key, value in fields.items() if key != missing))
    with pytest.raises(InputError, match=f"'{missing}' is missing"):
        load_mcu_profile(path)
    code, _, err = exit_code_and_output(capsys, "mcu", str(tflite_models["int8"]), "--profile", str(path))
    assert code == 2 and err.count("\n") == 1 and f"'{missing}' is missing" in err


def test_a_user_profile_with_its_own_cycles_per_mac(tmp_path):
    path = tmp_path / "board.toml"
    path.write_text('name = "b"\nram_bytes = 1\nflash_bytes = 2\nclock_mhz = 10\ncore = "riscv"\ncycles_per_mac = 3\n')
    assert load_mcu_profile(path)["timing"].cycles_per_mac == 3.0
    path.write_text('name = "b"\nram_bytes = 1\nflash_bytes = 2\nclock_mhz = 10\ncore = "riscv"\n')
    with pytest.raises(InputError, match="unknown core 'riscv'"):
        load_mcu_profile(path)


def test_the_latency_estimate_reproduces_its_anchor_within_the_spread_of_three_models():
    # EK-RA6M4 (MLPerf Tiny v0.7): KWS ran at 19.774 inferences/s on 2,656,768 MACs at 200 MHz
    assert estimate_ms(2_656_768, 200, CORES["cortex-m33"]) == pytest.approx(1000 / 19.774, rel=0.25)
    assert CORES["cortex-m0plus"].cycles_per_mac > CORES["cortex-m4"].cycles_per_mac > CORES["cortex-m7"].cycles_per_mac


def test_fits_exit_0_with_the_numbers(tflite_models):
    result = run("mcu", str(tflite_models["int8"]), "--profile", "nrf52840", "--json")
    assert result.exit_code == 0
    report = json.loads(result.output)
    memory, row = report["memory"], report["profiles"][0]
    assert memory["arena_recorded_bytes"] == memory["arena_smallest_bytes"] == memory["arena_bytes"] > 0
    assert memory["model_bytes"] == tflite_models["int8"].stat().st_size
    assert row["ram"]["needed_bytes"] >= 1.2 * memory["arena_bytes"] and row["fits"]
    assert row["latency_estimate"]["estimated"] and row["latency_estimate"]["ms"] > 0


def test_does_not_fit_exit_1_with_the_numbers(tflite_models, tmp_path, capsys):
    path = tmp_path / "tiny.toml"
    path.write_text('name = "tiny"\nram_bytes = 2048\nflash_bytes = 1000000\nclock_mhz = 16\ncore = "cortex-m0plus"\n')
    code, out, err = exit_code_and_output(capsys, "mcu", str(tflite_models["int8"]), "--profile", str(path))
    assert code == 1
    assert re.search(r"tiny\s+[\d,]+ / 2,048 !", out) and "does not fit tiny" in err
    assert "ESTIMATE" in out


def test_an_op_tflm_lacks_is_one_line_exit_2(capsys):
    code, _, err = exit_code_and_output(capsys, "mcu", str(real_tflite("face_detection_full_range_sparse")))
    assert code == 2
    assert err.strip().endswith("TFLite Micro has no kernel for op DENSIFY") and err.count("\n") == 1


def test_accuracy_and_bit_exact_agreement_with_litert_reference_kernels(tflite_models, tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "images.npz"
    np.savez(data, x=rng.integers(0, 256, (60, 16, 16, 3), dtype=np.uint8), y=rng.integers(0, 4, 60))
    report = check_mcu(tflite_models["int8"], ["stm32f746"], data=str(data))
    accuracy = report["accuracy"]
    assert accuracy["samples"] == 12  # the 20 % held out
    assert accuracy["outputs_differing"] == 0 and accuracy["top1_agreement"] == 1.0
    assert accuracy["tflm_accuracy"] == accuracy["reference_accuracy"]


def test_the_resolver_table_covers_the_ops_and_refuses_the_rest():
    assert resolver_calls(["CONV_2D", "DEPTHWISE_CONV_2D", "TFLM_DECODE"]) == [
        "AddConv2D", "AddDepthwiseConv2D", "AddDecode"]
    assert all(re.fullmatch(r"Add[A-Z][A-Za-z0-9]+", method) for method in BUILTIN_METHODS.values())
    with pytest.raises(UnsupportedOpError, match="DENSIFY"):
        resolver_calls(["CONV_2D", "DENSIFY"])


def test_export_compiles_and_its_resolver_matches_the_op_list(tflite_models, tmp_path):
    model = tmp_path / "labelled.tflite"
    write_metadata(tflite_models["int8"], {"labels": ["cat", "dog", 'say "hi"', "ü"],
                   "preprocessing": {"size": [16, 16], "color": "rgb", "mean": [0, 127.5, 1e-3], "std": [255]}}, model)
    out = tmp_path / "firmware"
    files = export_firmware(model, out, arena_bytes=4096)
    assert set(files) == {"README.md", "model_config.h", "model_data.cc", "model_data.h", "model_ops.h"}
    ops = model_ops(model.read_bytes())
    resolver = (out / "model_ops.h").read_text()
    assert f"MicroMutableOpResolver<kModelOpCount>" in resolver and f"kModelOpCount = {len(ops)};" in resolver
    assert re.findall(r"resolver\.(Add\w+)\(\)", resolver) == [BUILTIN_METHODS[name] for name in ops]
    config = (out / "model_config.h").read_text()
    assert "#define MODEL_ARENA_BYTES 4096" in config and "MODEL_INPUT0_SCALE" in config
    assert '"say \\"hi\\""' in config and "kModelMean[] = {0.0f, 127.5f, 0.001f}" in config and "kModelStd[] = {255.0f}" in config
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("no g++ on this machine")
    (out / "check.cc").write_text(
        '#include "model_data.h"\n#include "model_config.h"\n'
        "static_assert(MODEL_LABEL_COUNT == 4, \"labels\");\n"
        "int first_byte() { return g_model[4] + g_model_len + kModelInput0Shape[1] + (int)kModelMean[0]"
        " + (kModelLabels[0][0] == 'c'); }\n")
    for source in ("model_data.cc", "check.cc"):
        done = subprocess.run([compiler, "-std=c++17", "-Wall", "-Werror", "-Wno-unused-variable", "-c", source,
                               "-o", f"{source}.o"], cwd=out, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert (out / "model_data.cc.o").stat().st_size >= model.stat().st_size


def test_export_replaces_an_earlier_export_and_refuses_another_folder(tflite_models, tmp_path):
    out = tmp_path / "fw"
    export_firmware(tflite_models["int8"], out, arena_bytes=1024)
    export_firmware(tflite_models["int8"], out, arena_bytes=2048)
    assert "MODEL_ARENA_BYTES 2048" in (out / "model_config.h").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["fw"]  # no temp folder left behind
    other = tmp_path / "src"
    other.mkdir()
    (other / "main.c").write_text("int main;")
    with pytest.raises(InputError, match="not an earlier edgesmith firmware export"):
        export_firmware(tflite_models["int8"], other, arena_bytes=1024)


def test_cli_export_writes_the_arena_with_its_margin(tflite_models, tmp_path):
    result = run("mcu", str(tflite_models["int8"]), "--profile", "stm32u385", "--export", str(tmp_path / "fw"),
                 "--margin", "0.5", "--json")
    report = json.loads(result.output)
    arena = report["export"]["arena_bytes"]
    assert arena % 16 == 0 and arena >= 1.5 * report["memory"]["arena_bytes"]
    assert f"#define MODEL_ARENA_BYTES {arena}" in (tmp_path / "fw" / "model_config.h").read_text()
