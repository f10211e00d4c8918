"""Raise the precision of the worst layers one step at a time until a verified .tflite is within a budget.

>>> from edgesmith.converters.fallback import raise_precisions
>>> from edgesmith.converters.mixed_precision import MixedPrecisionQuantizer, weighted_layers
>>> from edgesmith.converters.verify import accuracy
>>> from edgesmith.converters.ptq import float_tflite
>>> quantizer = MixedPrecisionQuantizer(float_tflite(model), data, weighted_layers(model))
>>> reference = accuracy(quantizer.float_content, data)
>>> found = raise_precisions(quantizer, data, quantizer.resolved({}, "int4"), "int8", reference=reference,
...                          max_accuracy_drop=2.0)
>>> found["met"], found["accuracy_drop_pt"] <= 2.0
(True, True)

Each step moves one layer up the ladder of
:func:`~edgesmith.converters.mixed_precision.next_precision` (int4 -> int8 -> int16x8 ->
float16 -> float32): the most sensitive among those at the lowest level, so every
layer leaves 4 bits before any leaves 8. Sensitivity is measured once, on the .tflite:
the points won back when only that layer is raised one step. The ops outside the
weighted layers (normalizations, softmax, adds...) follow the default and are one more
candidate, named :data:`OTHER_OPS`. Every candidate is quantized and verified on the data.
"""

from __future__ import annotations

from .verify import accuracy as tflite_accuracy  # the one accuracy function; `accuracy` is a local here
from .mixed_precision import PRECISIONS, next_precision, takes

OTHER_OPS = "(other ops)"  # the default precision, raised like a layer


def _level(precision: str) -> int:
    """How far up the ladder a precision is (dynamic ones sit with their weight width)."""
    ladder = {"int4-block32": 0, "int4-dynamic": 0, "int8-dynamic": 1}
    return ladder.get(precision, PRECISIONS.index(precision) if precision in PRECISIONS else len(PRECISIONS))


def _raised(quantizer, assignment: dict, name: str) -> dict | None:
    """``assignment`` with ``name`` one step up, or None when it is at float32 (or its op cannot take the step)."""
    step = next_precision(assignment[name])
    while step is not None and name != OTHER_OPS and not takes(step, quantizer.ops.get(name, ())):
        step = next_precision(step)
    if step is None:
        return None
    return {**assignment, name: step}


def _content(quantizer, assignment: dict) -> bytes:
    layers = {name: value for name, value in assignment.items() if name != OTHER_OPS}
    return quantizer.quantize(layers, assignment[OTHER_OPS])


def sensitivity_order(quantizer, data, assignment: dict, accuracy: float, progress=None) -> list:
    """``[(name, points won back when only it is raised one step)]``, most sensitive first."""
    gains = []
    names = [name for name in assignment if _raised(quantizer, assignment, name) is not None]
    for done, name in enumerate(names, start=1):
        raised = tflite_accuracy(_content(quantizer, _raised(quantizer, assignment, name)), data)
        gains.append((name, round(100.0 * (raised - accuracy), 3)))
        if progress:
            progress("fallback: sensitivity", done, len(names))
    return sorted(gains, key=lambda item: -item[1])


def raise_precisions(quantizer, data, precisions: dict, default: str, *, reference: float, max_accuracy_drop: float,
                     start_content: bytes | None = None, order=None, other_ops: bool = True, progress=None) -> dict:
    """Raise layers of ``precisions`` (and then ``default``) until the .tflite loses at most ``max_accuracy_drop``
    points against ``reference`` (an accuracy, 0..1), or nothing is left to raise.

    Args:
        quantizer: a :class:`~edgesmith.converters.mixed_precision.MixedPrecisionQuantizer` of the model.
        precisions: the starting precision of every weighted layer (``quantizer.resolved(...)``).
        default: the starting precision of every other op.
        start_content: the .tflite the budget failed on (default: ``precisions`` quantized).
        order: names from most to least sensitive (default: measured, see :func:`sensitivity_order`).
        other_ops: also raise ``default`` (as :data:`OTHER_OPS`); False keeps it.

    Returns ``{"met", "precisions", "default", "content", "accuracy", "accuracy_drop_pt", "steps", "raised",
    "sensitivity"}``: ``content`` is the best .tflite found (the one that met the budget, else the smallest drop);
    ``steps[0]`` is the start; ``raised`` lists ``{"layer", "from", "to", "accuracy_drop_pt", "bytes"}`` per step.
    """
    assignment = {**precisions, OTHER_OPS: default}
    content = start_content if start_content is not None else _content(quantizer, assignment)
    accuracy = tflite_accuracy(content, data)
    fixed = set() if other_ops else {OTHER_OPS}

    def drop_of(value: float) -> float:
        return round(100.0 * (reference - value), 4)

    def step_of(name) -> dict:
        chosen = {key: value for key, value in assignment.items() if key != OTHER_OPS}
        return {"layer": name, "precisions": chosen, "accuracy": accuracy, "accuracy_drop_pt": drop_of(accuracy),
                "bytes": len(content)}

    steps = [step_of(None)]
    best = {"assignment": dict(assignment), "content": content, "accuracy": accuracy}
    gains = None
    if order is None and drop_of(accuracy) > max_accuracy_drop:
        gains = [(name, gain) for name, gain in sensitivity_order(quantizer, data, assignment, accuracy, progress)
                 if name not in fixed]
        order = [name for name, _ in gains]
    raised = []
    while drop_of(best["accuracy"]) > max_accuracy_drop:
        name = _next_to_raise(quantizer, assignment, order or [], fixed)
        if name is None:
            break
        before, assignment = assignment[name], _raised(quantizer, assignment, name)
        content = _content(quantizer, assignment)
        accuracy = tflite_accuracy(content, data)
        steps.append(step_of(name))
        raised.append({"layer": name, "from": before, "to": assignment[name], "accuracy_drop_pt": drop_of(accuracy),
                       "bytes": len(content)})
        if progress:
            progress("fallback", len(raised), None)
        if accuracy >= best["accuracy"] or drop_of(accuracy) <= max_accuracy_drop:
            best = {"assignment": dict(assignment), "content": content, "accuracy": accuracy}
    chosen = best["assignment"]
    return {
        "met": drop_of(best["accuracy"]) <= max_accuracy_drop,
        "precisions": {name: value for name, value in chosen.items() if name != OTHER_OPS},
        "default": chosen[OTHER_OPS],
        "content": best["content"],
        "accuracy": best["accuracy"],
        "accuracy_drop_pt": drop_of(best["accuracy"]),
        "steps": steps,
        "raised": raised,
        "sensitivity": [{"layer": name, "gain_pt": gain} for name, gain in gains] if gains is not None else None,
    }


def _next_to_raise(quantizer, assignment: dict, order, fixed=()) -> str | None:
    """The most sensitive name among those at the lowest level that can still go up; None when none can."""
    names = [name for name in [*order, *assignment]
             if name not in fixed and _raised(quantizer, assignment, name) is not None]
    if not names:
        return None
    lowest = min(_level(assignment[name]) for name in names)
    return next(name for name in names if _level(assignment[name]) == lowest)
