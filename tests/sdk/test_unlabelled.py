"""Unlabelled data: the .tflite is verified by its outputs against the source model's (SNR, cosine, top-1
agreement) and judged against a minimum SNR; calibration and distillation need no labels."""

import json

import numpy as np
import pytest

from edgesmith.data import DataError, load_data
from tests.converters.trained import residual_cnn
from tests.sdk.test_convert_cli import edgesmith

pytestmark = pytest.mark.slow  # converts (and trains the source once)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("unlabelled")
    digits = load_data("builtin:digits")
    np.savez(folder / "images.npz", x_train=digits.x_train[np.arange(len(digits.x_train))],
             x_test=digits.x_val[np.arange(len(digits.x_val))])
    residual_cnn().save(folder / "cnn.keras")
    return folder


def test_an_npz_of_inputs_alone_is_unlabelled_and_one_split_of_labels_is_refused(files, tmp_path):
    data = load_data(str(files / "images.npz"))
    assert not data.labeled and len(data.x_val) == 359
    one_sided = tmp_path / "half.npz"
    np.savez(one_sided, x_train=np.zeros((4, 3)), y_train=np.arange(4), x_test=np.zeros((2, 3)))
    with pytest.raises(DataError, match="labels for one split only"):
        load_data(str(one_sided))


def test_int8_ptq_on_unlabelled_data_is_verified_by_output_snr(files, tmp_path):
    done = edgesmith("convert", files / "cnn.keras", "--recipe", "int8-ptq", "--data", files / "images.npz",
                     "--out", tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    checked = json.loads(done.stdout)["verification"]
    assert checked["tflite_accuracy"] is None and checked["accuracy_drop_pt"] is None
    assert checked["output_snr_db"] >= 20.0 and checked["verdict"] == "holds"
    assert checked["source_top1_agreement"] >= 0.97 and checked["output_cosine"] > 0.99


def test_a_minimum_snr_the_int8_floor_cannot_reach_fails_naming_it(files, tmp_path):
    done = edgesmith("convert", files / "cnn.keras", "--recipe", "int8-ptq", "--data", files / "images.npz",
                     "--out", tmp_path, "--min-snr", "90")
    assert done.returncode == 1
    assert "below the 90 dB minimum (--min-snr)" in done.stderr


def test_edgesmith_int8_snr_is_at_least_plain_tflite_converter_on_the_same_calibration(files, tmp_path):
    import keras
    import tensorflow as tf

    from edgesmith.converters.verify import model_outputs, output_fidelity
    from edgesmith.pipeline import convert

    data = load_data(str(files / "images.npz"))
    model = keras.models.load_model(files / "cnn.keras")
    report = convert(model, "int8-ptq", data, tmp_path / "edgesmith")
    samples = data.calibration(256)  # what ptq calibrates on (its calibration_samples default)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([samples[i : i + 1]] for i in range(len(samples)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    (tmp_path / "plain.tflite").write_bytes(converter.convert())
    reference = model_outputs(model, data.x_val)
    plain_snr, _ = output_fidelity(reference, model_outputs(tmp_path / "plain.tflite", data.x_val))
    assert report.verification.output_snr_db >= plain_snr - 0.05, (report.verification.output_snr_db, plain_snr)
