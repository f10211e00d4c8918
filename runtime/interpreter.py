"""The one place a LiteRT interpreter is made: its backend, threads, delegate, kept tensors and kernels.

>>> from edgesmith.runtime.interpreter import open_interpreter
>>> interpreter = open_interpreter("model.tflite", threads=1, xnnpack=False)
>>> interpreter.get_input_details()[0]["shape"].tolist()
[1, 16, 16, 3]

The backend is ai_edge_litert, else tflite_runtime (32-bit ARM), else tensorflow.lite.
"""

from __future__ import annotations

import importlib

from .errors import InputError, ModelLoadError
from .tflite_file import natural_key

BACKENDS = ("ai_edge_litert", "tflite_runtime", "tensorflow")


def interpreter_class(backend: str = "auto"):
    """Return ``(Interpreter class, backend name)``, preferring ai_edge_litert."""
    candidates = BACKENDS if backend == "auto" else (backend,)
    if backend != "auto" and backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose auto or one of: {', '.join(BACKENDS)}")
    for name in candidates:
        try:
            if name == "tensorflow":
                return importlib.import_module("tensorflow").lite.Interpreter, name
            return importlib.import_module(f"{name}.interpreter").Interpreter, name
        except ImportError:
            continue
    raise ModelLoadError("no LiteRT runtime is installed: pip install ai-edge-litert (or tflite-runtime on 32-bit ARM)")


def open_interpreter(model, *, threads: int | None = None, backend: str = "auto", xnnpack: bool = True,
                     preserve_all_tensors: bool = False, reference_kernels: bool = False):
    """A LiteRT interpreter, tensors not yet allocated.

    Args:
        model: a .tflite path, or its bytes.
        threads: CPU threads (None lets LiteRT choose).
        backend: ``"auto"`` or one of :data:`BACKENDS`.
        xnnpack: apply LiteRT's default delegate (XNNPACK); without it every op runs on LiteRT's own kernels.
        preserve_all_tensors: keep every intermediate tensor readable after ``invoke`` (debugging).
        reference_kernels: LiteRT's reference kernels (no delegate, no optimized kernels): what TFLite Micro
            is compared against.
    """
    Interpreter, _ = interpreter_class(backend)
    source = {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray)) else {"model_path": str(model)}
    options = {}
    if reference_kernels or not xnnpack:
        resolver = importlib.import_module(Interpreter.__module__).OpResolverType
        options["experimental_op_resolver_type"] = (
            resolver.BUILTIN_REF if reference_kernels else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    if preserve_all_tensors:  # LiteRT warns that this is for debugging where a delegate may apply
        options["experimental_preserve_all_tensors"] = True
    return Interpreter(**source, num_threads=threads, **options)


def output_details(interpreter) -> list:
    """The interpreter's output details in the order of its one signature's outputs (``output_0``, ``output_1``,
    ..., a Keras model's own output order), else as the file lists them. A converted Keras model lists its output
    tensors in an order of the converter's making (a three-headed model gave heads 1, 0, 2)."""
    listed = interpreter.get_output_details()
    signatures = interpreter.get_signature_list()
    if len(listed) < 2 or len(signatures) != 1:
        return listed
    named = interpreter.get_signature_runner(next(iter(signatures))).get_output_details()
    by_index = {detail["index"]: detail for detail in listed}
    ordered = [by_index.get(named[name]["index"]) for name in sorted(named, key=natural_key)]
    return ordered if None not in ordered and len(ordered) == len(listed) else listed


def delegated_nodes(path) -> list:
    """The nodes of the main graph once LiteRT's default delegate (XNNPACK) has taken its share: ``{"index",
    "op_name", "inputs", "outputs"}`` each, a delegate's node named ``DELEGATE``. Only the interpreter knows which
    nodes a delegate took, and only its private ``_get_ops_details`` tells: this is the one call to it."""
    interpreter = open_interpreter(path, threads=1)
    interpreter.allocate_tensors()
    return [{"index": n["index"], "op_name": n["op_name"], "inputs": [int(i) for i in n["inputs"]],
             "outputs": [int(i) for i in n["outputs"]]} for n in interpreter._get_ops_details()]
