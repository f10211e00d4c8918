"""The one interpreter factory: a path or bytes, with or without XNNPACK, every tensor kept, reference kernels."""

import numpy as np

from edgesmith.runtime.interpreter import delegated_nodes, open_interpreter
from edgesmith.runtime.tensors import real_values, stored_values
from edgesmith.runtime.tflite_file import read_contents


def _run(interpreter, sample, main):
    interpreter.allocate_tensors()
    interpreter.set_tensor(main.inputs[0], stored_values(sample, main.tensors[main.inputs[0]]))
    interpreter.invoke()
    return real_values(interpreter.get_tensor(main.outputs[0]), main.tensors[main.outputs[0]])


def test_every_way_of_opening_gives_the_same_outputs_and_kept_tensors_are_readable(tflite_models):
    content = tflite_models["int8"].read_bytes()
    main = read_contents(content).subgraphs[0]
    sample = tflite_models["samples"][:1]
    expected = _run(open_interpreter(tflite_models["int8"]), sample, main)
    for options in ({"xnnpack": False}, {"reference_kernels": True}, {"threads": 1}):
        assert np.allclose(_run(open_interpreter(content, **options), sample, main), expected, atol=0.02), options
    kept = open_interpreter(content, xnnpack=False, preserve_all_tensors=True)
    _run(kept, sample, main)
    inner = next(op.outputs[0] for op in main.operators if op.name == "CONV_2D")
    assert kept.get_tensor(inner.index).shape == tuple(inner.shape)


def test_delegated_nodes_name_what_xnnpack_took(tflite_models):
    names = [node["op_name"] for node in delegated_nodes(tflite_models["float"])]
    assert "DELEGATE" in names and "CONV_2D" in names
