"""Run a recipe: passes in order, then export and verify the .tflite, then the reports.

>>> from edgesmith.pipeline import convert
>>> report = convert("digits.keras", "int8-qat", "builtin:digits", "out/")
>>> report["tflite_path"], report["tflite_bytes"] < report["float_tflite_bytes"] / 3
('out/model.tflite', True)
>>> report["tflite_accuracy"] > 0.9, report["accuracy_drop_pt"] <= report["recipe"]["max_accuracy_drop"]
(True, True)

Writes ``out/model.tflite``, ``out/report.json`` and ``out/report.md``. Each
Keras stage is saved under ``out/stages/`` (model, then a JSON marker written
last); with ``resume=True`` a stage whose marker matches the same model, data
and recipe so far is loaded instead of run again, so an interrupted run
continues where it stopped. The runner, :func:`run_recipe` (which each candidate of
``edgesmith optimize`` also goes through), knows nothing about particular passes:
it looks them up in :mod:`edgesmith.converters.registry`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from edgesmith.converters.errors import AccuracyDropError, ConversionError
from edgesmith.converters.distill import remember_teacher, teacher_of
from edgesmith.converters.export import export
from edgesmith.converters.fallback import raise_precisions
from edgesmith.converters.mixed_precision import EIGHT_BIT_OF, MixedPrecisionQuantizer, weighted_layers
from edgesmith.converters.inputs import normalizing_layer
from edgesmith.converters.stage import stage_record
from edgesmith.converters.load import SavedModelSource, load_model, source_sha256
from edgesmith.converters.ptq import TFLiteModel, float_tflite
from edgesmith.converters.record import StageRecord, record_of, remember
from edgesmith.converters.registry import check_model, get_pass
from edgesmith.converters.verify import accuracy, check_drop, verify
from edgesmith.data import Dataset, load_data
from edgesmith.preprocessing import InputContractError, choose_preprocessing, preprocessing_from, refuse_at_chance
from edgesmith.recipes import Recipe, Step, check_fallback, load_recipe
from edgesmith.runtime.bench import benchmark
from edgesmith.runtime.metadata import atomic_write_bytes
from edgesmith.runtime.tflite_file import gzipped_size, total_weight_bytes, weight_bytes

MAX_SHOWN_CLUSTERS = 256  # more distinct values than this in a kernel means "not clustered"


@dataclass(frozen=True)
class Source:
    """The model a recipe starts from: loaded, the SHA-256 of what was given (``source_sha256``), and its row
    of the stage table (:func:`source_stage`; None: each run measures it)."""

    model: object
    sha256: str
    stage: dict | None = None


@dataclass(frozen=True)
class Converted:
    """What a run of a recipe produced: its report and the converted graph (``tflite.content``) it describes."""

    report: dict
    tflite: TFLiteModel


def convert(model, recipe, data, out_dir, *, preprocess=None, resume: bool = False, fallback: bool | None = None,
            progress=None) -> dict:
    """Apply ``recipe`` to ``model``, write and verify ``out_dir/model.tflite``; return the report.

    Args:
        model: a ``keras.Model``, a ``.keras``/``.h5`` file or a SavedModel directory.
        recipe: a built-in recipe name, a recipe TOML file, or a :class:`~edgesmith.recipes.Recipe`.
        data: a data spec (see :mod:`edgesmith.data`) or a loaded :class:`~edgesmith.data.Dataset`.
        out_dir: where model.tflite, report.json, report.md and stages/ go.
        preprocess: how the model wants its pixels: a preset name (``raw``, ``unit``, ``tf``, ``torch``,
            ``caffe``), ``{"mean": ..., "std": ...}``, or None for the recipe's ``preprocess`` key, else what
            the model says (see :mod:`edgesmith.preprocessing`).
        resume: reuse stages an earlier (interrupted) run completed.
        fallback: over the budget, raise the precision of the worst layers until it holds (:func:`fall_back`);
            None: the recipe's ``fallback`` key decides.
        progress: optional ``progress(stage, done, total)`` callback (``total`` None = stage started;
            a stage reused by ``resume`` reports ``(stage, 0, 0)`` without starting).

    A drop over the recipe's ``max_accuracy_drop`` raises ``AccuracyDropError`` carrying the (written) report.
    """
    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    fallback = recipe.fallback if fallback is None else fallback
    if fallback:
        check_fallback(recipe.passes)  # a recipe the fallback cannot raise fails here, before any work
    explicit = preprocessing_from(preprocess) or preprocessing_from(recipe.preprocess, origin="recipe")
    loaded = load_model(model)
    data = dataset_for(data, loaded, explicit)
    source = Source(loaded, source_sha256(model, loaded))
    converted = run_recipe(source, recipe, data, out_dir, resume=resume, progress=progress)
    report = converted.report
    over = recipe.max_accuracy_drop is not None and (report["accuracy_drop_pt"] or 0.0) > recipe.max_accuracy_drop
    if fallback and over:
        report = fall_back(converted, source, recipe, data, out_dir, progress=progress)
    _write_json(Path(out_dir) / "report.json", report)
    atomic_write_bytes(Path(out_dir) / "report.md", markdown_report(report).encode("utf-8"))
    if report.get("fallback") and not report["fallback"]["met"]:
        raise AccuracyDropError(_unreachable(report, recipe.max_accuracy_drop), report)
    check_drop(report, recipe.max_accuracy_drop, report["tflite_path"], report)
    return report


def run_recipe(source: Source, recipe: Recipe, data: Dataset, out_dir, *, name: str | None = None,
               keep_stages: bool = True, resume: bool = False, strategy=None, progress=None) -> Converted:
    """Apply ``recipe``'s passes to ``source``, then write ``out_dir/model.tflite`` once it is verified; reports
    and the accuracy budget are the caller's (as in :func:`convert`).

    Args:
        name: the model's name in the .tflite's metadata (default: the source model's).
        keep_stages: save each Keras stage under ``out_dir/stages/`` (what ``resume`` reuses) and measure its
            accuracy and float .tflite size; False keeps only what each pass records (a search's candidates).
        strategy: a ``tf.distribute`` strategy the Keras passes run under (None: the default).
        progress: see :func:`convert`.
    """
    out, notify, current = Path(out_dir), progress or (lambda stage, done, total: None), source.model
    if not isinstance(current, SavedModelSource):
        data.check_model(current)
    for step in recipe.passes:  # an architecture a pass cannot take fails here, before any training
        check_model(step.name, current, step.options)
    stages = [source.stage or source_stage(current, data)]
    refuse_unreadable(stages[0]["accuracy"], data)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        for index, step in enumerate(recipe.keras_passes, start=1):
            stem = out / "stages" / f"{index:02d}-{step.name}" if keep_stages else None
            current = _run_or_resume(current, data, step, stem, _fingerprint(source.sha256, data, recipe, index),
                                     resume, notify)
            stages.append(_measure(record_of(current), current, data) if keep_stages else record_of(current).as_dict())
    notify(recipe.conversion.name, 0, None)
    tflite = get_pass(recipe.conversion.name)(current, data, **recipe.conversion.options)
    return Converted(_finish(tflite, source, current, data, recipe, stages, out / "model.tflite", name), tflite)


# -- fallback ---------------------------------------------------------------------

FALLBACK_BENCH = {"threads": 1, "runs": 30, "warmup": 3, "energy": "none"}


def fall_back(converted: Converted, source: Source, recipe: Recipe, data: Dataset, out_dir, *, progress=None) -> dict:
    """Raise the precision of the worst layers of ``converted`` one step at a time (int4 -> int8 -> int16x8 ->
    float16 -> float32), re-verifying the .tflite each time, until ``recipe``'s budget holds or nothing is left;
    write the best .tflite over ``out_dir/model.tflite`` and return its report, whose ``fallback`` entry lists what
    was raised and what it cost in bytes and latency (see :mod:`edgesmith.converters.fallback`).

    The final Keras model is re-quantized by litert-quantizer (calibrated on the data), starting from the
    precisions the recipe's conversion gave; the recipe recorded in the new .tflite replays that result.
    """
    notify = progress or (lambda stage, done, total: None)
    report, tflite = converted.report, converted.tflite
    model = tflite.keras_model
    if model is None:
        raise ConversionError("fallback needs a Keras model: a SavedModel converts with ptq only")
    notify("fallback", 0, None)
    quantizer = MixedPrecisionQuantizer(float_tflite(model), data, weighted_layers(model))
    precisions, default = _starting_precisions(recipe.conversion, tflite, quantizer)
    found = raise_precisions(quantizer, data, precisions, default, reference=report["source_accuracy"],
                             max_accuracy_drop=recipe.max_accuracy_drop, start_content=tflite.content,
                             progress=lambda stage, done, total: total and notify(stage, done, total))
    summary = {"met": found["met"], "raised": found["raised"], "sensitivity": found["sensitivity"],
               "precisions": found["precisions"], "default": found["default"], "from_recipe": recipe.as_dict(),
               "start": _cost(tflite.content, report["accuracy_drop_pt"], out_dir),
               "end": _cost(found["content"], found["accuracy_drop_pt"], out_dir)}
    if found["content"] is tflite.content:  # nothing raised did better: the first artifact stays
        return {**report, "fallback": summary}
    replay = Recipe(name=f"{recipe.name}+fallback", description=recipe.description,
                    max_accuracy_drop=recipe.max_accuracy_drop, preprocess=recipe.preprocess,
                    passes=(*recipe.keras_passes, Step("mixed_precision", {"precisions": found["precisions"],
                                                                           "default": found["default"]})))
    raised = TFLiteModel(found["content"], model, "mixed", "float")
    remember(raised, stage_record("mixed_precision:fallback", model, details={
        "precisions": found["precisions"], "default": found["default"], "raised": found["raised"],
        "tflite_bytes": len(found["content"]), "gzip_bytes": gzipped_size(found["content"])}))
    new_report = _finish(raised, source, model, data, replay, [dict(row) for row in report["stages"][:-1]],
                         Path(report["tflite_path"]), None)
    return {**new_report, "fallback": summary}


def _starting_precisions(step: Step, tflite, quantizer) -> tuple:
    """``(per-layer precisions, default)`` the recipe's conversion gave, in mixed-precision terms."""
    if step.name == "mixed_precision":
        default = step.options.get("default", "int8")
        return quantizer.resolved(step.options.get("precisions") or {}, default), EIGHT_BIT_OF.get(default, default)
    mode = {"int8": "int8", "int16x8": "int16x8", "dynamic": "int8-dynamic", "fp16": "float16"}.get(tflite.mode,
                                                                                                     "float32")
    other = "float32" if mode == "int8-dynamic" else mode
    return quantizer.resolved({}, mode), other


def _cost(content: bytes, drop, out_dir) -> dict:
    """Graph bytes, accuracy drop and p50 invoke latency (1 thread, the runtime's benchmark) of a .tflite."""
    path = Path(out_dir) / ".fallback-bench.tflite"
    atomic_write_bytes(path, content)
    try:
        latency = benchmark(path, **FALLBACK_BENCH)["summary"]["latency_ms"]["p50"]
    finally:
        path.unlink(missing_ok=True)
    return {"tflite_bytes": len(content), "accuracy_drop_pt": drop, "latency_ms_p50": round(latency, 4)}


def _unreachable(report: dict, budget) -> str:
    fallback = report["fallback"]
    return (f"{report['tflite_path']}: accuracy dropped {report['accuracy_drop_pt']:.2f} pt, more than the recipe's "
            f"max_accuracy_drop of {budget} pt, even after the fallback raised {len(fallback['raised'])} step(s) "
            f"(from {fallback['start']['accuracy_drop_pt']:.2f} pt; best {fallback['end']['accuracy_drop_pt']:.2f} pt); "
            "the best artifact is kept")


# -- stages ---------------------------------------------------------------------


def dataset_for(data, model, preprocess=None) -> Dataset:
    """``data`` (a Dataset or a --data spec) loaded at ``model``'s input size and colour mode, normalized
    as ``preprocess`` (a preset, mean/std, or None: what the model says) decides."""
    explicit = preprocessing_from(preprocess)
    if isinstance(data, Dataset):
        if explicit is not None:
            raise InputContractError("preprocessing applies to a data spec; a loaded Dataset is already normalized")
        return data
    if data is None:
        raise ConversionError("convert needs --data (builtin:digits, an image folder or an .npz file)")
    keras_model = None if isinstance(model, SavedModelSource) else model
    chosen = choose_preprocessing(explicit, normalizing_layer(keras_model) if keras_model is not None else None)
    shape = None if keras_model is None or len(keras_model.inputs) != 1 else tuple(keras_model.inputs[0].shape[1:])
    if shape is not None and len(shape) == 3 and None not in shape[:2]:
        color = "grayscale" if shape[2] == 1 else "rgb"
        return load_data(data, image_size=shape[:2], color=color, preprocessing=chosen, input_shape=shape)
    return load_data(data, preprocessing=chosen, input_shape=shape)


def readable_source(model, data, preprocess=None) -> tuple:
    """``(keras_model, dataset, accuracy)``: the source model loaded, the data fed as it expects, and its
    accuracy on the evaluation split; refused (exit 2) when it scores at chance. For commands that
    measure a model before they change it (optimize, sensitivity)."""
    loaded = load_model(model)
    data = dataset_for(data, loaded, preprocess)
    data.check_model(loaded)
    measured = accuracy(loaded, data)
    refuse_unreadable(measured, data)
    return loaded, data, measured


def refuse_unreadable(source_accuracy, data: Dataset) -> None:
    """Stop before any work when the source model scores at chance on ``data``: it cannot read it as fed."""
    fed = data.contract.describe() if data.contract is not None else "none (arrays fed as stored)"
    refuse_at_chance(source_accuracy, data.y_val, fed, data.source)


def source_stage(model, data, accuracy: float | None = None) -> dict:
    """The source model's row of the stage table; ``accuracy``: its accuracy when already measured."""
    if isinstance(model, SavedModelSource):
        return _measure(StageRecord(name="source", params=0, nonzero_params=0), model, data)
    return _measure(stage_record("source", model, accuracy=accuracy), model, data)


def _measure(record: StageRecord, model, data) -> dict:
    """The stage's row: its record, plus accuracy and float .tflite size when the pass did not give them."""
    row = record.as_dict()
    if row["accuracy"] is None and not isinstance(model, SavedModelSource):
        row["accuracy"] = accuracy(model, data)
    content = float_tflite(model)
    row["tflite_bytes"], row["weights_bytes"] = len(content), total_weight_bytes(content)
    row["gzip_bytes"] = gzipped_size(content)
    return row


def _fingerprint(digest: str, data: Dataset, recipe: Recipe, index: int) -> str:
    """Identifies a stage's inputs: the source model, the data, and the recipe's passes up to it."""
    steps = [step.as_dict() for step in recipe.keras_passes[:index]]
    text = json.dumps({"source": digest, "data": data.describe(), "steps": steps}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _run_or_resume(model, data, step, stem, fingerprint, resume, notify):
    """``model`` after ``step``; with a ``stem``, the stage is saved there and, with ``resume``, reused from there."""
    if stem is None:
        notify(step.name, 0, None)
        return get_pass(step.name)(model, data, progress=notify, **step.options)
    marker, saved, teacher_file = stem.with_suffix(".json"), stem.with_suffix(".keras"), stem.with_suffix(".teacher.keras")
    if resume and _complete(marker, saved, fingerprint):
        restored = load_model(saved)
        notify(step.name, 0, 0)
        if teacher_file.is_file():  # the model the pass started from: a later distill's default teacher
            remember_teacher(restored, load_model(teacher_file))
        return remember(restored, StageRecord(**json.loads(marker.read_text())["record"]))
    notify(step.name, 0, None)
    result = get_pass(step.name)(model, data, progress=notify, **step.options)
    record = record_of(result) or stage_record(step.name, result)
    _save_stage(result, saved)
    if teacher_of(result) is not None:
        _save_stage(teacher_of(result), teacher_file)
    _write_json(marker, {"fingerprint": fingerprint, "record": record.as_dict()})
    return result


def _complete(marker: Path, saved: Path, fingerprint: str) -> bool:
    try:
        return saved.is_file() and json.loads(marker.read_text())["fingerprint"] == fingerprint
    except (OSError, ValueError, KeyError):
        return False


def _save_stage(model, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.stem}.partial.keras")
    try:
        model.save(temp)
        os.replace(temp, path)
    except BaseException:  # also Ctrl-C: leave no half-written stage behind
        temp.unlink(missing_ok=True)
        raise


# -- finishing ---------------------------------------------------------------------


def _finish(tflite, source: Source, final, data, recipe, stages, path: Path, name) -> dict:
    """Verify and write the .tflite at ``path`` (metadata: recipe, metrics, stages); return the report."""
    fields = {"recipe": recipe.as_dict(), "source_sha256": source.sha256,
              "name": name or getattr(source.model, "name", "model"), "float_layers": _float_layers(stages)}
    keras_model = None if isinstance(final, SavedModelSource) else final
    source_accuracy = stages[0]["accuracy"]
    metrics = _verify_unpublished(tflite, data, path, fields, keras_model, source_accuracy)
    stages.append({**record_of(tflite).as_dict(), "accuracy": metrics["tflite_accuracy"],
                   "tflite_bytes": len(tflite.content), "weights_bytes": total_weight_bytes(tflite.content),
                   "gzip_bytes": tflite.gzip_bytes})
    export(tflite, data, path, **fields, metrics={**metrics, "source_accuracy": source_accuracy, "stages": stages})
    return {
        "recipe": recipe.as_dict(),
        "source_accuracy": source_accuracy,
        "keras_accuracy": metrics.get("keras_accuracy"),
        "tflite_accuracy": metrics["tflite_accuracy"],
        "top1_agreement": metrics.get("top1_agreement"),
        "accuracy_drop_pt": metrics.get("accuracy_drop_pt"),
        "tflite_path": str(path),
        "tflite_bytes": path.stat().st_size,
        "tflite_weights_bytes": total_weight_bytes(path),
        "tflite_gzip_bytes": gzipped_size(path.read_bytes()),
        "float_tflite_bytes": stages[0]["tflite_bytes"],
        "float_tflite_weights_bytes": stages[0].get("weights_bytes"),
        "float_tflite_gzip_bytes": stages[0]["gzip_bytes"],
        "source_sha256": source.sha256,
        "float_layers": fields["float_layers"],
        "weight_bytes": weight_bytes(path),
        "data": data.describe(),
        "stages": stages,
    }


def _verify_unpublished(tflite, data, path: Path, fields: dict, keras_model, source_accuracy) -> dict:
    """Verify the .tflite under a hidden name, so ``path`` appears only once it has been verified."""
    unverified = path.with_name(f".{path.stem}.unverified.tflite")
    try:
        export(tflite, data, unverified, **fields)
        return verify(unverified, data, keras_model=keras_model, reference_accuracy=source_accuracy)
    finally:
        unverified.unlink(missing_ok=True)


def _float_layers(stages: list):
    """The layers QAT left in float, over all stages (sorted); None when no stage was quantization-aware."""
    lists = [stage["details"]["float_layers"] for stage in stages if "float_layers" in stage.get("details", {})]
    return None if not lists else sorted({name for names in lists for name in names})


def _write_json(path: Path, value: dict) -> None:
    atomic_write_bytes(path, (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8"))


# -- presenting -----------------------------------------------------------------------


def stage_table(report: dict) -> list:
    """Rows of the per-stage table (list of dicts with printable values)."""
    return [
        {
            "stage": stage["name"],
            "params": _number(stage["params"]),
            "nonzeros": _number(stage["nonzero_params"]),
            "clusters": _clusters(stage.get("unique_weights")),
            "MACs": _number(stage.get("macs")),
            "size": _bytes(stage.get("tflite_bytes")),
            "weights": _bytes(stage.get("weights_bytes")),
            "gzip": _bytes(stage.get("gzip_bytes")),
            "accuracy": "-" if stage.get("accuracy") is None else f"{100 * stage['accuracy']:.2f}%",
        }
        for stage in report["stages"]
    ]


def format_table(rows: list) -> str:
    """A plain-text table with aligned columns."""
    if not rows:
        return ""
    widths = {key: max(len(key), *(len(str(row[key])) for row in rows)) for key in rows[0]}
    lines = ["  ".join(key.ljust(widths[key]) for key in rows[0])]
    lines += ["  ".join(str(row[key]).ljust(widths[key]) for key in row) for row in rows]
    return "\n".join(lines)


def summary_lines(report: dict) -> list:
    """The headline figures: sizes (raw bytes as stored first, gzip after), accuracies, agreement."""
    graph = report["stages"][-1]
    ratio = report["float_tflite_bytes"] / max(1, graph["tflite_bytes"])
    gzip_ratio = report["float_tflite_gzip_bytes"] / max(1, graph["gzip_bytes"])
    weights = f", weights {_bytes(graph['weights_bytes'])}" if graph.get("weights_bytes") is not None else ""
    return [
        f"model.tflite: {_bytes(report['tflite_bytes'])} as stored, with metadata; graph {_bytes(graph['tflite_bytes'])}"
        f"{weights}: {ratio:.1f}x smaller than float32 ({_bytes(report['float_tflite_bytes'])}); "
        f"gzip {_bytes(graph['gzip_bytes'])}, {gzip_ratio:.1f}x smaller than float32 "
        f"({_bytes(report['float_tflite_gzip_bytes'])} gzip)",
        f"accuracy: source {_percent(report['source_accuracy'])}, keras {_percent(report['keras_accuracy'])}, "
        f"tflite {_percent(report['tflite_accuracy'])}; top-1 agreement {_percent(report['top1_agreement'])}",
        *_float_layers_line(report.get("float_layers")),
        *_float_weights_line(report.get("weight_bytes"), report.get("recipe") or {}),
        *_fallback_line(report.get("fallback")),
    ]


def _fallback_line(fallback) -> list:
    """What the fallback raised and what it cost (see :func:`fall_back`)."""
    if not fallback:
        return []
    start, end = fallback["start"], fallback["end"]
    raised = ", ".join(f"{step['layer']} {step['from']}->{step['to']}" for step in fallback["raised"]) or "nothing"
    verdict = "budget met" if fallback["met"] else "budget not reached"
    return [f"fallback raised {len(fallback['raised'])} step(s): {raised}; drop {start['accuracy_drop_pt']:.2f} -> "
            f"{end['accuracy_drop_pt']:.2f} pt ({verdict}), graph {_bytes(start['tflite_bytes'])} -> "
            f"{_bytes(end['tflite_bytes'])}, p50 {start['latency_ms_p50']:.3f} -> {end['latency_ms_p50']:.3f} ms"]


def _float_weights_line(weights, recipe: dict) -> list:
    """What the written graph still holds in float32 when the recipe quantized it (read from the file itself)."""
    quantized = any(step.get("mode") in ("int8", "int16x8", "dynamic") or step.get("pass") == "mixed_precision"
                    for step in recipe.get("passes", []))
    if not quantized or not weights:
        return []
    total, floats = sum(weights["by_type"].values()), sum(weights["float32"].values())
    if floats <= 0.1 * total:  # float biases of dynamic-range models and the like
        return []
    largest = ", ".join(name.split(";")[0] for name in list(weights["float32"])[:3])
    return [f"float32 weights left in the written graph: {_bytes(floats)} of {_bytes(total)} (largest: {largest})"]


def _float_layers_line(names) -> list:
    if names is None:
        return []
    if not names:
        return ["quantization-aware training quantized every layer"]
    return [f"kept in float by quantization-aware training ({len(names)}): {', '.join(names)}"]


def markdown_report(report: dict) -> str:
    """report.md: the recipe, headline figures and the per-stage table."""
    rows = stage_table(report)
    header = "| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]) + "\n"
    body = "".join("| " + " | ".join(str(v) for v in row.values()) + " |\n" for row in rows)
    lines = "\n".join(f"- {line}" for line in summary_lines(report))
    return f"# edgesmith convert: recipe `{report['recipe']['name']}`\n\n{lines}\n\n{header}{body}"


def _clusters(value) -> str:
    return _number(value) if value is not None and value <= MAX_SHOWN_CLUSTERS else "-"


def _number(value) -> str:
    return "-" if value is None else f"{value:,}"


def _bytes(value) -> str:
    if value is None:
        return "-"
    return f"{value / 1024:.1f} KiB" if value >= 1024 else f"{value} B"


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"
