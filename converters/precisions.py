"""The precisions a layer can take in a mixed-precision .tflite (:mod:`edgesmith.converters.mixed_precision`
describes each), as names: importing them loads neither Keras nor TensorFlow.

>>> PRECISIONS[0], "int8-dynamic" in ALL_PRECISIONS
('int4', True)
"""

PRECISIONS = ("int4", "int8", "int16x8", "float16", "float32")  # the ladder, cheapest first
DYNAMIC_PRECISIONS = ("int4-block32", "int4-dynamic", "int8-dynamic")  # float activations, quantized on the fly
ALL_PRECISIONS = PRECISIONS + DYNAMIC_PRECISIONS
