"""The input contract end to end: models that normalize inside, presets, refusal at chance, sequences, bad data."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest

from edgesmith.data import DataError, load_data
from edgesmith.pipeline import convert
from edgesmith.preprocessing import InputContractError, min_source_accuracy, preprocessing_from
from edgesmith.runtime import Classifier, read_metadata

pytestmark = pytest.mark.slow  # trains models and converts them


def edgesmith(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "edgesmith", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def digit_pixels(tmp_path_factory):
    """sklearn's real 8x8 digits as uint8 RGB pixels in an .npz, the way a user ships images."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.repeat((digits.images * (255 / 16)).round().astype(np.uint8)[..., None], 3, axis=-1)
    path = tmp_path_factory.mktemp("data") / "digits_rgb.npz"
    np.savez(path, x=pixels, y=digits.target)
    return path


def _trained_cnn(head_layers, pixels_path, normalize, epochs=12, seed=0):
    """A small CNN trained on the pixels as ``normalize`` turns them into inputs."""
    import keras

    keras.utils.set_random_seed(seed)
    with np.load(pixels_path) as archive:
        x, y = archive["x"], archive["y"]
    inputs = keras.Input((8, 8, 3))
    hidden = inputs
    for layer in head_layers:
        hidden = layer(hidden)
    hidden = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(hidden)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(hidden))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(normalize(x.astype(np.float32)), y, epochs=epochs, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def rescaling_model(digit_pixels):
    """The Keras tutorial's layout: Rescaling(1/255) first, so the model takes raw pixels."""
    import keras

    return _trained_cnn([keras.layers.Rescaling(1 / 255, name="scale")], digit_pixels, lambda x: x)


@pytest.fixture(scope="module")
def symmetric_model(digit_pixels):
    """A model that expects the caller to feed pixels / 127.5 - 1 (keras.applications MobileNetV2's convention)."""
    return _trained_cnn([], digit_pixels, lambda x: x / 127.5 - 1)


def test_in_model_normalization_is_read_and_recorded_for_the_device(rescaling_model, digit_pixels, tmp_path):
    report = convert(rescaling_model, "fp16", str(digit_pixels), tmp_path)
    assert report.source_accuracy > 0.9
    metadata = read_metadata(tmp_path / "model.tflite")
    assert metadata["preprocessing"]["mean"] == [0.0] and metadata["preprocessing"]["std"] == [1.0]
    assert metadata["preprocessing"]["chosen_by"] == "model" and "Rescaling 'scale'" in metadata["preprocessing"]["reason"]
    with np.load(digit_pixels) as archive:  # the device feeds raw pixels too: same answers as Keras
        image, label = archive["x"][0], archive["y"][0]
    top = Classifier(tmp_path / "model.tflite").classify(image, top_k=1)[0][0]
    assert top == str(np.argmax(rescaling_model(image[None].astype(np.float32))[0])) == str(label)


def test_a_user_preset_feeds_a_model_that_expects_the_caller_to_normalize(symmetric_model, digit_pixels, tmp_path):
    done = edgesmith_convert(symmetric_model, digit_pixels, tmp_path, "--preprocess", "tf")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["source_accuracy"] > 0.9 and report["verification"]["tflite_accuracy"] > 0.9
    recorded = read_metadata(tmp_path / "out" / "model.tflite")["preprocessing"]
    assert (recorded["mean"], recorded["std"], recorded["preset"], recorded["chosen_by"]) == ([127.5], [127.5], "tf", "user")


def test_a_source_model_at_chance_is_refused_before_any_work(rescaling_model, digit_pixels, tmp_path):
    """Fed 0..1 although it divides by 255 itself, the model sees every digit as a blank image (the
    user's choice beats what the model says, and the refusal names it)."""
    done = edgesmith_convert(rescaling_model, digit_pixels, tmp_path, "--mean", "0", "--std", "255",
                             recipe="int8-qat")
    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "at chance level" in errors[0] and "mean 0, std 255" in errors[0]
    assert "--preprocess" in errors[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "stages").exists() and not (tmp_path / "out" / "model.tflite").exists()


def edgesmith_convert(model, data, tmp_path, *options, recipe="fp16"):
    model.save(tmp_path / "model.keras")
    return edgesmith("convert", tmp_path / "model.keras", "--recipe", recipe, "--data", data, "--out",
                     tmp_path / "out", "--json", *options)


@pytest.mark.parametrize("name, mode", [("tf", "tf"), ("torch", "torch"), ("caffe", "caffe")])
def test_presets_match_keras_applications_preprocess_input(name, mode, tmp_path):
    from keras.applications import imagenet_utils

    pixels = np.random.default_rng(0).integers(0, 256, (6, 5, 4, 3), dtype=np.uint8)
    np.savez(tmp_path / "p.npz", x_train=pixels, y_train=np.arange(6) % 2, x_test=pixels, y_test=np.arange(6) % 2)
    data = load_data(str(tmp_path / "p.npz"), preprocessing=preprocessing_from(name))
    expected = imagenet_utils.preprocess_input(pixels.astype(np.float32), mode=mode)
    assert np.allclose(data.x_val, expected, atol=1e-4)
    assert data.preprocessing["color"] == ("bgr" if name == "caffe" else "rgb")


def test_sequence_data_keeps_its_shape_through_conversion_and_verification(tmp_path):
    """A recurrent model on [N, T, F] arrays: no channel axis added, fp16 .tflite verified against Keras."""
    import keras
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)  # 8 steps of 8 features, already normalized
    np.savez(tmp_path / "seq.npz", x=x, y=digits.target)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8)), keras.layers.GRU(24), keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    model.fit(x, digits.target, epochs=15, verbose=0)
    report = convert(model, "fp16", str(tmp_path / "seq.npz"), tmp_path / "out")
    assert report.source_accuracy > 0.8 and report.verification.top1_agreement > 0.98
    assert report.data["preprocessing"] == {"input": "as stored"}
    with pytest.raises(InputContractError, match="arrays, not images"):
        convert(model, "fp16", str(tmp_path / "seq.npz"), tmp_path / "out2", preprocess="tf")
    with pytest.raises(Exception, match="recurrent layer GRU"):
        convert(model, "int8-qat", str(tmp_path / "seq.npz"), tmp_path / "out3")
    assert not (tmp_path / "out3" / "stages").exists()  # refused before qat trained


def test_bad_data_is_refused_in_one_line(tmp_path):
    nan = np.zeros((20, 4, 4), np.float32)
    nan[3, 1, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=nan, y=np.arange(20) % 2)
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 4, 4), np.uint8), y=np.zeros(0, int))
    np.savez(tmp_path / "labels.npz", x_train=np.zeros((5, 4, 4), np.uint8), y_train=np.zeros(4, int),
             x_test=np.zeros((3, 4, 4), np.uint8), y_test=np.zeros(3, int))
    with pytest.raises(DataError, match="NaN or infinite"):
        load_data(str(tmp_path / "nan.npz"))
    with pytest.raises(DataError, match="no samples"):
        load_data(str(tmp_path / "empty.npz"))
    with pytest.raises(DataError, match="5 training samples but 4 labels"):
        load_data(str(tmp_path / "labels.npz"))


def test_recipe_values_are_checked_before_the_model_is_loaded(tmp_path):
    (tmp_path / "missing.keras").write_bytes(b"")  # found, but never read: the recipe fails first
    recipe = tmp_path / "r.toml"
    recipe.write_text('[[passes]]\npass = "prune"\nsparsity = 1.5\n')
    done = edgesmith("convert", tmp_path / "missing.keras", "--recipe", recipe, "--data", "builtin:digits",
                     "--out", tmp_path / "o")
    assert done.returncode == 2 and "sparsity must be in [0, 1), got 1.5" in done.stderr
    recipe.write_text('preprocess = "nope"\n[[passes]]\npass = "ptq"\n')
    done = edgesmith("convert", tmp_path / "missing.keras", "--recipe", recipe, "--data", "builtin:digits",
                     "--out", tmp_path / "o")
    assert done.returncode == 2 and "unknown preprocessing 'nope'" in done.stderr


def test_chance_threshold_is_twice_chance_capped_for_few_classes():
    assert min_source_accuracy(0.1) == pytest.approx(0.2)
    assert min_source_accuracy(0.5) == pytest.approx(0.625)  # two classes: not 100 %
    assert min_source_accuracy(0.001) == pytest.approx(0.002)


def test_progress_in_a_log_is_one_line_per_stage_without_carriage_returns():
    from edgesmith.commands.progress import Progress

    log = io.StringIO()
    progress = Progress(stream=log)
    progress("qat", 0, None)
    for step in range(1, 101):
        progress("qat", step, 100)
    progress("ptq", 0, None)
    progress.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 4
    assert lines[0] == "qat..." and lines[1].startswith("qat: done in ") and lines[2] == "ptq..."
