"""edgesmith metadata inside a .tflite file: one writer, one reader, no TensorFlow.

edgesmith's metadata is a JSON object: labels, input preprocessing, the recipe,
measured metrics, the source-model SHA-256 and the edgesmith version. It is
stored three ways, following the LiteRT / TFLite Support conventions, so that
every kind of reader finds it:

1. a flatbuffer ``metadata`` entry named ``edgesmith`` whose buffer is the
   UTF-8 JSON (read with the LiteRT schema);
2. a ``TFLITE_METADATA`` entry holding a TFLite Support ``ModelMetadata``
   flatbuffer: image size, colour space, normalization and the label file,
   which the Android metadata extractor and MediaPipe understand;
3. a zip appended to the flatbuffer with ``edgesmith.json`` and
   ``labels.txt``, which any zip reader (Java's ``ZipFile``, Python's
   ``zipfile``) opens, even where no flatbuffer schema is installed.

>>> path = write_metadata("model.tflite", {"labels": ["cat", "dog"],
...     "preprocessing": {"size": [96, 96], "color": "rgb", "mean": [127.5], "std": [127.5]}})
>>> path.name, read_metadata(path)["labels"]
('model.tflite', ['cat', 'dog'])

Preprocessing means: ``input = (pixel - mean) / std`` per channel, with pixels in
[0, 255], after resizing to ``size`` = [height, width] in colour mode ``color``
("rgb" or "grayscale").
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from . import support_metadata as support
from .atomic_write import atomic_write_bytes
from .errors import MetadataError
from .tflite_file import TFLITE_IDENTIFIER, metadata_entry, read_contents, read_model, read_tflite_file, schema

ENTRY_NAME = "edgesmith"
JSON_FILE = "edgesmith.json"
LABELS_FILE = "labels.txt"
METADATA_VERSION = 1


def edgesmith_version() -> str:
    """The installed edgesmith version (or "0+unknown" in an uninstalled tree)."""
    try:
        from importlib.metadata import version

        return version("edgesmith")
    except Exception:  # running from a source tree that is not installed
        return "0+unknown"


def canonical_json(metadata: dict) -> bytes:
    """The exact bytes stored: sorted keys, UTF-8, no insignificant spaces."""
    return json.dumps(metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def complete(metadata: dict) -> dict:
    """Add the fields every edgesmith file carries (schema and tool version)."""
    filled = {"metadata_version": METADATA_VERSION, "edgesmith_version": edgesmith_version()}
    filled.update(metadata)
    return json.loads(canonical_json(filled))  # tuples to lists, as a reader will see them


def embed_metadata(tflite: bytes, metadata: dict) -> bytes:
    """Return ``tflite`` with ``metadata`` embedded (replacing any earlier edgesmith metadata)."""
    fb = schema()
    if fb is None:
        raise MetadataError("writing metadata needs ai-edge-litert (its flatbuffer schema)")
    if tflite[4:8] != TFLITE_IDENTIFIER:
        raise MetadataError("not a TFLite flatbuffer (no TFL3 identifier)")
    metadata = complete(metadata)
    payload = canonical_json(metadata)
    model = read_model(tflite)
    _inline_offset_buffers(model, tflite)
    _set_entry(fb, model, ENTRY_NAME, payload)
    _set_entry(fb, model, support.ENTRY_NAME, support.build(_support_view(tflite, metadata)))
    builder = __import__("flatbuffers").Builder(len(tflite) + len(payload) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return _append_zip(bytes(builder.Output()), _zip_members(tflite, metadata, payload))


def write_metadata(path, metadata: dict, output=None) -> Path:
    """Embed ``metadata`` into the .tflite at ``path`` (or write to ``output``), atomically."""
    content = read_tflite_file(path)
    target = Path(output) if output else Path(path)
    atomic_write_bytes(target, embed_metadata(content, metadata))
    return target


def read_metadata(path) -> dict | None:
    """edgesmith's metadata from a .tflite file, or None if it has none."""
    data = Path(path).read_bytes()
    payload = metadata_entry(data, ENTRY_NAME) or read_associated_file(data, JSON_FILE)
    if payload is None:
        return None
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetadataError(f"{path}: edgesmith metadata is not valid JSON ({exc})") from None


def read_support_metadata(path) -> support.SupportMetadata | None:
    """The TFLite Support ``ModelMetadata`` of any .tflite (edgesmith's or another tool's)."""
    payload = metadata_entry(Path(path).read_bytes(), support.ENTRY_NAME)
    return support.parse(payload) if payload else None


def read_associated_file(data: bytes, name: str) -> bytes | None:
    """One file from the zip appended to a .tflite, or None."""
    return _associated_files(data).get(name)


def _associated_files(data: bytes) -> dict:
    """``{name: bytes}`` of every file in the zip appended to a .tflite (empty without one)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except zipfile.BadZipFile:
        return {}


# -- internals -----------------------------------------------------------------


def _inline_offset_buffers(model, tflite: bytes) -> None:
    """Move buffers stored after the flatbuffer (by offset, as litert-quantizer writes large
    weights) inside it: repacking the flatbuffer would leave their offsets pointing elsewhere."""
    for buffer in model.buffers:
        if buffer.offset > 1:
            buffer.data = np.frombuffer(tflite, np.uint8, buffer.size, buffer.offset)
            buffer.offset = buffer.size = 0


def _set_entry(fb, model, name: str, payload: bytes) -> None:
    """Point metadata entry ``name`` at a buffer holding ``payload``, reusing its old buffer."""
    data = np.frombuffer(payload, dtype=np.uint8).copy()
    for entry in model.metadata or []:
        if entry.name in (name, name.encode()):  # bytes as read, str as set here
            model.buffers[entry.buffer].data = data
            return
    buffer = fb.BufferT()
    buffer.data = data
    model.buffers.append(buffer)
    entry = fb.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = (model.metadata or []) + [entry]


def _support_view(tflite: bytes, metadata: dict) -> support.SupportMetadata:
    """Translate edgesmith's JSON into the TFLite Support fields other tools read."""
    main = read_contents(tflite).subgraphs[0]
    inputs = [support.TensorInfo(name=main.tensors[i].name) for i in main.inputs]
    outputs = [support.TensorInfo(name=main.tensors[i].name) for i in main.outputs]
    pre = metadata.get("preprocessing") or {}
    if inputs and pre.get("color") in support.COLOR_SPACES:
        height, width = pre.get("size", [0, 0])
        inputs[0].color_space = pre["color"]
        inputs[0].image_size = (width, height)
        if "mean" in pre and "std" in pre:
            inputs[0].mean, inputs[0].std = pre["mean"], pre["std"]
    if outputs and metadata.get("labels"):
        outputs[0].label_files = [LABELS_FILE]
    return support.SupportMetadata(
        name=str(metadata.get("name", "edgesmith model")),
        description=str(metadata.get("description", "Written by edgesmith")),
        version=str(metadata.get("edgesmith_version", "")),
        author="edgesmith",
        inputs=inputs,
        outputs=outputs,
        files=[(JSON_FILE, "edgesmith metadata (JSON)", support.FILE_DESCRIPTIONS)],
    )


def _zip_members(original: bytes, metadata: dict, payload: bytes) -> dict:
    """Files to append: keep other tools' associated files, replace edgesmith's."""
    members = {**_associated_files(original), JSON_FILE: payload}
    if metadata.get("labels"):
        members[LABELS_FILE] = ("\n".join(metadata["labels"]) + "\n").encode("utf-8")
    return members


def _append_zip(flatbuffer: bytes, members: dict) -> bytes:
    """Append a zip whose offsets count from the start of the file (as TFLite Support does)."""
    stream = io.BytesIO(flatbuffer)
    with zipfile.ZipFile(stream, "a", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, members[name])
    return stream.getvalue()
