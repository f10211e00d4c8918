"""What the written graph holds: weight bytes by element type, read from the .tflite itself."""

from edgesmith.runtime.tflite_file import weight_bytes


def test_float_and_int8_graphs_show_their_weight_types(tflite_models):
    float_weights = weight_bytes(tflite_models["float"])
    int8_weights = weight_bytes(tflite_models["int8"])
    assert float_weights["by_type"]["FLOAT32"] > 0 and "INT8" not in float_weights["by_type"]
    assert int8_weights["by_type"]["INT8"] > 0 and not int8_weights["float32"]
    assert int8_weights["by_type"]["INT8"] * 3 < float_weights["by_type"]["FLOAT32"]  # ~4x smaller weights
