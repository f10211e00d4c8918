"""Distillation with keras.distillation: default teachers, files, builder students, unlabeled data."""

import keras
import numpy as np
import pytest

from edgesmith.converters.builders import build_student, parse_spec
from edgesmith.converters.distill import distill
from edgesmith.converters.graph import ends_in_softmax
from edgesmith.converters.errors import ConversionError, UnknownOptionError
from edgesmith.converters.lowrank import lowrank
from edgesmith.converters.record import record_of
from edgesmith.converters.train import logits_view

pytestmark = pytest.mark.slow  # trains teachers and students

L = keras.layers


@pytest.fixture(scope="module")
def digit_arrays():
    from sklearn.datasets import load_digits

    data = load_digits()
    x = np.pad(data.images[..., None] / 16.0, ((0, 0), (2, 2), (2, 2), (0, 0))).astype("float32")
    return x[:1200], data.target[:1200], x[1200:], data.target[1200:]


@pytest.fixture(scope="module")
def teacher(digit_arrays):
    x, y, _, _ = digit_arrays
    model = keras.Sequential([keras.Input((12, 12, 1)), L.Conv2D(16, 3, activation="relu"), L.MaxPooling2D(),
                              L.Flatten(), L.Dense(64, activation="relu", name="fc"),
                              L.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5, verbose=0)
    return model


def _agreement(a, b, x):
    return np.mean(np.argmax(a.predict(x, verbose=0), -1) == np.argmax(b.predict(x, verbose=0), -1))


def test_unlabeled_distillation_into_another_architecture_learns_the_teacher(digit_arrays, teacher):
    x, _, x_test, _ = digit_arrays
    student = keras.Sequential([keras.Input((12, 12, 1)), L.Flatten(), L.Dense(32, activation="relu"),
                                L.Dense(10)])  # an MLP giving logits; the teacher is a CNN giving softmax
    before = _agreement(student, teacher, x_test)
    distilled = distill(teacher, x, student=student, epochs=4, learning_rate=3e-3)
    record = record_of(distilled)
    assert record.details["labels_used"] is False and record.details["teacher"] == teacher.name
    assert _agreement(distilled, teacher, x_test) > max(0.5, before + 0.2)


def test_default_teacher_is_the_model_before_the_previous_pass(digit_arrays, teacher):
    x, y, x_test, y_test = digit_arrays
    small = lowrank(teacher, rank_ratio=0.1, skip=(teacher.layers[-1].name,))  # fc: rank 6 of 64
    distilled = distill(small, (x, y), epochs=2, label_weight=0.5)
    assert record_of(distilled).details["teacher"] == teacher.name
    assert record_of(distilled).accuracy > 0.8


def test_teacher_from_a_keras_file(digit_arrays, teacher, tmp_path):
    x, _, _, _ = digit_arrays
    path = tmp_path / "teacher.keras"
    teacher.save(path)
    student = keras.models.clone_model(teacher)
    distilled = distill(student, x[:256], teacher=str(path), epochs=1)
    assert record_of(distilled).details["teacher"] == teacher.name


def test_logits_view_of_a_softmax_model_gives_log_probabilities(teacher):
    assert ends_in_softmax(teacher)
    x = np.random.default_rng(0).uniform(size=(2, 12, 12, 1)).astype("float32")
    logits = logits_view(teacher).predict(x, verbose=0)
    np.testing.assert_allclose(np.exp(logits), teacher.predict(x, verbose=0), rtol=1e-4, atol=1e-6)


def test_builder_students_take_any_input_shape_and_class_count(teacher):
    student = build_student("mobilenet_v3_small:alpha=0.75,minimalistic=true", (12, 12, 1), 7)
    assert tuple(student.inputs[0].shape[1:]) == (12, 12, 1) and student.outputs[0].shape[-1] == 7
    assert ends_in_softmax(student) and not ends_in_softmax(build_student("mobilenet", (32, 32, 3), 3, False))


def test_bad_specs_and_a_missing_teacher_are_clear_errors(teacher):
    with pytest.raises(UnknownOptionError, match="valid builders.*MobileNetV2"):
        parse_spec("mobilenet_v9")
    with pytest.raises(UnknownOptionError, match="MobileNetV2 has no option.*alpha"):
        parse_spec("mobilenet_v2:width=2")
    assert parse_spec("MobileNet_V3_small:alpha=0.75,minimalistic=true")[1] == {"alpha": 0.75, "minimalistic": True}
    with pytest.raises(ConversionError, match="distill needs a teacher"):
        distill(keras.models.clone_model(teacher), np.zeros((4, 12, 12, 1), "float32"))
