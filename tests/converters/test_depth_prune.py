"""depth_prune: which Adds are residual blocks, what removing them leaves, and the options it refuses."""

import numpy as np
import pytest

from edgesmith.converters.checks import run_check
from edgesmith.converters.depth_prune import depth_prune, residual_blocks, without_blocks
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
    assert residual_blocks(model) == [("add0", skip), ("add1", skip)]  # "merge" adds two branches of the input


def test_removing_blocks_passes_the_skip_on_and_drops_the_branch():
    model = _blocks_model(skip_first=False)
    shallow = without_blocks(model, [("add1", 1)])
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


@pytest.mark.slow
@pytest.mark.parametrize("name, options, blocks", [
    ("MobileNetV2", {"alpha": 0.35}, 10), ("EfficientNetB0", {}, 9), ("ResNet50", {}, 12),
    ("MobileNetV3Small", {"alpha": 0.75}, 6), ("MobileNet", {"alpha": 0.25}, 0), ("DenseNet121", {}, 0),
])
def test_keras_applications_blocks(name, options, blocks):
    import keras

    model = getattr(keras.applications, name)(input_shape=(32, 32, 3), weights=None, classes=10, **options)
    found = residual_blocks(model)
    assert len(found) == blocks
    if found:
        shallow = without_blocks(model, found)
        assert shallow.output.shape == model.output.shape and shallow.count_params() < model.count_params()


def test_a_relu_left_on_a_relu_by_the_removal_goes_too():
    import keras

    inputs = keras.Input((8, 8, 4))
    x = keras.layers.ReLU(name="first")(keras.layers.Conv2D(4, 1)(inputs))
    branch = keras.layers.Conv2D(4, 3, padding="same", name="branch")(x)
    x = keras.layers.ReLU(name="after_add")(keras.layers.Add(name="add")([x, branch]))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    shallow = without_blocks(model, residual_blocks(model))
    names = [layer.name for layer in shallow.layers]
    assert "first" in names and "after_add" not in names and "branch" not in names
