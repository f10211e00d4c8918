"""``edgesmith mcu --compress``: TFLM's lookup-table weight compression of few-valued kernels, the mode taken from
each tensor's quantization, outputs checked bit-identical in TFLM, flash and arena before and after."""

import json

import numpy as np
import pytest

from edgesmith.cli import main
from edgesmith.mcu import check_mcu, firmware_bundle
from edgesmith.mcu import compress as compress_module
from edgesmith.mcu.compress import compress_tflm, plan_compression
from edgesmith.mcu.export import model_ops
from edgesmith.runtime.errors import InputError, RunFailedError
from edgesmith.runtime.micro import MicroModel
from edgesmith.runtime.tflite_file import read_contents

pytest.importorskip("tflite_micro")


def _clustered_int8(per_channel: bool) -> bytes:
    """A small int8 CNN whose kernels hold 16 distinct values per output channel, as the cluster pass leaves
    them (set, not trained), converted with int8 input and output."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    image = keras.Input((16, 16, 3), batch_size=1)
    x = keras.layers.Conv2D(16, 3, activation="relu")(image)
    x = keras.layers.DepthwiseConv2D(3, activation="relu")(x)
    x = keras.layers.Conv2D(32, 3, strides=2, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    model = keras.Model(image, keras.layers.Dense(4)(x))  # no softmax: random logits overflow TFLM's int8 softmax
    rng = np.random.default_rng(0)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            kernel = weights[0]
            centroids = rng.normal(0, kernel.std(), 16)
            per_out = rng.uniform(0.5, 2, kernel.shape[-1]) if per_channel else 1.0  # BatchNorm folding scales channels
            weights[0] = (centroids[rng.integers(0, 16, kernel.shape)] * per_out).astype(np.float32)
            layer.set_weights(weights)
    samples = rng.uniform(0, 1, (16, 16, 16, 3)).astype(np.float32)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s[None]] for s in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    converter._experimental_disable_per_channel = not per_channel
    return converter.convert()


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clustered")
    paths = {}
    for name, per_channel in (("per_channel", True), ("per_tensor", False)):
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(_clustered_int8(per_channel))
    return paths


def _copy(path, folder):
    target = folder / path.name
    target.write_bytes(path.read_bytes())
    return target


def test_the_plan_takes_index_width_and_mode_from_each_tensor(clustered):
    rows = {row["op"] + str(row["tensor"]): row for row in plan_compression(clustered["per_channel"].read_bytes())}
    contents = read_contents(clustered["per_channel"].read_bytes()).subgraphs[0]
    for row in rows.values():
        tensor = contents.tensors[row["tensor"]]
        assert row["mode"] == "per-channel" and row["axis"] == tensor.quantized_dimension
        assert row["values"] <= 16 and row["index_bits"] == 4
    assert {row["axis"] for row in rows.values() if row["op"] == "DEPTHWISE_CONV_2D"} == {3}
    assert {row["axis"] for row in rows.values() if row["op"] != "DEPTHWISE_CONV_2D"} == {0}
    per_tensor = plan_compression(clustered["per_tensor"].read_bytes())
    assert {row["mode"] for row in per_tensor} == {"per-tensor"} and all(row["axis"] is None for row in per_tensor)
    big = [row for row in per_tensor if row["elements"] > 10_000]
    assert big and all(row["chosen"] and row["index_bits"] == 4 for row in big)


def test_compressed_outputs_are_bit_identical_and_flash_shrinks(clustered, tmp_path):
    out = tmp_path / "model.compressed.tflite"
    done = compress_tflm(clustered["per_channel"], out)
    assert done["check"] == {"samples": 16, "inputs": "random", "identical": True}
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temp file left behind
    data = out.read_bytes()
    assert "TFLM_DECODE" in model_ops(data)
    assert done["after"]["model_bytes"] == len(data) < 0.7 * done["before"]["model_bytes"]
    assert done["after"]["arena_bytes"] > done["before"]["arena_bytes"]  # decoded kernels live in the arena
    assert {row["op"] for row in done["tensors"]} >= {"FULLY_CONNECTED"}
    assert all(row["saved_bytes"] > 0 for row in done["tensors"])
    assert any("cost more than they save" in row["reason"] for row in done["skipped"])  # the 3x3x3 first conv
    original, packed = MicroModel(clustered["per_channel"]), MicroModel(out)
    x = np.random.default_rng(7).integers(-128, 128, (4, 1, 16, 16, 3), dtype=np.int8)
    for sample in x:
        np.testing.assert_array_equal(original.invoke([sample])[0], packed.invoke([sample])[0])


def test_the_wrong_mode_computes_wrong_outputs_and_nothing_is_written(clustered, tmp_path, monkeypatch):
    # one table for a per-channel quantized kernel: TFLM runs it and decodes garbage; the check refuses it
    real = compress_module._plan_row

    def per_tensor_everywhere(*args):
        row = real(*args)
        if row["mode"] == "per-channel" and row["chosen"]:
            row.update(mode="per-tensor", axis=None, index_bits=7)
        return row

    monkeypatch.setattr(compress_module, "_plan_row", per_tensor_everywhere)
    out = tmp_path / "wrong.tflite"
    with pytest.raises(RunFailedError, match="outputs differ from the original's in TFLite Micro on 16 of 16"):
        compress_tflm(clustered["per_channel"], out)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_nothing_to_compress_is_one_line_exit_2(tflite_models, tmp_path, capsys):
    model = _copy(tflite_models["int8"], tmp_path)
    with pytest.raises(InputError, match="nothing to compress"):
        compress_tflm(model, tmp_path / "x.tflite")
    try:
        main(["mcu", str(model), "--compress", "--profile", "stm32f746"])
        code = 0
    except SystemExit as done:
        code = done.code
    captured = capsys.readouterr()
    assert code == 2 and captured.err.count("\n") == 1 and "nothing to compress" in captured.err
    assert captured.out == "" and sorted(p.name for p in tmp_path.iterdir()) == ["int8.tflite"]


def test_cli_compress_reports_before_and_after_and_exports_the_compressed_model(clustered, tmp_path, capsys):
    model = _copy(clustered["per_channel"], tmp_path)
    rng = np.random.default_rng(1)
    data = tmp_path / "images.npz"
    np.savez(data, x=rng.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8), y=rng.integers(0, 4, 40))
    try:
        main(["mcu", str(model), "--compress", "--profile", "stm32f746", "--data", str(data),
              "--export", str(tmp_path / "fw"), "--json"])
    except SystemExit as done:
        assert done.code == 0
    report = json.loads(capsys.readouterr().out)
    compressed = tmp_path / "per_channel.compressed.tflite"
    done = report["compression"]
    assert done["file"] == str(compressed) and report["model"] == str(compressed)
    assert done["check"] == {"samples": 8, "inputs": "data", "identical": True}  # the 20 % held out
    assert done["flash_after_bytes"] < done["flash_before_bytes"] and 0 < done["flash_ratio"] < 0.7
    assert report["memory"] == done["after"] and report["profiles"][0]["flash"]["measured_bytes"] == done["flash_after_bytes"]
    assert report["accuracy"]["outputs_differing"] == 0  # the original against LiteRT; the compressed is identical
    assert "resolver.AddDecode()" in (tmp_path / "fw" / "model_ops.h").read_text()
    assert f"g_model_len = {compressed.stat().st_size};" in (tmp_path / "fw" / "model_data.cc").read_text()


def test_a_per_tensor_model_gets_one_table_per_kernel_and_identical_outputs(clustered, tmp_path):
    from edgesmith.commands.mcu import format_report

    model = _copy(clustered["per_tensor"], tmp_path)
    report = check_mcu(model, ["rp2040"], compress=tmp_path / "small.tflite")
    text = format_report(report)
    assert "outputs bit-identical in TFLite Micro on 16 random sample(s)" in text
    assert "-> 4-bit indices (per-tensor)" in text and "kept (tables cost more than they save" in text
    assert report["compression"]["flash_ratio"] < 0.7
    original, packed = MicroModel(model), MicroModel(tmp_path / "small.tflite")
    for sample in np.random.default_rng(7).integers(-128, 128, (4, 1, 16, 16, 3), dtype=np.int8):
        np.testing.assert_array_equal(original.invoke([sample])[0], packed.invoke([sample])[0])


def test_the_firmware_bundle_compresses_when_it_saves_flash(clustered, tmp_path):
    report = firmware_bundle(clustered["per_channel"], "stm32f746", tmp_path / "out")
    assert report["compression"]["flash_ratio"] < 0.7 and report["profiles"][0]["fits"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "firmware-stm32f746", "mcu-stm32f746.json", "model.tflm.tflite"]
    assert "resolver.AddDecode()" in (tmp_path / "out" / "firmware-stm32f746" / "model_ops.h").read_text()
