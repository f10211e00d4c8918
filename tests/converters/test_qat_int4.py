"""4-bit quantization-aware training: the int4 .tflite matches the QAT model as the int8 one does."""

import pytest

from edgesmith.converters import record_of
from edgesmith.converters.errors import UnknownOptionError
from edgesmith.converters.export import export
from edgesmith.converters.ptq import ptq
from edgesmith.converters.qat import qat
from edgesmith.converters.qat_layers import weight_bits_of
from edgesmith.converters.registry import check_options
from edgesmith.converters.verify import verify
from edgesmith.runtime.tflite_file import main_operators
from tests.converters.test_qat import every_sample


def test_weight_bits_is_4_or_8():
    with pytest.raises(UnknownOptionError, match="weight_bits is one of 4, 8"):
        check_options("qat", {"weight_bits": 3})
    check_options("qat", {"weight_bits": 4})


@pytest.mark.slow
def test_int4_tflite_matches_the_4_bit_qat_model_within_0_3_pt(residual_cnn, digits, tmp_path):
    quantized = qat(residual_cnn, digits, epochs=2, weight_bits=4)
    assert record_of(quantized).details["weight_bits"] == 4 and weight_bits_of(quantized) == 4
    tflite = ptq(quantized, digits, mode="int8")
    weights = {op.name: op.inputs[1].type for op in main_operators(tflite.content)
               if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")}
    assert weights == {"CONV_2D": "INT4", "DEPTHWISE_CONV_2D": "INT8", "FULLY_CONNECTED": "INT4"}
    path = export(tflite, digits, tmp_path / "qat4.tflite")
    result = verify(path, every_sample(digits), keras_model=quantized)
    assert abs(result.keras_accuracy - result.tflite_accuracy) <= 0.003
    assert result.top1_agreement >= 0.99
    assert result.tflite_accuracy > 0.85
    assert len(tflite.content) < len(ptq(residual_cnn, digits, mode="int8").content)
