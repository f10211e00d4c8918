"""depth_prune: which Adds are residual blocks, what removing them leaves, and the options it refuses."""

import numpy as np
import pytest

from edgesmith.converters.checks import run_check
from edgesmith.converters.depth_prune import Block, depth_prune, residual_blocks, without_blocks
from edgesmith.converters.errors import UnknownOptionError
from edgesmith.converters.record import record_of


def _blocks_model(skip_first: bool = True):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(4, 1, name="stem")(inputs)
    for index in range(2):
        branch = keras.layers.Conv2D(4, 3, padding="same", name=f"branch{index}")(x)
        x = keras.layers.Add(name=f"add{index}")([x, branch] if skip_first else [branch, x])
    projected = keras.layers.Conv2D(4, 1, name="projection")(inputs)  # a shortcut that is not the block's input
    x = keras.layers.Add(name="merge")([keras.layers.Conv2D(4, 3, padding="same", name="other")(x), projected])
    outputs = keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("skip_first", [True, False])
def test_an_add_of_a_tensor_and_its_own_branch_is_a_block_whichever_input_comes_first(skip_first):
    model = _blocks_model(skip_first)
    skip = 0 if skip_first else 1
    found = [(block.name, block.skip) for block in residual_blocks(model) if block.first is None]
    assert found == [("add0", skip), ("add1", skip)]  # "merge" adds two branches of the input


def test_removing_blocks_passes_the_skip_on_and_drops_the_branch():
    model = _blocks_model(skip_first=False)
    shallow = without_blocks(model, [Block("add1", skip=1)])
    names = {layer.name for layer in shallow.layers}
    assert "branch1" not in names and "add1" not in names and {"branch0", "add0", "merge"} <= names
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 4)).astype("float32")
    kept = without_blocks(model, [])
    np.testing.assert_allclose(np.asarray(kept(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-5)  # weights copied
    assert shallow(x).shape == model(x).shape


def test_a_model_without_blocks_is_returned_unchanged_and_says_so():
    import keras

    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    out = depth_prune(plain, None, blocks=3)
    assert out is plain and record_of(out).details["removed"] == []


@pytest.mark.parametrize("options, message", [
    ({"latency_reduction": 0.9}, "above 1.0"),
    ({}, "one of latency_reduction and blocks"),
    ({"latency_reduction": 1.5, "blocks": 2}, "one of latency_reduction and blocks"),
])
def test_bad_options_are_refused_before_any_work(options, message):
    with pytest.raises(UnknownOptionError, match=message):
        run_check(depth_prune.check_options, {"latency_reduction": None, "blocks": None, **options})


def test_a_stride_1_unit_with_its_batchnorm_and_relu_is_a_chain_block():
    import keras

    inputs = keras.Input((8, 8, 4))
    x = keras.layers.ReLU(name="stem")(keras.layers.Conv2D(6, 1)(inputs))  # 4 -> 6 channels: not a chain
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = keras.layers.ReLU(name="dw_relu")(keras.layers.BatchNormalization(name="dw_bn")(x))
    x = keras.layers.Conv2D(8, 1, name="pw")(x)  # 6 -> 8 channels: not a chain either
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    assert residual_blocks(model) == [Block("dw_relu", first="dw")]
    names = {layer.name for layer in without_blocks(model, residual_blocks(model)).layers}
    assert not names & {"dw", "dw_bn", "dw_relu"} and {"stem", "pw"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("name, options, adds, chains", [
    ("MobileNetV2", {"alpha": 0.35}, 10, 13), ("EfficientNetB0", {}, 9, 12), ("ResNet50", {}, 12, 17),
    ("MobileNetV3Small", {"alpha": 0.75}, 6, 17), ("MobileNet", {"alpha": 0.25}, 0, 17), ("DenseNet121", {}, 58, 2),
])
def test_keras_applications_blocks(name, options, adds, chains):
    """``adds``: the Adds and (DenseNet121) the dense units, 6 + 12 + 24 + 16."""
    import keras

    model = getattr(keras.applications, name)(input_shape=(32, 32, 3), weights=None, classes=10, **options)
    found = residual_blocks(model)
    assert (sum(b.first is None for b in found), sum(b.first is not None for b in found)) == (adds, chains)
    shallow = without_blocks(model, found)
    assert shallow.output.shape == model.output.shape and shallow.count_params() < model.count_params()


def test_a_relu_left_on_a_relu_by_the_removal_goes_too():
    import keras

    inputs = keras.Input((8, 8, 4))
    x = keras.layers.ReLU(name="first")(keras.layers.Conv2D(5, 1)(inputs))  # 4 -> 5 channels: no chain
    branch = keras.layers.Conv2D(5, 3, padding="same", name="branch")(x)
    x = keras.layers.ReLU(name="after_add")(keras.layers.Add(name="add")([x, branch]))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    shallow = without_blocks(model, residual_blocks(model))
    names = [layer.name for layer in shallow.layers]
    assert "first" in names and "after_add" not in names and "branch" not in names


def _dense_units_model():
    """A DenseNet in small: three units, each concatenating 4 new channels to its input, then BatchNorm and a
    classifier reading all of them."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(6, 3, padding="same", name="stem")(inputs)
    for index in range(3):
        y = keras.layers.ReLU()(keras.layers.BatchNormalization(name=f"unit{index}_bn")(x))
        y = keras.layers.Conv2D(4, 3, padding="same", name=f"unit{index}_conv")(y)
        x = keras.layers.Concatenate(name=f"unit{index}_concat")([x, y])
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(keras.layers.BatchNormalization(name="bn")(x)))
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(x))
    for layer in model.layers:  # BatchNorm that is not the identity, so that every channel counts
        if "bn" in layer.name:
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([gamma * 1.5, beta + 0.2, mean + 0.1, variance * 2])
    return model


def test_a_dense_unit_removed_leaves_exactly_the_model_that_ignores_its_channels():
    from edgesmith.converters.graph import ChannelGraph
    from edgesmith.converters.kernels import copy_model
    from edgesmith.converters.layers import handler_for

    model = _dense_units_model()
    units = residual_blocks(model)
    assert units == [Block(f"unit{index}_concat", skip=0, narrows=True) for index in range(3)]
    thinner = without_blocks(model, [units[1]])
    assert "unit1_conv" not in {layer.name for layer in thinner.layers}
    assert thinner.get_layer("unit2_conv").kernel.shape[2] == 10 and thinner.get_layer("head").kernel.shape[0] == 14
    graph = ChannelGraph(model)  # the reference: the unit's channels zeroed wherever they are made or read
    calls = {call.layer.name: call for call in graph.calls}
    removed = graph.closure([int(atom) for atom in graph.layouts[calls["unit1_concat"].inputs[1]]])
    ignoring = copy_model(model)
    for key, (keep_in, keep_out) in graph.kept_positions(removed).items():
        layer = graph.layers[key].layer
        ignoring.get_layer(layer.name).set_weights(handler_for(layer).zeroed(layer, keep_in, keep_out))
    x = np.random.default_rng(0).standard_normal((4, 8, 8, 1)).astype("float32")
    assert np.allclose(thinner(x), ignoring(x), atol=1e-5) and not np.allclose(thinner(x), model(x), atol=1e-3)


def test_a_dense_unit_whose_channels_reach_an_output_stays():
    import keras

    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Concatenate(name="kept")([inputs, keras.layers.Conv2D(2, 3, padding="same")(inputs)])
    model = keras.Model(inputs, x)  # removing the unit would change the output's shape
    assert residual_blocks(model) == []
