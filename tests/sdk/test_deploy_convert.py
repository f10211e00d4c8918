"""``edgesmith convert-and-deploy``: a Keras model to a verified .tflite benchmarked on a real SSH target.

Trains a tiny CNN on scikit-learn's digits (one epoch: accuracy is not the
point), converts it with the default recipe, deploys it through the loopback
sshd (tests/sdk/sshd.py) and checks the report. The target's Python is this
venv's, so no dependency install is repeated here (tests/sdk/test_deploy_ssh.py
covers that).
"""

import json
import sys

import pytest

from edgesmith.cli import main
from edgesmith.runtime.logs import read_log
from edgesmith.runtime.metadata import read_metadata
from tests.sdk.sshd import sshd  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow  # trains, converts and deploys through a real sshd


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    from edgesmith.data import load_data
    from edgesmith.demo import train_small_cnn

    path = tmp_path_factory.mktemp("model") / "digits.keras"
    train_small_cnn(load_data("builtin:digits", image_size=(8, 8), color="grayscale"), epochs=1).save(path)
    return path


def test_one_command_from_keras_to_a_benchmarked_model_and_a_report(sshd, keras_file, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "out"
    argv = ["convert-and-deploy", str(keras_file), "--data", "builtin:digits", "--out", str(out),
            "--target", sshd.url(str(tmp_path / "target"), f"python={sys.executable}"), "--runs", "20",
            "--identity", str(sshd.identity), "--known-hosts", str(sshd.known_hosts), "--ssh-config", "none", "--json"]
    try:
        main(argv)
    except SystemExit as done:
        assert done.code in (None, 0), capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assert result["convert"]["recipe"]["name"] == "int8-ptq"
    [deployed] = result["deploys"]
    log = read_log(deployed["log"])
    assert log[-1]["runs"] == 20
    metadata = read_metadata(out / "model.tflite")
    assert log[0]["model"]["metadata"]["metrics"]["tflite_accuracy"] == metadata["metrics"]["tflite_accuracy"]
    page = (out / "report.html").read_text()
    assert "Conversion stages" in page and "int8-ptq @" in page and page.count("data:image/png;base64,") == 2
    assert set(result["timings_s"]) == {"convert", "deploy", "report", "total"}
