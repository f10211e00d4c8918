"""How exactly a .tflite in TFLite Micro agrees with LiteRT's reference kernels, and its accuracy given labels.

TFLM runs reference kernels; so does LiteRT with ``OpResolverType.BUILTIN_REF``. For an int8 model the two
agree bit for bit, nearly: every sample whose raw outputs differ is counted (``outputs_differing``), with the
largest difference. Seen: an int8 SOFTMAX output one step (1/256) apart on 1 sample in 359.

>>> result = evaluate("digits.tflite", micro_dataset("builtin:digits", "digits.tflite", limit=20))
>>> result["samples"], result["top1_agreement"], result["max_output_difference"] <= 1 / 256
(20, 1.0, True)
"""

from __future__ import annotations

import numpy as np

from edgesmith.data import check_shapes, load_data
from edgesmith.preprocessing import Preprocessing, preprocessing_from
from edgesmith.runtime.errors import InputError
from edgesmith.runtime.interpreter import open_interpreter
from edgesmith.runtime.metadata import read_metadata
from edgesmith.runtime.micro import MicroModel


def metadata_preprocessing(metadata: dict | None) -> Preprocessing | None:
    """How the .tflite's own edgesmith metadata says pixels are normalized, or None.

    >>> metadata_preprocessing({"preprocessing": {"mean": [127.5], "std": [127.5], "preset": "tf"}}).describe()
    'tf: -1..1, pixels / 127.5 - 1 (keras.applications MobileNet, MobileNetV2, NASNet, Xception); read from the model (its edgesmith metadata)'
    """
    pre = (metadata or {}).get("preprocessing") or {}
    if "mean" not in pre or "std" not in pre:
        return None
    return Preprocessing(tuple(pre["mean"]), tuple(pre["std"]), "bgr" if pre.get("color") == "bgr" else "rgb",
                         pre.get("preset", "custom"), "model", "its edgesmith metadata")


def micro_dataset(spec: str, model, preprocess=None, limit: int | None = None):
    """``spec`` (a --data spec) loaded at the .tflite's input shape, normalized as ``preprocess`` says, else as
    the model's metadata says, else 0..1 (see :mod:`edgesmith.data`)."""
    shape = tuple(MicroModel(model).inputs[0]["shape"][1:])
    chosen = preprocessing_from(preprocess) or metadata_preprocessing(read_metadata(model))
    if len(shape) == 3:
        color = "grayscale" if shape[2] == 1 else "rgb"
        data = load_data(spec, image_size=shape[:2], color=color, preprocessing=chosen, input_shape=shape, limit=limit)
    else:
        data = load_data(spec, preprocessing=chosen, input_shape=shape, limit=limit)
    check_shapes(shape, data.sample_shape, spec)
    return data


def evaluate(model, data) -> dict:
    """``model`` (.tflite) in TFLM against LiteRT's reference kernels on ``data``'s evaluation split: how many
    samples' raw outputs differ at all (every output) and by how much; with class labels for a model of one
    output, also the top-1 accuracy of each and their agreement."""
    micro = MicroModel(model)
    if len(micro.inputs) != 1:
        raise InputError(f"{model}: TFLite Micro is run on models of one input, it has {len(micro.inputs)}")
    if data.labeled and len(micro.outputs) != 1:
        raise InputError(f"{data.source}: class labels score one output, {model} has {len(micro.outputs)}; give the "
                         "data without labels to compare TFLite Micro's outputs with LiteRT's")
    reference = open_interpreter(micro.data, reference_kernels=True)  # no XNNPACK, no optimized kernels
    reference.allocate_tensors()
    inputs, outputs = reference.get_input_details()[0], reference.get_output_details()  # the graph's order, as TFLM
    ours, theirs, differing, largest = [], [], 0, 0.0
    for start in range(0, len(data.x_val), 256):
        for sample in data.x_val[start:start + 256]:
            tensor = micro.to_input(sample[None])
            raws = micro.invoke([tensor])
            reference.set_tensor(inputs["index"], tensor)
            reference.invoke()
            expected = [reference.get_tensor(output["index"]) for output in outputs]
            ours.append(int(np.argmax(raws[0])))
            theirs.append(int(np.argmax(expected[0])))
            gaps = [float(np.max(np.abs(raw.astype(np.float64) - want.astype(np.float64))))
                    for raw, want in zip(raws, expected) if not np.array_equal(raw, want)]
            if gaps:
                differing, largest = differing + 1, max(largest, *gaps)
    result = {"samples": int(len(ours)), "outputs": len(outputs), "outputs_differing": differing,
              "max_output_difference": largest}
    if data.labeled:
        ours, theirs, labels = np.array(ours), np.array(theirs), np.asarray(data.y_val)
        result.update(tflm_accuracy=float(np.mean(ours == labels)), reference_accuracy=float(np.mean(theirs == labels)),
                      top1_agreement=float(np.mean(ours == theirs)))
    return result
