"""Load the model to convert: Keras 3 ``.keras``, legacy Keras 2 ``.h5``, an in-memory
``keras.Model``, or a TensorFlow SavedModel (post-training passes only).

>>> from edgesmith.converters import load_model
>>> model = load_model("digits.keras")
>>> model.name, model.input_shape
('tiny', (None, 8, 8, 1))
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

from edgesmith.runtime.errors import first_line

from .errors import CorruptModelError
from .sources import SavedModelSource


def load_model(source):
    """Return a ``keras.Model`` (or a :class:`SavedModelSource`) from ``source``.

    Args:
        source: a ``keras.Model``, a ``.keras``/``.h5`` file, or a SavedModel directory.
    """
    if not isinstance(source, (str, os.PathLike)):
        return source  # a keras.Model or a SavedModelSource
    path = check_model_path(source)
    if path.is_dir():
        return SavedModelSource(path)
    import keras

    from . import cluster, prune, qat_layers  # noqa: F401  (registers the layers and constraints edgesmith saves)

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # keras raises many kinds for damaged files
        reason = first_line(exc)[:200]
        if path.suffix == ".keras" and not zipfile.is_zipfile(path):
            reason = "not a zip archive (truncated or not a .keras file)"
        raise CorruptModelError(f"{path}: cannot load the model ({reason})") from None


def has_symbolic_inputs(model) -> bool:
    """Whether ``model`` is a graph Keras can call symbolically (Functional, Sequential), not a subclassed model
    whose inputs exist only when Python code runs."""
    try:
        return bool(model.inputs)
    except (AttributeError, ValueError):
        return False


def functional_wrapper(model, sample_shape):
    """A subclassed ``model`` as a Functional model fed ``sample_shape`` inputs (what the converter, the
    verification and the passes read). Its layers stay inside it, as one nested layer of the wrapper.

    >>> import keras
    >>> class Tiny(keras.Model):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.dense = keras.layers.Dense(2)
    ...     def call(self, x):
    ...         return self.dense(x)
    >>> wrapped = functional_wrapper(Tiny(), (3,))
    >>> wrapped.inputs[0].shape, wrapped.outputs[0].shape
    ((None, 3), (None, 2))
    """
    import keras

    inputs = keras.Input(tuple(sample_shape), name="input")
    return keras.Model(inputs, model(inputs), name=model.name)


def check_model_path(source) -> Path:
    """``source`` as a path if it names what :func:`load_model` reads (a .keras/.h5 file or a SavedModel
    directory), else its one-line :class:`CorruptModelError`; reads nothing, and loads no Keras."""
    path = Path(source)
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise CorruptModelError(f"{path}: a directory without saved_model.pb is not a SavedModel")
    elif not path.is_file():
        raise CorruptModelError(f"{path}: no such model file")
    elif path.suffix not in (".keras", ".h5", ".hdf5"):
        raise CorruptModelError(f"{path}: expected a .keras or .h5 model file or a SavedModel directory")
    return path


def source_sha256(source, model=None) -> str:
    """SHA-256 of the model file, or of the weights and architecture of an in-memory model."""
    from edgesmith.runtime.bench import file_sha256  # not at the top: it loads the energy meters

    if isinstance(source, (str, Path)) and Path(source).is_file():
        return file_sha256(Path(source))
    if isinstance(source, SavedModelSource) or (isinstance(source, (str, Path)) and Path(source).is_dir()):
        root = Path(getattr(source, "path", source))
        digest = hashlib.sha256()
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            digest.update(file_sha256(file).encode())
        return digest.hexdigest()
    return _weights_sha256(model if model is not None else source)


def _weights_sha256(model) -> str:
    import json

    import numpy as np

    digest = hashlib.sha256(json.dumps(model.to_json() if hasattr(model, "to_json") else repr(model)).encode())
    for weight in model.weights:
        digest.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    return digest.hexdigest()
