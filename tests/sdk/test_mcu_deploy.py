"""``convert-and-deploy --target mcu:PROFILE``: a Keras model to a verified int8 .tflite and the firmware bundle
for a microcontroller (no device involved), with the ``mcu-int8`` recipe."""

import json

import pytest

from edgesmith.cli import main
from edgesmith.deploy import TargetURLError, parse_target
from edgesmith.deploy.urls import mcu_profile

pytest.importorskip("tflite_micro")


def test_mcu_targets_name_a_profile_and_are_not_devices():
    assert mcu_profile("mcu:stm32f746") == "stm32f746" and mcu_profile("mcu:boards/my.toml") == "boards/my.toml"
    assert mcu_profile("ssh://pi@host") is None
    with pytest.raises(TargetURLError, match="expected mcu:PROFILE"):
        mcu_profile("mcu:")
    with pytest.raises(TargetURLError, match="firmware bundle, not a copy"):
        parse_target("mcu:stm32f746")


def test_a_bad_mcu_profile_is_refused_before_converting(tmp_path, capsys):
    try:
        main(["convert-and-deploy", str(tmp_path / "absent.keras"), "--data", "builtin:digits", "--out",
              str(tmp_path / "out"), "--target", "mcu:stm32f999"])
        code = 0
    except SystemExit as done:
        code = done.code
    err = capsys.readouterr().err
    assert code == 2 and "stm32f999" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # trains a tiny CNN one epoch and converts it
def test_convert_and_deploy_to_a_microcontroller_writes_the_bundle(tmp_path, capsys):
    from edgesmith.data import load_data
    from edgesmith.demo import train_small_cnn
    from edgesmith.runtime.micro import MicroModel

    keras_file = tmp_path / "digits.keras"
    train_small_cnn(load_data("builtin:digits", image_size=(8, 8), color="grayscale"), epochs=1).save(keras_file)
    out = tmp_path / "out"
    try:
        main(["convert-and-deploy", str(keras_file), "--data", "builtin:digits", "--recipe", "mcu-int8",
              "--target", "mcu:stm32f746", "--out", str(out), "--json"])
    except SystemExit as done:
        assert done.code in (None, 0), capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assert result["deploys"] == [] and result["convert"]["recipe"]["name"] == "mcu-int8"
    [board] = result["mcu"]
    assert board["profiles"][0]["profile"] == "stm32f746" and board["profiles"][0]["fits"]
    assert board["accuracy"]["top1_agreement"] >= 0.99
    assert not {"QUANTIZE", "DEQUANTIZE"} & set(board["ops"])  # int8 in, int8 out, no float op
    micro = MicroModel(out / "model.tflite")
    assert micro.inputs[0]["dtype"] == micro.outputs[0]["dtype"] == "int8"
    assert (out / "firmware-stm32f746" / "model_ops.h").is_file() and (out / "report.html").is_file()
    assert json.loads((out / "mcu-stm32f746.json").read_text())["memory"] == board["memory"]
