"""`edgesmith convert` end to end: real training, real conversion, report files, errors, Ctrl-C and --resume."""

import json
import signal
import subprocess
import sys
import time

import pytest

from edgesmith.data import load_data
from edgesmith.runtime.report_schema import SCHEMA_VERSION
from tests.converters.trained import residual_cnn

pytestmark = pytest.mark.slow  # runs edgesmith convert and demo, which train and convert


def edgesmith(*args, timeout=300):
    return subprocess.run(edgesmith_argv(*args), capture_output=True, text=True, timeout=timeout)


def edgesmith_argv(*args):
    return [sys.executable, "-m", "edgesmith", *map(str, args)]


PRUNE_THEN_CLUSTER = ('name = "r"\n[[passes]]\npass = "prune"\nsparsity = 0.5\nepochs = 1\n'
                      '[[passes]]\npass = "cluster"\nclusters = 8\nepochs = 2\n'
                      '[[passes]]\npass = "ptq"\nmode = "dynamic"\n')
NOISE = ("absl::InitializeLog", "oneDNN custom operations", "retracing", "XNNPACK delegate")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "cnn.keras"
    residual_cnn().save(path)
    return path


def test_int8_qat_writes_a_verified_model_and_reports(model_file, tmp_path):
    done = edgesmith("convert", model_file, "--recipe", "int8-qat", "--data", "builtin:digits", "--out", tmp_path,
                     "--json", "--no-walk-back")  # the recipe as given, whatever the verdict on 359 digits
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["verification"]["verdict"] in ("holds", "unresolved") and report.get("walk_back") is None
    assert (report["kind"], report["schema_version"]) == ("convert", SCHEMA_VERSION)
    assert {"keras_accuracy", "tflite_accuracy", "top1_agreement", "samples"} <= set(report["verification"])
    assert {"tflite_path", "tflite_bytes", "float_tflite_bytes", "stages"} <= set(report)
    assert [s["name"] for s in report["stages"]] == ["source", "qat", "ptq:int8"]
    assert all(s["accuracy"] is not None and s["params"] > 0 for s in report["stages"])  # each stage scored (once)
    assert report["stages"][1]["accuracy"] == report["verification"]["keras_accuracy"]
    # the 0.3 pt fidelity bound is checked on all 1,797 digits in tests/converters/test_qat.py; on the
    # 359 validation digits here one flipped near-tie is already 0.28 pt
    assert report["verification"]["top1_agreement"] >= 0.99
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert "| qat |" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "model.tflite").stat().st_size == report["tflite_bytes"]
    assert not [line for line in done.stderr.splitlines() if any(noise in line for noise in NOISE)]


def test_layers_qat_keeps_in_float_are_in_the_metadata_and_report(tmp_path):
    import keras

    from edgesmith.runtime import read_metadata

    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.LayerNormalization(name="norm")(keras.layers.Conv2D(8, 3, activation="relu")(inputs))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    digits = load_data("builtin:digits")
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(digits.x_train, digits.y_train, epochs=3, verbose=0)  # a source model at chance is refused
    model.save(tmp_path / "m.keras")
    done = edgesmith("convert", tmp_path / "m.keras", "--recipe", "int8-qat", "--data", "builtin:digits",
                     "--out", tmp_path / "o")
    assert done.returncode in (0, 1), done.stderr  # a briefly trained model may miss max_accuracy_drop; files are written
    metadata = read_metadata(tmp_path / "o" / "model.tflite")
    assert metadata["float_layers"] == ["norm"]
    assert [s["details"]["float_layers"] for s in metadata["metrics"]["stages"] if s["name"] == "qat"] == [["norm"]]
    assert "kept in float by quantization-aware training (1): norm" in (tmp_path / "o" / "report.md").read_text()
    assert "kept in float" in done.stdout
    assert "left in float (edgesmith cannot quantize these layers): norm" in done.stderr  # real warnings still show


def test_ctrl_c_leaves_no_partial_files_and_resume_reuses_the_finished_stage(model_file, tmp_path):
    recipe, out = tmp_path / "r.toml", tmp_path / "o"
    recipe.write_text(PRUNE_THEN_CLUSTER)
    argv = edgesmith_argv("convert", model_file, "--recipe", recipe, "--data", "builtin:digits", "--out", out)
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first_marker = out / "stages" / "01-prune.json"
    deadline = time.monotonic() + 600  # the first stage trains: slow on a loaded 2-core machine
    while not first_marker.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.poll() is None and first_marker.exists(), "the first stage never completed"
    run.send_signal(signal.SIGINT)  # what Ctrl-C sends, while the second stage is measured or trained
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] in ("Aborted.", "interrupted")
    written = sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file())
    assert written == ["stages/01-prune.json", "stages/01-prune.keras"]  # no model.tflite, no temp files

    stamp = (out / "stages" / "01-prune.keras").stat().st_mtime_ns
    resumed = edgesmith(*argv[3:], "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "stages" / "01-prune.keras").stat().st_mtime_ns == stamp  # loaded, not trained again
    assert "prune: reused" in resumed.stderr and "prune..." not in resumed.stderr and "cluster..." in resumed.stderr
    assert (out / "model.tflite").is_file() and (out / "stages" / "02-cluster.json").is_file()
    pruned = json.loads((out / "report.json").read_text())["stages"][1]
    assert pruned["name"] == "prune" and pruned["nonzero_params"] < 0.6 * pruned["params"]


def test_fast_int8_removes_blocks_and_channels_from_the_written_tflite(model_file, tmp_path):
    import keras

    from edgesmith.converters.ptq import float_tflite
    from edgesmith.runtime.tflite_file import graph_macs

    done = edgesmith("convert", model_file, "--recipe", "fast-int8", "--data", "builtin:digits", "--out", tmp_path,
                     "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    delivered = report["recipe"]["name"]  # fast-int8, or a rung of its walk back (then named fast-int8~N)
    names = [s["name"] for s in report["stages"]]
    if delivered == "fast-int8":
        assert names == ["source", "depth_prune", "channel_prune", "qat", "ptq:int8"]
        depth, pruned = report["stages"][1], report["stages"][2]
        assert depth["details"]["blocks"] >= 1 and len(depth["details"]["removed"]) <= depth["details"]["blocks"]
        assert depth["details"]["speedup"] > 1.0  # measured on the int8 graphs, not counted
        assert pruned["macs"] * 1.5 <= depth["macs"] * 1.01
        # counted again on the written graph, independently of the Keras-side counter
        (tmp_path / "source.tflite").write_bytes(float_tflite(keras.models.load_model(model_file)))
        assert graph_macs(tmp_path / "model.tflite") * 1.5 <= graph_macs(tmp_path / "source.tflite")
    else:
        assert report["walk_back"]["met"] and report["walk_back"]["steps"][0]["recipe"] == "fast-int8"
    assert report["verification"]["accuracy_drop_pt"] <= 1.5


def test_stage_progress_says_reused_only_for_a_resumed_stage():
    """A pass finishing a step at its first report (channel_prune's ``(stage, 1, 1)``) is not a reused stage."""
    import io

    from edgesmith.commands.progress import Progress

    stream = io.StringIO()
    progress = Progress(stream=stream)
    progress("prune", 0, 0)  # what convert reports for a stage --resume reused
    progress("channel_prune:fine_tune", 5, 10)
    progress("channel_prune", 1, 1)
    progress("qat", 0, None)
    progress.close()
    lines = [line for line in stream.getvalue().replace("\r", "\n").splitlines() if line.strip()]
    assert "prune: reused" in lines and "qat..." in lines
    assert not any(line.startswith("channel_prune: reused") for line in lines)


@pytest.mark.parametrize("args, message", [
    (["--recipe", "tiny"], "built-in recipes: dynamic-int8, fast-int8, fp16, int8-ptq, int8-qat, max-compression, mcu-int8"),
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


def test_convert_help_names_every_builtin_recipe():
    from edgesmith.recipes import builtin_recipes

    shown = "".join(edgesmith("convert", "--help").stdout.split())  # click wraps lines at hyphens
    assert [name for name in builtin_recipes() if name not in shown] == []


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
    assert result["compressed"]["accuracy"] >= result["float"]["accuracy"] - 0.015  # fast-int8: a 1.5 pt budget
    assert result["compressed"]["latency_p50_ms"] > 0 and (tmp_path / "compressed" / "model.tflite").is_file()
    assert not [line for line in done.stderr.splitlines() if any(noise in line for noise in NOISE)]


def test_ctrl_c_while_training_on_decoded_images_exits_instead_of_hanging(tmp_path):
    """Batches decoded from image files keep a tf.data thread inside Python, waiting for the GIL; the
    interpreter's shutdown freed that thread's iterator while holding the GIL and waited forever."""
    import keras
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, brightness in (("dark", 40), ("bright", 200)):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(80):
            pixels = np.clip(rng.normal(brightness, 30, (96, 96, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / label / f"{i}.png")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((96, 96, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    uniform = np.concatenate([np.full((64, 96, 96, 3), 200.0, np.float32), np.full((64, 96, 96, 3), 40.0, np.float32)])
    model.fit(uniform, np.repeat([0, 1], 64), epochs=30, verbose=0)  # folders sort: bright=0, dark=1
    model.save(tmp_path / "m.keras")
    # polynomial: the sparsity rises to the last epoch, so early stopping cannot end the run before the interrupt
    (tmp_path / "r.toml").write_text('name = "r"\n[[passes]]\npass = "prune"\nsparsity = 0.5\nepochs = 40\n'
                                     'sparsity_schedule = "polynomial"\n')

    for attempt in range(2):  # the hang needs the interrupt to land while a batch was being decoded
        out = tmp_path / f"o{attempt}"
        run = subprocess.Popen(edgesmith_argv("convert", tmp_path / "m.keras", "--recipe", tmp_path / "r.toml",
                                              "--data", tmp_path / "images", "--out", out),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in run.stderr:
            if line.startswith("prune...") or run.poll() is not None:
                break
        time.sleep(2.0 + attempt)  # into the training epochs
        assert run.poll() is None, "the run ended before it could be interrupted"
        run.send_signal(signal.SIGINT)
        try:
            _, stderr = run.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            run.kill()
            pytest.fail("edgesmith hung after Ctrl-C")
        assert run.returncode == 130, stderr
        assert not (out / "model.tflite").exists()


def test_a_failed_run_removes_the_scratch_copy_of_a_compressed_npz(tmp_path):
    """A failing command ends without the interpreter's shutdown (see the Ctrl-C test above), but what that
    shutdown runs first still runs: the inflated copy of a compressed array is removed."""
    import os

    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez_compressed(tmp_path / "big.npz", x_train=rng.integers(0, 255, (800, 96, 96, 3), dtype=np.uint8),
                        y_train=rng.integers(0, 10, 800), x_test=rng.integers(0, 255, (50, 96, 96, 3), dtype=np.uint8),
                        y_test=rng.integers(0, 10, 50))  # x_train is above samples.SMALL_BYTES: read from a copy
    keras.Sequential([keras.Input((96, 96, 3)), keras.layers.GlobalAveragePooling2D(),
                      keras.layers.Dense(10, activation="softmax")]).save(tmp_path / "chance.keras")
    (tmp_path / "tmp").mkdir()
    done = subprocess.run(edgesmith_argv("convert", tmp_path / "chance.keras", "--recipe", "int8-ptq", "--data",
                                         tmp_path / "big.npz", "--out", tmp_path / "o"),
                          capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(tmp_path / "tmp")})
    assert done.returncode == 2 and "at chance level" in done.stderr, done.stderr
    assert list((tmp_path / "tmp").iterdir()) == []
