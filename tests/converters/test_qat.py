"""QAT on Keras 3: a true int8 .tflite that matches the QAT Keras model."""

import dataclasses
import importlib
import logging

import keras
import numpy as np
import pytest

from edgesmith.converters import record_of
from edgesmith.data import load_data
from edgesmith.converters.errors import UnsupportedModelError
from edgesmith.converters.export import export
from edgesmith.converters.load import load_model
from edgesmith.converters.ptq import ptq
from edgesmith.converters.qat import qat
from edgesmith.converters.qat_layers import fake_quant_weights
from edgesmith.converters.qat_plan import prepare_qat
from edgesmith.converters.verify import verify
from edgesmith.runtime import Model
from edgesmith.runtime.tflite_file import weight_bytes

pytestmark = pytest.mark.slow  # trains and converts models, keras.applications blocks too
layers = keras.layers


@pytest.fixture(scope="module")
def quantized(residual_cnn, digits):
    return qat(residual_cnn, digits, epochs=2)


def every_sample(data):
    """The data with all 1,797 digits as the evaluation set.

    This test measures conversion fidelity (QAT Keras model vs its .tflite), not generalization, and
    the 359 validation digits alone make one flipped near-tie worth 0.28 pt: the int8 softmax's
    1/256 output steps can tie two classes the float softmax keeps apart.
    """
    return dataclasses.replace(data, x_val=np.concatenate([data.x_train, data.x_val]),
                               y_val=np.concatenate([data.y_train, data.y_val]))


def test_int8_tflite_matches_the_qat_model_within_0_3_pt(quantized, digits, tmp_path):
    path = export(ptq(quantized, digits, mode="int8"), digits, tmp_path / "qat.tflite")
    result = verify(path, every_sample(digits), keras_model=quantized)
    assert result.samples == 1797
    assert abs(result.keras_accuracy - result.tflite_accuracy) <= 0.003
    assert result.top1_agreement >= 0.99
    ops = Model(path).op_histogram()
    assert ops.get("CONV_2D", 0) >= 2 and ops.get("DEPTHWISE_CONV_2D", 0) == 1  # separable conv split
    assert "QUANTIZE" in ops and "DEQUANTIZE" in ops  # float I/O around an int8 graph


def test_batchnorm_is_folded_and_no_layer_stays_float(quantized):
    details = record_of(quantized).details
    assert len(details["folded_batchnorm"]) == 2
    assert details["float_layers"] == []
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in quantized.layers)


def test_a_batchnorm_over_raw_pixels_is_folded_without_shrinking_the_trained_kernel(tmp_path):
    """Caffe-style input (pixels 0..255, nothing inside the model scales them): the BatchNorm after the first
    convolution has a factor near 0.03, so a kernel with that factor folded in is ~1e-3, and Adam's steps of about
    the learning rate destroyed it (ResNet50 lost 75 points; this model 3.6 points at learning rate 1e-3). The
    factor now stays a fixed multiplier and the kernel trains at its own scale."""
    raw = load_data("builtin:digits", mean=0, std=1)
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 1))
    x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 8, padding="same", use_bias=False,
                                                                name="stem")(inputs)))
    x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same", use_bias=False)(x)))
    model = keras.Model(inputs, layers.Dense(10, activation="softmax")(layers.Flatten()(x)))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(raw.x_train, raw.y_train, epochs=6, batch_size=32, verbose=0)
    before = accuracy_on(model, raw)
    assert before > 0.9

    quantized = qat(model, raw, epochs=2, learning_rate=1e-3)
    stem = quantized.get_layer("stem")
    assert stem.folded and 1e-3 < float(np.median(np.asarray(stem.fold_scale))) < 0.3
    assert not stem.fold_scale.trainable
    assert accuracy_on(quantized, raw) >= before - 0.015
    quantized.save(tmp_path / "qat.keras")  # the factor is saved with the layer (Keras's Conv saves kernel and bias)
    batch = raw.x_val[0:64]
    np.testing.assert_allclose(np.asarray(load_model(tmp_path / "qat.keras")(batch)), np.asarray(quantized(batch)),
                               atol=1e-6)
    path = export(ptq(quantized, raw, mode="int8"), raw, tmp_path / "raw.tflite")
    assert verify(path, raw, keras_model=quantized).top1_agreement >= 0.98


def test_training_that_breaks_the_model_is_done_again_at_a_tenth_of_the_rate(residual_cnn, digits, caplog):
    with caplog.at_level(logging.WARNING, logger="edgesmith.converters.qat"):
        quantized = qat(residual_cnn, digits, epochs=1, learning_rate=0.1)
    details = record_of(quantized).details
    assert details["learning_rate_lowered_from"] == 0.1 and details["learning_rate"] == pytest.approx(0.01)
    assert details["first_train_accuracy_after"] < details["train_accuracy_before"] - 0.02
    assert any("training again from the start at 0.01" in r.getMessage() for r in caplog.records)
    assert details["train_accuracy_after"] > details["first_train_accuracy_after"]


def test_training_that_keeps_the_model_is_kept(quantized):
    details = record_of(quantized).details
    assert "learning_rate_lowered_from" not in details and details["learning_rate"] == 2e-4
    assert details["train_accuracy_after"] >= details["train_accuracy_before"]  # training raised them: kept


@pytest.mark.parametrize("padding", ["same", "causal"])
def test_a_conv1d_twin_computes_the_fake_quantized_folded_convolution(padding):
    """Keras's Conv1D.call reads ``self.kernel`` without ``convolution_op``: the twin quantizes its kernel and
    applies the folded BatchNorm factor in a call of its own (before, a Conv1D kernel was never fake-quantized)."""
    rng = np.random.default_rng(0)
    inputs = keras.Input((28, 28))
    conv, batchnorm = layers.Conv1D(8, 3, padding=padding, dilation_rate=2, use_bias=False), layers.BatchNormalization()
    model = keras.Model(inputs, layers.Dense(10)(layers.Flatten()(batchnorm(conv(inputs)))))
    batchnorm.set_weights([rng.uniform(0.5, 2, 8), rng.normal(size=8), rng.normal(size=8), rng.uniform(0.5, 2, 8)])
    twin = prepare_qat(model)[0].get_layer(conv.name)
    reference = layers.Conv1D(8, 3, padding=padding, dilation_rate=2)
    reference.build((None, 28, 28))
    reference.set_weights([np.asarray(fake_quant_weights(twin.scaled_kernel())), np.asarray(twin.bias)])
    x = rng.random((4, 28, 28)).astype("float32")
    np.testing.assert_allclose(np.asarray(twin(x)), np.asarray(reference(x)), atol=1e-5)
    unquantized = np.asarray(batchnorm(conv(x), training=False))
    assert 0 < np.abs(np.asarray(twin(x)) - unquantized).max() < 0.02 * np.abs(unquantized).max()


def accuracy_on(model, data) -> float:
    return float(np.mean(model.predict(data.x_val[0:len(data.x_val)], verbose=0).argmax(-1) == data.y_val))


def test_sequential_with_logits(sequential_mlp, digits, tmp_path):
    quantized = qat(sequential_mlp, digits, epochs=1)
    path = export(ptq(quantized, digits, mode="int8"), digits, tmp_path / "mlp.tflite")
    result = verify(path, every_sample(digits), keras_model=quantized)
    assert result.tflite_accuracy > 0.85
    assert abs(result.keras_accuracy - result.tflite_accuracy) <= 0.003


def test_unknown_layers_stay_float_with_a_warning(digits, caplog):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = keras.layers.LayerNormalization()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    with caplog.at_level(logging.WARNING, logger="edgesmith.converters.qat"):
        quantized = qat(model, digits, epochs=1)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "qat: left in float (edgesmith cannot quantize these layers): layer_normalization"]
    assert record_of(quantized).details["float_layers"] == ["layer_normalization"]
    assert np.isfinite(quantized.predict(digits.x_val[:4], verbose=0)).all()


# -- every common block converts, or qat refuses before training ------------------------------------------


def agreement(content: bytes, keras_model, samples, tmp_path) -> float:
    """Top-1 agreement of an int8 .tflite (through edgesmith.runtime) with the QAT Keras model it came from."""
    path = tmp_path / "agreement.tflite"
    path.write_bytes(content)
    tflite = Model(path)
    predicted = np.concatenate([tflite.predict(samples[i : i + 100]) for i in range(0, len(samples), 100)])
    return float(np.mean(predicted.argmax(-1) == np.asarray(keras_model(samples, training=False)).argmax(-1)))


def block_zoo():
    """Small, on 8x8 digits: the residual SeparableConv->BN->MaxPool(3, 2, same) block (Xception), ZeroPadding,
    a Concatenate of differently ranged branches, hard-swish written with keras.ops (x + 3, * 1/6), Reshape."""
    keras.utils.set_random_seed(4)
    inputs = keras.Input((8, 8, 1))
    x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)))
    y = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(layers.SeparableConv2D(16, 3, padding="same")(x)))
    y = layers.BatchNormalization(momentum=0.9)(layers.SeparableConv2D(24, 3, padding="same")(y))
    y = layers.MaxPooling2D(3, strides=2, padding="same")(y)
    shortcut = layers.BatchNormalization(momentum=0.9)(layers.Conv2D(24, 1, strides=2, use_bias=False)(x))
    x = layers.Add()([y, shortcut])
    x = layers.ZeroPadding2D(1)(x)
    wide = layers.Conv2D(8, 3, activation="relu")(x)
    narrow = layers.Conv2D(8, 3)(x)
    x = layers.Concatenate()([wide, layers.Rescaling(0.25)(narrow)])
    x = x * (layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0))  # hard-swish from keras.ops calls, as in MobileNetV3
    x = layers.Reshape((-1,))(layers.GlobalAveragePooling2D(keepdims=True)(x))
    outputs = layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="block_zoo")
    return model


@pytest.fixture(scope="module")
def zoo_qat(digits):
    model = block_zoo()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(digits.x_train, digits.y_train, epochs=4, batch_size=32, verbose=0)
    return qat(model, digits, epochs=1)


def test_residual_separable_batchnorm_maxpool_block_converts_and_matches(zoo_qat, digits, tmp_path):
    path = export(ptq(zoo_qat, digits, mode="int8"), digits, tmp_path / "zoo.tflite")
    result = verify(path, every_sample(digits), keras_model=zoo_qat)
    assert result.top1_agreement >= 0.99  # the same int8 grid on both sides; 0.99 leaves room for 1-LSB ties
    assert result.tflite_accuracy > 0.8
    ops = Model(path).op_histogram()
    assert {"MAX_POOL_2D", "CONCATENATION", "MUL", "ADD"} <= set(ops)  # (the PAD folds into the convolution)
    assert ops["QUANTIZE"] == 1 and ops["DEQUANTIZE"] == 1  # nothing requantized or left float inside
    assert record_of(zoo_qat).details["float_layers"] == []


def test_a_batchnorm_with_nothing_to_fold_into_runs_in_int8_with_its_relu_fused(digits, tmp_path):
    """DenseNet's pre-activation BatchNorm follows a concatenation: TFLite runs it as a MUL and an ADD (the ReLU
    fused), and each needs a range, or both stay float between a DEQUANTIZE and a QUANTIZE."""
    inputs = keras.Input(digits.sample_shape)
    x = layers.Concatenate()([inputs, layers.Conv2D(15, 3, padding="same", activation="relu")(inputs)])
    x = layers.Conv2D(16, 3, activation="relu")(layers.ReLU()(layers.BatchNormalization(name="preact")(x)))
    model = keras.Model(inputs, layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(x)))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(digits.x_train[np.arange(len(digits.x_train))], digits.y_train, epochs=15, verbose=0)
    quantized = qat(model, digits, epochs=1)
    path = export(ptq(quantized, digits, mode="int8"), digits, tmp_path / "preact.tflite")
    ops = Model(path).op_histogram()
    assert ops["MUL"] == 1 and ops["ADD"] == 1 and "RELU" not in ops
    assert ops["QUANTIZE"] == 1 and ops["DEQUANTIZE"] == 1  # float only at the input and the output
    checked = verify(path, every_sample(digits), keras_model=quantized)
    assert checked.top1_agreement >= 0.99 and checked.tflite_accuracy > 0.8
    reloaded = load_model(_saved(quantized, tmp_path))  # a stage is saved and resumed
    assert np.allclose(reloaded.predict(digits.x_val[:8], verbose=0), quantized.predict(digits.x_val[:8], verbose=0))


def _saved(model, folder):
    model.save(folder / "stage.keras")
    return folder / "stage.keras"


def _producers(tensor):
    """The layer that made ``tensor`` in a functional graph."""
    return tensor._keras_history.operation


def test_same_scale_ops_hold_one_quantizer(zoo_qat):
    from edgesmith.converters.qat_layers import ActivationQuantizer

    same_scale = (layers.MaxPooling2D, layers.ZeroPadding2D, layers.Concatenate, layers.Reshape)
    for layer in zoo_qat.layers:
        if isinstance(layer, ActivationQuantizer):
            for node in layer._inbound_nodes:
                assert not isinstance(_producers(node.input_tensors[0]), (ActivationQuantizer, *same_scale))
        if isinstance(layer, layers.Concatenate):
            quantizers = {id(_producers(t)) for t in layer.input}
            assert len(quantizers) == 1 and isinstance(_producers(layer.input[0]), ActivationQuantizer)


def test_an_unconvertible_graph_is_refused_before_training(digits, monkeypatch):
    qat_module = importlib.import_module("edgesmith.converters.qat")  # the package exports the function qat too
    monkeypatch.setattr(qat_module, "recover", lambda *a, **k: pytest.fail("trained before checking"))
    inputs = keras.Input((8, 8, 1))
    x = keras.ops.erfinv(keras.ops.tanh(layers.Conv2D(4, 3)(inputs)) * 0.5)  # no TFLite builtin for Erfinv
    model = keras.Model(inputs, layers.Dense(10)(layers.Flatten()(x)), name="odd")
    with pytest.raises(UnsupportedModelError) as refused:
        qat(model, digits, epochs=1)
    message = str(refused.value)
    assert "\n" not in message
    assert "at layer 'erfinv' (Erfinv)" in message and "neither a custom op nor a flex op" in message


def test_the_pass_trains_the_graph_its_model_check_prepared(sequential_mlp, digits, monkeypatch):
    """The pipeline's check before any training builds and converts the QAT graph once; the pass given what the
    check returned trains that graph, with no second rebuild and no second dry conversion."""
    from edgesmith.converters.errors import UnknownOptionError
    from edgesmith.converters.registry import check_model, check_options, pass_options

    prepared = check_model("qat", sequential_mlp, {"epochs": 1})
    assert prepared.source is sequential_mlp and prepared.weight_bits == 8
    qat_module = importlib.import_module("edgesmith.converters.qat")
    monkeypatch.setattr(qat_module, "prepare_qat", lambda *a, **k: pytest.fail("prepared twice"))
    monkeypatch.setattr(qat_module, "to_tflite", lambda *a, **k: pytest.fail("converted twice"))
    assert qat(sequential_mlp, digits, epochs=1, prepared=prepared) is prepared.model
    assert "prepared" not in pass_options("qat")
    with pytest.raises(UnknownOptionError, match="no option"):
        check_options("qat", {"prepared": None})


def test_transformer_keeps_attention_and_layernorm_float_and_converts(digits, tmp_path):
    keras.utils.set_random_seed(5)
    inputs = keras.Input((8, 8, 1))
    tokens = layers.Dense(16)(layers.Reshape((8, 8))(inputs))
    attended = layers.MultiHeadAttention(2, 8, name="attention")(tokens, tokens)
    x = layers.LayerNormalization(name="norm")(layers.Add()([tokens, attended]))
    x = layers.Dense(32, activation="relu")(x)
    outputs = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling1D()(x))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(digits.x_train, digits.y_train, epochs=4, batch_size=32, verbose=0)
    quantized = qat(model, digits, epochs=1)
    assert record_of(quantized).details["float_layers"] == ["attention", "norm"]
    path = export(ptq(quantized, digits, mode="int8"), digits, tmp_path / "transformer.tflite")
    float_weights = weight_bytes(path)["float32"]
    assert float_weights and all("attention" in name or "norm" in name for name in float_weights), float_weights
    result = verify(path, every_sample(digits), keras_model=quantized)
    assert result.top1_agreement >= 0.97  # float attention in .tflite and Keras; int8 around it
    assert abs(result.keras_accuracy - result.tflite_accuracy) <= 0.02


# The first blocks of each keras.applications family (stem, padding, squeeze-excite, hard-swish from
# keras.ops, dense concatenations, NASNet's separable/pooling cells, ConvNeXt's LayerScale), cut after the
# named layer and closed by pooling and a linear head (logits: an untrained softmax ties in int8). Whole
# networks convert too, but each takes 30-90 s to convert on 2 cores: they are checked outside the suite.
APPLICATION_CUTS = {
    "EfficientNetB0": "block1a_project_bn", "MobileNetV3Small": "expanded_conv_project_bn",
    "MobileNet": "conv_pw_2_relu", "MobileNetV2": "block_2_add", "ResNet50": "conv2_block1_add",
    "DenseNet121": "conv2_block2_concat", "EfficientNetV2B0": "block2b_add",
    "NASNetMobile": "reduction_concat_stem_1", "ConvNeXtTiny": "convnext_tiny_stage_0_block_0_layer_scale",
    "MobileNetV3Large": "expanded_conv_add",
}
RAW_PIXELS = ("EfficientNetB0", "EfficientNetV2B0", "MobileNetV3Small", "MobileNetV3Large", "ConvNeXtTiny")


def application_head(name):
    keras.utils.set_random_seed(6)
    full = getattr(keras.applications, name)(weights=None, input_shape=(32, 32, 3), classes=10)
    x = layers.GlobalAveragePooling2D()(full.get_layer(APPLICATION_CUTS[name]).output)
    return keras.Model(full.input, layers.Dense(10)(x), name=f"{name}_head")


def images32(digits, name):
    """The digits as 32x32 RGB images, raw 0..255 pixels for the families that normalize inside the model."""
    images = np.repeat(np.repeat(digits.x_val, 4, axis=1), 4, axis=2).repeat(3, axis=-1)
    return images * (255.0 if name in RAW_PIXELS else 1.0)


@pytest.mark.parametrize("name", sorted(APPLICATION_CUTS))
def test_application_blocks_convert_to_int8_and_match(name, digits, tmp_path):
    from edgesmith.converters.qat import check_int8_conversion

    samples = images32(digits, name)
    prepared, plan = prepare_qat(application_head(name))
    content = check_int8_conversion(prepared, samples[:64])
    assert agreement(content, prepared, samples[:300], tmp_path) >= 0.9
    float_layers = plan.float_layers
    assert not float_layers or name == "ConvNeXtTiny", float_layers  # LayerNormalization, LayerScale
