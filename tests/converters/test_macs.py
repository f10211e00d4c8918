"""MACs and params per layer, checked against values computed by hand."""

import keras
import pytest

from edgesmith.converters.errors import UnsupportedModelError
from edgesmith.converters.macs import count_macs, layer_costs

L = keras.layers


def _costs(model):
    return {cost["name"]: cost for cost in layer_costs(model)}


def test_sequential_conv_depthwise_separable_dense_by_hand():
    model = keras.Sequential([
        keras.Input((16, 16, 3)),
        L.Conv2D(8, 3, padding="same", name="conv"),                   # 16*16*8 * 3*3*3
        L.BatchNormalization(name="bn"),                                # 16*16*8
        L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, name="dw"),  # 8*8*16 * 9
        L.SeparableConv2D(4, 3, padding="valid", name="sep"),           # 6*6 * 16 * (9 + 4)
        L.MaxPooling2D(2, name="pool"),                                 # 3*3*4 * 4
        L.Flatten(name="flat"),
        L.Dense(10, name="fc"),                                         # 36 * 10
    ])
    costs = _costs(model)
    assert costs["conv"]["macs"] == 16 * 16 * 8 * 27
    assert costs["conv"]["params"] == 27 * 8 + 8
    assert costs["bn"]["macs"] == 16 * 16 * 8
    assert costs["dw"]["macs"] == 8 * 8 * 16 * 9
    assert costs["sep"]["macs"] == 6 * 6 * 16 * (9 + 4)
    assert costs["sep"]["params"] == 9 * 16 + 16 * 4 + 4
    assert costs["pool"]["macs"] == 3 * 3 * 4 * 4
    assert costs["flat"]["macs"] == 0
    assert costs["fc"]["macs"] == 36 * 10
    assert count_macs(model) == sum(c["macs"] for c in costs.values())


def test_conv1d_global_pool_and_nested_model_are_counted_once_per_call():
    inner = keras.Sequential([keras.Input((20, 4)), L.Conv1D(6, 5, name="c1")], name="inner")  # 16*6 * 5*4
    inputs = keras.Input((20, 4))
    a, b = inner(inputs), inner(inputs)  # shared: two calls
    x = L.GlobalAveragePooling1D(name="gap")(L.Add()([a, b]))       # 16*6
    model = keras.Model(inputs, L.Dense(3, name="fc")(x))           # 6*3
    costs = _costs(model)
    assert costs["inner/c1"]["macs"] == 2 * 16 * 6 * 20
    assert costs["gap"]["macs"] == 16 * 6
    assert costs["fc"]["macs"] == 18
    assert count_macs(model) == 2 * 16 * 6 * 20 + 16 * 6 + 18


def test_subclassed_model_names_the_passes_that_need_a_graph():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.fc = L.Dense(2)

        def call(self, x):
            return self.fc(x)

    model = Net()
    model(keras.ops.zeros((1, 3)))
    with pytest.raises(UnsupportedModelError, match="functional graph.*channel_prune"):
        count_macs(model)
