"""`edgesmith convert` end to end: real training, real conversion, report files, errors and --resume."""

import json
import subprocess
import sys

import pytest

from tests.converters.trained import residual_cnn


def edgesmith(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "edgesmith", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "cnn.keras"
    residual_cnn().save(path)
    return path


def test_int8_qat_writes_a_verified_model_and_reports(model_file, tmp_path):
    done = edgesmith("convert", model_file, "--recipe", "int8-qat", "--data", "builtin:digits", "--out", tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for field in ("keras_accuracy", "tflite_accuracy", "top1_agreement", "tflite_path", "tflite_bytes",
                  "float_tflite_bytes", "stages"):
        assert field in report
    assert [s["name"] for s in report["stages"]] == ["source", "qat", "ptq:int8"]
    assert all({"params", "nonzero_params", "macs", "accuracy"} <= set(s) for s in report["stages"])
    assert abs(report["keras_accuracy"] - report["tflite_accuracy"]) <= 0.003
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert "| qat |" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "model.tflite").stat().st_size == report["tflite_bytes"]


def test_resume_skips_completed_stages(model_file, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('name = "r"\n[[passes]]\npass = "prune"\nsparsity = 0.5\nepochs = 1\n'
                      '[[passes]]\npass = "ptq"\nmode = "dynamic"\n')
    first = edgesmith("convert", model_file, "--recipe", recipe, "--data", "builtin:digits", "--out", tmp_path / "o")
    assert first.returncode == 0, first.stderr
    stage = tmp_path / "o" / "stages" / "01-prune.keras"
    stamp = stage.stat().st_mtime_ns
    again = edgesmith("convert", model_file, "--recipe", recipe, "--data", "builtin:digits", "--out", tmp_path / "o",
                      "--resume", "--json")
    assert again.returncode == 0, again.stderr
    assert stage.stat().st_mtime_ns == stamp  # loaded, not recomputed
    assert json.loads(again.stdout)["stages"][1]["nonzero_params"] < json.loads(again.stdout)["stages"][0]["params"]


@pytest.mark.parametrize("args, message", [
    (["--recipe", "tiny"], "built-in recipes: dynamic-int8, fp16, int8-ptq, int8-qat, max-compression, prune50-int8"),
    (["--data", "builtin:nope"], "unknown built-in data"),
])
def test_user_errors_exit_2_with_one_line(model_file, tmp_path, args, message):
    options = {"--recipe": "fp16", "--data": "builtin:digits"}
    options.update(dict(zip(args[::2], args[1::2])))
    done = edgesmith("convert", model_file, *sum(options.items(), ()), "--out", tmp_path)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]  # TF's C++ logs aside
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "model.tflite").exists()


def test_unknown_option_and_corrupt_model(model_file, tmp_path):
    recipe = tmp_path / "bad.toml"
    recipe.write_text('[[passes]]\npass = "prune"\nsparsit = 0.5\n')
    done = edgesmith("convert", model_file, "--recipe", recipe, "--data", "builtin:digits", "--out", tmp_path / "o")
    assert done.returncode == 2 and "valid options:" in done.stderr and "sparsity" in done.stderr
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04garbage")
    done = edgesmith("convert", broken, "--data", "builtin:digits", "--out", tmp_path / "o")
    assert done.returncode == 2 and "cannot load the model" in done.stderr


def test_shape_mismatch_shows_both_shapes(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.save(tmp_path / "m.keras")
    done = edgesmith("convert", tmp_path / "m.keras", "--data", "builtin:digits", "--out", tmp_path / "o")
    assert done.returncode == 2 and "[8, 8, 1]" in done.stderr and "[28, 28, 1]" in done.stderr


def test_demo_runs_offline_and_compares(tmp_path):
    done = edgesmith("demo", "--out", tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["compressed"]["gzip_bytes"] < result["float"]["gzip_bytes"]
    assert result["compressed"]["accuracy"] >= result["float"]["accuracy"] - 0.01
    assert result["compressed"]["latency_p50_ms"] > 0 and (tmp_path / "compressed" / "model.tflite").is_file()
