"""Classifier: labels and preprocessing from metadata, any image form, clear refusals."""

import numpy as np
import pytest
from PIL import Image

from edgesmith.runtime import Classifier, InputError, Model, write_metadata
from tests.assets import real_tflite

LABELS = ["red", "green", "blue", "grey"]


@pytest.fixture(scope="module")
def labelled(tflite_models, tmp_path_factory):
    path = tmp_path_factory.mktemp("cls") / "labelled.tflite"
    preprocessing = {"size": [16, 16], "color": "rgb", "mean": [0.0], "std": [255.0]}
    return write_metadata(tflite_models["int8"], {"labels": LABELS, "preprocessing": preprocessing}, path)


def test_path_pil_and_array_give_the_same_answer(labelled, tmp_path):
    picture = np.random.default_rng(3).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    Image.fromarray(picture).save(tmp_path / "p.png")
    classifier = Classifier(labelled, top_k=2)
    from_path = classifier.classify(tmp_path / "p.png")
    from_pil = classifier.classify(Image.fromarray(picture))
    from_array = classifier.classify(picture)
    assert from_path == from_pil == from_array
    assert len(from_path) == 2 and from_path[0][0] in LABELS
    assert from_path[0][1] >= from_path[1][1]


def test_scores_match_the_model_on_the_preprocessed_input(labelled):
    classifier = Classifier(labelled, top_k=4)
    picture = np.random.default_rng(4).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    batch = classifier.preprocess(picture)
    np.testing.assert_allclose(batch[0], picture / 255.0, atol=1e-6)
    scores = Model(labelled).predict(batch)[0]
    top = classifier.classify(picture)
    assert [label for label, _ in top] == [LABELS[i] for i in np.argsort(-scores, kind="stable")]


def test_timings_are_reported(labelled):
    _, timings = Classifier(labelled).classify_timed(np.zeros((16, 16, 3), np.uint8))
    assert set(timings) == {"pre_ms", "invoke_ms", "post_ms"} and all(v >= 0 for v in timings.values())


def test_without_labels_indices_are_shown(tflite_models):
    top = Classifier(tflite_models["float"], top_k=4).classify(np.zeros((16, 16, 3), np.uint8))
    assert sorted(label for label, _ in top) == ["0", "1", "2", "3"]


def test_third_party_preprocessing_comes_from_its_metadata():
    classifier = Classifier(real_tflite("hand_landmark_lite"))
    assert classifier.preprocessing["std"] == pytest.approx([255.0] * 3)
    assert classifier.preprocessing["size"] == [224, 224]
    with pytest.raises(InputError, match="4 outputs, and its metadata names no single one as class scores"):
        classifier.classify(np.zeros((50, 50, 3), np.uint8), top_k=1)  # landmarks, handedness, ...: no classes


def test_non_image_models_are_refused():
    with pytest.raises(InputError, match="not an image"):
        Classifier(real_tflite("okay_nabu"))


def test_undecodable_image(labelled, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    with pytest.raises(InputError, match="cannot decode"):
        Classifier(labelled).classify(broken)
    with pytest.raises(InputError, match="no such image"):
        Classifier(labelled).classify(tmp_path / "missing.png")
