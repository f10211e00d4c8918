"""Models whose outputs are not one [batch, classes] array: two heads (classes and a regression), an
autoencoder's image. On unlabelled data every output is verified by its fidelity to the source model's, and the
recipes that train distil each head (soft labels for class scores, squared error for the rest)."""

import json

import keras
import numpy as np
import pytest

from edgesmith.data import ShapeMismatchError, load_data
from edgesmith.runtime import Model
from tests.sdk.test_convert_cli import edgesmith

pytestmark = pytest.mark.slow  # trains the sources and converts


def two_headed(images, digits) -> keras.Model:
    """A CNN with a class head (softmax, the digits) and a box head (4 values: the mean brightness)."""
    inputs = keras.Input(images.shape[1:])
    x = keras.layers.Conv2D(16, 3, activation="relu")(inputs)
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    classes = keras.layers.Dense(10, activation="softmax", name="digit")(x)
    box = keras.layers.Dense(4, name="box")(x)
    model = keras.Model(inputs, [box, classes])
    targets = [images.mean(axis=(1, 2)).repeat(4, axis=-1), digits]
    model.compile("adam", ["mse", "sparse_categorical_crossentropy"])
    model.fit(images, targets, epochs=20, verbose=0)
    return model


def autoencoder(images) -> keras.Model:
    """A small convolutional autoencoder: its output is an image of the input's shape."""
    inputs = keras.Input(images.shape[1:])
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", name="reconstruction")(x))
    model.compile("adam", "mse")
    model.fit(images, images, epochs=3, verbose=0)
    return model


def dense_autoencoder(vectors) -> keras.Model:
    """An MLP autoencoder of flat vectors (MLPerf Tiny's AD model is one): output [64] for input [64]."""
    inputs = keras.Input(vectors.shape[1:])
    x = keras.layers.Dense(16, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(vectors.shape[1], name="reconstruction")(x))
    model.compile("adam", "mse")
    model.fit(vectors, vectors, epochs=10, verbose=0)
    return model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("multi")
    digits = load_data("builtin:digits")
    x_train, x_test = (split[np.arange(len(split))] for split in (digits.x_train, digits.x_val))
    np.savez(folder / "images.npz", x_train=x_train, x_test=x_test)
    box_train, box_test = (x.mean(axis=(1, 2)).repeat(4, axis=-1) for x in (x_train, x_test))
    np.savez(folder / "targets.npz", x_train=x_train, x_test=x_test, y_train_box=box_train, y_test_box=box_test,
             y_train_digit=digits.y_train, y_test_digit=digits.y_val)
    np.savez(folder / "reconstruct.npz", x_train=x_train, x_test=x_test, y_train=x_train, y_test=x_test)
    noise = np.random.default_rng(0).uniform(0, 1, (100, *x_test.shape[1:])).astype(np.float32)  # anomalies
    np.savez(folder / "anomalies.npz", x_train=x_train, x_test=np.concatenate([x_test, noise]),
             y_train=np.zeros(len(x_train), np.int64), y_test=np.repeat([0, 1], [len(x_test), len(noise)]))
    flat_train, flat_test = x_train.reshape(len(x_train), -1), np.concatenate([x_test, noise]).reshape(-1, 64)
    np.savez(folder / "flat_anomalies.npz", x_train=flat_train, x_test=flat_test, y_train=np.zeros(len(x_train),
             np.int64), y_test=np.repeat([0, 1], [len(x_test), len(noise)]))
    keras.utils.set_random_seed(0)
    dense_autoencoder(flat_train).save(folder / "dense_autoencoder.keras")
    two_headed(x_train, digits.y_train).save(folder / "two_headed.keras")
    autoencoder(x_train).save(folder / "autoencoder.keras")
    return folder


_RUNS = {}  # (model, recipe, options, data) -> report: each conversion runs once for the tests that read it


def convert(files, model, recipe, *extra, data="images.npz") -> dict:
    """``edgesmith convert --json`` of ``files/model`` (once per arguments in this module); the report."""
    key = (model, recipe, extra, data)
    if key not in _RUNS:
        out = files / "runs" / str(len(_RUNS))
        done = edgesmith("convert", files / model, "--recipe", recipe, "--data", files / data, "--out", out,
                         "--json", *extra)
        assert done.returncode == 0, done.stderr
        _RUNS[key] = json.loads(done.stdout)
    return _RUNS[key]


def test_the_tflite_lists_its_outputs_in_the_keras_models_order(files):
    report = convert(files, "two_headed.keras", "int8-ptq")
    outputs = Model(report["tflite_path"]).predict(np.zeros((3, 8, 8, 1), np.float32))
    assert [list(o.shape) for o in outputs] == [[3, 4], [3, 10]]  # box first, as the model declares it
    checks = report["verification"]["outputs"]
    assert [(c["name"], c["shape"]) for c in checks] == [("box", [4]), ("digit", [10])]
    listed = edgesmith("inspect", report["tflite_path"], "--json")
    assert [o["shape"] for o in json.loads(listed.stdout)["outputs"]] == [[1, 4], [1, 10]]  # inspect: the same order
    assert checks[0]["top1_agreement"] is None and checks[1]["top1_agreement"] >= 0.9


@pytest.mark.parametrize("recipe", ["int8-ptq", "int8-qat"])
def test_each_head_of_a_two_headed_model_is_verified_and_the_worst_is_judged(files, recipe):
    report = convert(files, "two_headed.keras", recipe)
    checked = report["verification"]
    assert checked["tflite_accuracy"] is None and checked["verdict"] == "holds"
    assert checked["output_snr_db"] == min(c["snr_db"] for c in checked["outputs"]) >= 20.0
    if recipe == "int8-qat":  # distilled head by head, on no labels
        recovery = next(s for s in report["stages"] if s["name"] == "qat")["details"]["recovery"]
        assert recovery["distilled"] and recovery["epochs"] >= 1 and not recovery["on_targets"]


@pytest.mark.parametrize("model, data", [("two_headed.keras", "targets.npz"), ("autoencoder.keras",
                                                                                "reconstruct.npz")])
def test_training_uses_the_targets_of_every_output_beside_the_teacher(files, model, data):
    report = convert(files, model, "int8-qat", data=data)
    recovery = next(s for s in report["stages"] if s["name"] == "qat")["details"]["recovery"]
    assert recovery["distilled"] and recovery["on_targets"] and recovery["epochs"] >= 1
    assert report["verification"]["verdict"] == "holds"


def test_anomaly_labels_are_not_trained_on(files):
    report = convert(files, "autoencoder.keras", "int8-qat", data="anomalies.npz")
    recovery = next(s for s in report["stages"] if s["name"] == "qat")["details"]["recovery"]
    assert recovery["distilled"] and not recovery["on_targets"]  # 0/1 labels are no reconstruction to learn


def test_an_autoencoders_image_output_is_verified_by_snr(files):
    checked = convert(files, "autoencoder.keras", "int8-ptq")["verification"]
    assert [(c["name"], c["shape"]) for c in checked["outputs"]] == [("reconstruction", [8, 8, 1])]
    assert checked["output_snr_db"] >= 20.0 and checked["source_top1_agreement"] is None


@pytest.mark.parametrize("replacement", ["lowrank", "mobilenetize"])
def test_replacement_passes_and_distillation_keep_every_head(files, tmp_path, replacement):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f'name = "r"\n[[passes]]\npass = "{replacement}"\n[[passes]]\npass = "distill"\nepochs = 1\n'
                      '[[passes]]\npass = "ptq"\nmode = "int8"\n', encoding="utf-8")
    done = edgesmith("convert", files / "two_headed.keras", "--recipe", recipe, "--data", files / "images.npz",
                     "--out", tmp_path / "out", "--json", "--min-snr", "-100")  # any fidelity holds: heads count
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [check["name"] for check in report["verification"]["outputs"]] == ["box", "digit"]
    assert [stage["name"] for stage in report["stages"]][1:] == [replacement, "distill", "ptq:int8"]


def test_a_built_student_cannot_stand_in_for_a_two_headed_model_refused_before_any_work(files, tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('name = "r"\n[[passes]]\npass = "distill"\nstudent = "mobilenet_v2:alpha=0.35"\n'
                      '[[passes]]\npass = "ptq"\nmode = "int8"\n', encoding="utf-8")
    done = edgesmith("convert", files / "two_headed.keras", "--recipe", recipe, "--data", files / "images.npz",
                     "--out", tmp_path / "out")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "distill: a student built from 'mobilenet_v2:alpha=0.35' has one [classes] output, but the model " \
           "outputs box [4], digit [10]" in done.stderr and not (tmp_path / "out" / "stages").exists()


def test_a_head_at_chance_on_its_targets_is_refused_before_any_work(files, tmp_path):
    """Digit targets that are not the digits (shuffled): the head scores at chance on them: refused, exit 2."""
    arrays = dict(np.load(files / "targets.npz"))
    shuffled = {key: np.random.default_rng(0).permutation(arrays[key]) for key in ("y_train_digit", "y_test_digit")}
    np.savez(tmp_path / "shuffled.npz", **{**arrays, **shuffled})
    done = edgesmith("convert", files / "two_headed.keras", "--recipe", "int8-qat", "--data", tmp_path / "shuffled.npz",
                     "--out", tmp_path / "out")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "(output digit), at chance level" in done.stderr and not (tmp_path / "out" / "stages").exists()


def test_labels_for_a_two_headed_model_are_refused_naming_its_outputs(files):
    data = load_data("builtin:digits")
    with pytest.raises(ShapeMismatchError, match=r"outputs box \[None, 4\], digit \[None, 10\]; give the data "
                                                 "without labels"):
        data.check_model(keras.models.load_model(files / "two_headed.keras"))


def test_targets_per_output_are_scored_for_the_source_and_the_tflite(files):
    checks = convert(files, "two_headed.keras", "int8-ptq", data="targets.npz")["verification"]["outputs"]
    box, digit = checks
    assert (box["metric"], digit["metric"]) == ("mse", "accuracy")
    assert box["source_score"] < 0.05 and abs(box["change"]) < 0.01  # made-up box targets the model learnt a bit
    assert digit["change"] == round(digit["tflite_score"] - digit["source_score"], 4) and abs(digit["change"]) <= 0.02
    low, high = digit["drop_ci95_pt"]  # the head's drop, paired sample by sample as a classifier's run is
    assert low < -100 * digit["change"] < high and high - low < 10 and box["drop_ci95_pt"] is None


def test_the_metadata_names_each_outputs_task_and_metric(files):
    from edgesmith.runtime import read_metadata

    path = convert(files, "two_headed.keras", "int8-ptq", data="targets.npz")["tflite_path"]
    assert read_metadata(path)["outputs"] == [
        {"name": "box", "shape": [4], "task": "regression", "metric": "mse"},
        {"name": "digit", "shape": [10], "task": "classification", "metric": "accuracy"}]


def test_targets_shaped_like_the_one_output_are_regression_targets(files):
    (check,) = convert(files, "autoencoder.keras", "int8-ptq", data="reconstruct.npz")["verification"][
        "outputs"]
    assert check["metric"] == "mse" and check["tflite_score"] == pytest.approx(check["source_score"], abs=0.01)


def test_an_autoencoders_anomaly_labels_are_scored_by_the_auc_of_its_reconstruction_error(files):
    (check,) = convert(files, "autoencoder.keras", "int8-ptq", data="anomalies.npz")["verification"][
        "outputs"]
    assert check["metric"] == "auc" and check["source_score"] > 0.9  # noise reconstructs worse than digits
    assert abs(check["change"]) <= 0.01 and check["budget"] == 0.01 and check["verdict"] == "holds"


def test_a_flat_autoencoders_anomaly_labels_are_not_read_as_class_ids(files):
    """Output [64] for input [64]: its 0/1 labels could be class ids of 64 classes; an output that reconstructs
    the input makes them anomaly labels."""
    (check,) = convert(files, "dense_autoencoder.keras", "int8-ptq", data="flat_anomalies.npz")["verification"][
        "outputs"]
    assert check["metric"] == "auc" and check["source_score"] > 0.9 and check["verdict"] == "holds"


@pytest.mark.parametrize("arrays, message", [
    ({"y_train_boxes": 4, "y_test_boxes": 4}, "y_train_boxes names no output of the model (its outputs: box, digit)"),
    ({"y_train": 4, "y_test": 4}, "the model has 2 outputs (box, digit): name each one's targets y_train_<output>"),
    ({"y_train_box": 3, "y_test_box": 3}, "y_train_box: samples of shape [3] fit no output of shape [4]"),
    ({"y_train_box": 4}, "targets of box for one split only"),
])
def test_targets_that_fit_no_output_are_refused_in_one_line(files, tmp_path, arrays, message):
    x = np.zeros((6, 8, 8, 1), np.float32)
    np.savez(tmp_path / "bad.npz", x_train=x, x_test=x, **{key: np.zeros((6, width)) for key, width in arrays.items()})
    done = edgesmith("convert", files / "two_headed.keras", "--recipe", "int8-ptq", "--data", tmp_path / "bad.npz",
                     "--out", tmp_path / "out")
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "out" / "model.tflite").exists()


def test_a_metric_chosen_per_output_scores_it_and_its_budget_decides(files):
    report = convert(files, "two_headed.keras", "int8-ptq", "--metric", "box=mae", "--metric",
                     "digit=f1", data="targets.npz")
    box, digit = report["verification"]["outputs"]
    assert (box["metric"], box["budget"], digit["metric"], digit["budget"]) == ("mae", 10.0, "f1", 2.0)
    assert box["verdict"] == digit["verdict"] == report["verification"]["verdict"] == "holds"


def test_a_budget_chosen_with_the_metric_replaces_its_default(files):
    report = convert(files, "two_headed.keras", "int8-ptq", "--metric", "box=mae:25", "--metric",
                     "digit=accuracy:0.5", data="targets.npz")
    box, digit = report["verification"]["outputs"]
    assert (box["metric"], box["budget"], digit["metric"], digit["budget"]) == ("mae", 25.0, "accuracy", 0.5)
    assert report["verification"]["verdict"] == ("holds" if max(box["change"] * 100 / box["source_score"] - 25,
                                                                 digit["change"] * -100 - 0.5) <= 0 else "misses")


@pytest.mark.parametrize("choice, message", [
    ("box=mae:lots", "'mae:lots': the budget after ':' must be a number >= 0, in mae's units"),
    ("box=mae:-1", "'mae:-1': the budget after ':' must be a number >= 0"),
    ("box=accurate", "unknown metric 'accurate' for box; choose one of: accuracy, top5"),
    ("digit=mse", "--metric digit=mse scores values shaped like the output, but the targets of digit are class ids"),
    ("boxes=mae", "--metric boxes=mae: the data has no targets for boxes"),
    ("box", "'box' is not OUTPUT=METRIC"),
])
def test_a_metric_that_cannot_score_an_output_is_refused_in_one_line(files, tmp_path, choice, message):
    done = edgesmith("convert", files / "two_headed.keras", "--recipe", "int8-ptq", "--data", files / "targets.npz",
                     "--out", tmp_path, "--metric", choice)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / "model.tflite").exists()


def test_an_output_over_its_metric_budget_fails_the_run_naming_it():
    from edgesmith.converters.errors import AccuracyDropError
    from edgesmith.converters.verify import check_drop, output_verdict
    from edgesmith.runtime.report_schema import OutputCheck, Verification

    checked = Verification(samples=100, tflite_accuracy=None, outputs=[
        OutputCheck("box", [4], 31.0, 0.99, metric="mse", source_score=0.010, tflite_score=0.0105),
        OutputCheck("mask", [8, 8, 1], 19.0, 0.99)])
    with pytest.raises(AccuracyDropError, match="output mask \\[8, 8, 1\\]: SNR 19.0 dB, cosine 0.9900 .minimum 20 dB.: "
                                                "misses"):
        check_drop(checked, 1.0, "out/model.tflite", min_snr_db=20.0)
    assert [c.verdict for c in checked.outputs] == ["holds", "misses"] and checked.verdict == "misses"
    strict = OutputCheck("box", [4], 31.0, 0.99, metric="mse", source_score=0.010, tflite_score=0.0105, budget=2.0)
    assert output_verdict(strict, 1.0) == ("misses", 2.0)  # 5 % worse: within mse's default 10 %, not the user's 2 %


def test_debug_matches_every_head_and_measures_each_layer_on_all_outputs(files):
    path = convert(files, "two_headed.keras", "int8-ptq")["tflite_path"]
    done = edgesmith("debug", files / "two_headed.keras", path, "--data", files / "images.npz",
                     "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["layer"]: row for row in json.loads(done.stdout)["layers"]}
    assert {"box", "digit"} <= set(rows) and rows["digit"]["matched_by"] == rows["box"]["matched_by"] == "output"
    assert all(row["output_snr_db"] is not None and row["output_snr_db"] > 20 for row in rows.values())
    assert rows["digit"]["cosine"] > 0.99  # the softmax's tensor, not the logits before it


def test_tflite_micro_runs_every_head_against_litert_reference_kernels_without_labels(files):
    path = convert(files, "two_headed.keras", "int8-ptq")["tflite_path"]
    done = edgesmith("mcu", path, "--profile", "esp32s3", "--data", files / "images.npz",
                     "--json")
    assert done.returncode == 0, done.stderr
    compared = json.loads(done.stdout)["accuracy"]
    assert compared["outputs"] == 2 and compared["samples"] == 359 and "tflm_accuracy" not in compared
    assert compared["max_output_difference"] <= 1 / 64  # a few int8 steps of the box head, at most


@pytest.mark.parametrize("data, extra", [("targets.npz", ("--max-accuracy-drop", "3")), ("images.npz",
                                                                                      ("--min-snr", "10"))])
def test_optimize_ranks_a_model_verified_output_by_output_by_its_worst_outputs_share_of_its_budget(files, tmp_path,
                                                                                                   data, extra):
    done = edgesmith("optimize", files / "two_headed.keras", "--data", files / data, "--passes", "none",
                     "--trials", "3", "--runs", "5", "--warmup", "1", "--out", tmp_path, "--json", *extra)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["met"] and result["front"] and (tmp_path / "model.tflite").is_file()
    assert all(0 <= row["budget_used"] <= 1 and row["accuracy_drop_pt"] is None for row in result["front"])
    if data == "images.npz":  # no targets: each output judged by its SNR against --min-snr
        assert result["pick"]["budget_used"] > 0.1  # 10 dB over the worst output's SNR (int8 heads: 15-40 dB)


def test_optimize_fails_naming_the_worst_outputs_share_when_no_candidate_holds(files, tmp_path):
    done = edgesmith("optimize", files / "two_headed.keras", "--data", files / "images.npz", "--passes", "none",
                     "--trials", "1", "--runs", "5", "--warmup", "1", "--out", tmp_path, "--min-snr", "60")
    assert done.returncode == 1 and "no candidate holds every output's budget: the best, trial 0, uses" in done.stderr


def test_classify_reads_the_head_the_metadata_names_a_classifier_and_refuses_when_none_is(files, tmp_path):
    from PIL import Image

    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(tmp_path / "digit.png")
    named = convert(files, "two_headed.keras", "int8-ptq", data="targets.npz")["tflite_path"]
    done = edgesmith("classify", named, tmp_path / "digit.png", "--top-k", "10", "--json")
    assert done.returncode == 0, done.stderr
    scores = [top["score"] for top in json.loads(done.stdout)[0]["top"]]
    assert len(scores) == 10 and abs(sum(scores) - 1.0) < 0.02  # the softmax head, not the box's 4 values
    unnamed = convert(files, "two_headed.keras", "int8-ptq")["tflite_path"]
    done = edgesmith("classify", unnamed, tmp_path / "digit.png")
    assert done.returncode == 2 and "names no single one as class scores" in done.stderr, done.stderr


def test_a_minimum_snr_of_zero_is_a_choice_not_the_default():
    from types import SimpleNamespace

    from edgesmith.pipeline import DEFAULT_MIN_SNR_DB, Budget

    unlabelled, labelled = SimpleNamespace(labeled=False), SimpleNamespace(labeled=True)
    assert Budget.for_data(1.0, unlabelled, 0.0) == (1.0, 0.0)
    assert Budget.for_data(1.0, unlabelled) == (1.0, DEFAULT_MIN_SNR_DB)
    assert Budget.for_data(1.0, labelled, 5) == (1.0, None)
