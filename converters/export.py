"""Write a converted model to disk, atomically, with edgesmith metadata embedded.

>>> from edgesmith.converters import export, ptq
>>> from edgesmith.converters.load import source_sha256
>>> tflite = ptq(model, data, mode="int8")
>>> export(tflite, data, "out/model.tflite", recipe={"name": "int8-ptq"}, source_sha256=source_sha256("digits.keras"))
PosixPath('out/model.tflite')
>>> from edgesmith.runtime import read_metadata
>>> metadata = read_metadata("out/model.tflite")
>>> metadata["recipe"], metadata["labels"][:3]
({'name': 'int8-ptq'}, ['0', '1', '2'])
"""

from __future__ import annotations

from pathlib import Path

from edgesmith.runtime.atomic_write import atomic_write_bytes
from edgesmith.runtime.metadata import embed_metadata

from .record import record_of


def build_metadata(tflite, data=None, *, recipe=None, metrics=None, source_sha256=None, name=None,
                   float_layers=None, outputs=None) -> dict:
    """The metadata dict edgesmith embeds: labels, preprocessing, recipe, metrics, source hash, MACs.

    ``float_layers``: the layers quantization-aware training left in float (None: no QAT stage).
    ``outputs``: for a model verified output by output, each one's name, shape, task and metric (in the
    .tflite's signature order).
    """
    record = record_of(tflite)
    metadata = {
        "name": name or getattr(tflite.keras_model, "name", None) or "model",
        "recipe": recipe or {},
        "metrics": metrics or {},
        "source_sha256": source_sha256,
        "macs": record.macs if record else None,
        "quantization": {"mode": tflite.mode, "io": tflite.io_type},
    }
    if float_layers is not None:
        metadata["float_layers"] = list(float_layers)
    if outputs is not None:
        metadata["outputs"] = list(outputs)
    if data is not None:
        metadata.update(labels=list(data.labels), preprocessing=data.preprocessing, data=data.describe())
    return metadata


def export(tflite, data=None, path="model.tflite", **metadata_fields) -> Path:
    """Embed metadata into ``tflite`` (a :class:`~edgesmith.converters.ptq.TFLiteModel`) and write it to ``path``.

    ``metadata_fields`` are those of :func:`build_metadata` (recipe, metrics, source_sha256, name,
    float_layers, outputs).
    The file appears complete or not at all.
    """
    target = Path(path)
    atomic_write_bytes(target, embed_metadata(tflite.content, build_metadata(tflite, data, **metadata_fields)))
    return target
