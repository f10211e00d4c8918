"""Run a recipe: passes in order, then export and verify the .tflite, then the reports.

>>> from edgesmith.pipeline import convert
>>> report = convert("digits.keras", "int8-qat", "builtin:digits", "out/")
>>> report.tflite_path, report.tflite_bytes < report.float_tflite_bytes / 3
('out/model.tflite', True)
>>> report.verification.tflite_accuracy > 0.9, report.verification.accuracy_drop_pt <= report.recipe["max_accuracy_drop"]
(True, True)

Returns a :class:`~edgesmith.runtime.report_schema.ConversionReport` and writes it as ``out/report.json`` and
``out/report.md`` beside ``out/model.tflite``. Each
Keras stage is saved under ``out/stages/`` (model, then a JSON marker written
last); with ``resume=True`` a stage whose marker matches the same model, data
and recipe so far is loaded instead of run again, so an interrupted run
continues where it stopped. The runner, :func:`run_recipe` (which each candidate of
``edgesmith optimize`` also goes through), knows nothing about particular passes:
it looks them up in :mod:`edgesmith.converters.registry`.

Each piece of work is done once: every stage is scored once (the last Keras stage by the verification, which
runs it anyway), a quantization-aware stage is not converted to a float .tflite (its size is not a file anyone
ships), a pass's model check hands what it built to the pass (``prepared``: QAT's graph and dry conversion),
and the final .tflite is verified once and written once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import NamedTuple
from pathlib import Path

from edgesmith.converters.debug import debug_quantization
from edgesmith.converters.errors import AccuracyDropError, ConversionError, UnsupportedModelError
from edgesmith.converters.distill import remember_teacher, teacher_of
from edgesmith.converters.export import export
from edgesmith.converters.fallback import raise_precisions
from edgesmith.converters.mixed_precision import EIGHT_BIT_OF, MixedPrecisionQuantizer, weighted_layers
from edgesmith.converters.inputs import normalizing_layer
from edgesmith.converters.stage import stage_record
from edgesmith.converters.load import (SavedModelSource, functional_wrapper, has_symbolic_inputs, load_model,
                                       source_sha256)
from edgesmith.converters.metrics import METRICS, default_metric
from edgesmith.converters.ptq import TFLiteModel, float_tflite, is_quantization_aware
from edgesmith.converters.record import StageRecord, record_of, remember
from edgesmith.converters.registry import check_model, get_pass
from edgesmith.converters.verify import accuracy, agreement, check_drop, evaluation_outputs, record_verdict, verify
from edgesmith.data import Dataset, load_data, output_shapes
from edgesmith.preprocessing import InputContractError, choose_preprocessing, preprocessing_from, refuse_at_chance
from edgesmith.recipes import Recipe, Step, check_fallback, load_recipe, with_recovery_time
from edgesmith.report.text import markdown_report
from edgesmith.runtime.atomic_write import atomic_write_bytes, atomic_write_json
from edgesmith.runtime.bench import benchmark
from edgesmith.runtime.report_schema import ConversionReport, Cost, Fallback, Stage, Verification, WalkBack
from edgesmith.runtime.tflite_file import gzipped_size, total_weight_bytes, weight_bytes
from edgesmith.walk_back import four_bit_candidates, in_order_of, relaxations, with_eight_bit_layers

SENSITIVITY_SAMPLES = 128  # evaluation samples the walk back ranks 4-bit layers on
DEFAULT_MIN_SNR_DB = 20.0  # on unlabelled data: the lowest output SNR against the source model a .tflite may have


@dataclass(frozen=True)
class Source:
    """The model a recipe starts from: loaded, the SHA-256 of what was given (``source_sha256``), and its row
    of the stage table (:func:`source_stage`; None: each run measures it)."""

    model: object
    sha256: str
    stage: Stage | None = None
    outputs: object = None  # on the evaluation split: what the .tflite is verified against (its drop paired with)


def source_outputs(model, data: Dataset):
    """``model``'s outputs on ``data``'s evaluation split; None for a SavedModel."""
    return None if isinstance(model, SavedModelSource) else evaluation_outputs(model, data)


@dataclass(frozen=True)
class Converted:
    """What a run of a recipe produced: its report and the converted graph (``tflite.content``) it describes."""

    report: ConversionReport
    tflite: TFLiteModel
    source: Source  # the source as measured for this run (its stage row and outputs)


def convert(model, recipe, data, out_dir, *, preprocess=None, resume: bool = False, fallback: bool | None = None,
            walk_back: bool = True, recovery_time: float | None = None, min_snr_db: float | None = None,
            metrics: dict | None = None, progress=None) -> ConversionReport:
    """Apply ``recipe`` to ``model``, write and verify ``out_dir/model.tflite``; return the report.

    Args:
        model: a ``keras.Model`` (Functional, Sequential, or subclassed: then wrapped in a Functional model fed
            the data's sample shape), a ``.keras``/``.h5`` file or a SavedModel directory.
        recipe: a built-in recipe name, a recipe TOML file, or a :class:`~edgesmith.recipes.Recipe`.
        data: a data spec (see :mod:`edgesmith.data`) or a loaded :class:`~edgesmith.data.Dataset`.
        out_dir: where model.tflite, report.json, report.md and stages/ go.
        preprocess: how the model wants its pixels: a preset name (``raw``, ``unit``, ``tf``, ``torch``,
            ``caffe``), ``{"mean": ..., "std": ...}``, or None for the recipe's ``preprocess`` key, else what
            the model says (see :mod:`edgesmith.preprocessing`).
        resume: reuse stages an earlier (interrupted) run completed.
        fallback: over the budget, raise the precision of the worst layers until it holds (:func:`fall_back`);
            None: the recipe's ``fallback`` key decides.
        walk_back: over the budget (and without ``fallback``), run weaker variants of the recipe down to the
            int8 floor and deliver the first that holds (:func:`walk_back`).
        recovery_time: seconds of fine-tuning in all, shared among the training passes by their epochs
            (each still stops at its epochs; see :func:`edgesmith.recipes.with_recovery_time`).
        min_snr_db: on unlabelled data (no accuracy to lose), the lowest output SNR against the source model the
            .tflite may have (default :data:`DEFAULT_MIN_SNR_DB`).
        metrics: ``{output name: metric}``: how the data's targets for that output are scored (see
            :mod:`edgesmith.converters.metrics`; default: accuracy or miou for class ids, mse for values), or
            ``{output name: "metric:budget"}`` with that output's budget in the metric's units (``"mae:5"``: at
            most 5 % worse than the source; ``"accuracy:0.5"``: half a point).
        progress: optional ``progress(stage, done, total)`` callback (``total`` None = stage started;
            a stage reused by ``resume`` reports ``(stage, 0, 0)`` without starting).

    A drop over the recipe's ``max_accuracy_drop`` (beyond the noise of the evaluation split, see
    :func:`~edgesmith.converters.verify.check_drop`) raises ``AccuracyDropError`` carrying the (written) report.
    """
    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    recipe = with_recovery_time(recipe, recovery_time) if recovery_time else recipe
    fallback = recipe.fallback if fallback is None else fallback
    if fallback:
        check_fallback(recipe.passes)  # a recipe the fallback cannot raise fails here, before any work
    explicit = preprocessing_from(preprocess) or preprocessing_from(recipe.preprocess, origin="recipe")
    loaded = load_model(model)
    if not isinstance(loaded, SavedModelSource) and not has_symbolic_inputs(loaded):  # a subclassed keras.Model
        loaded, explicit = wrapped_subclassed(loaded, data, explicit), None  # fed as the data comes
    data = dataset_for(data, loaded, explicit)
    data = data.choosing(metrics) if metrics else data
    source = Source(loaded, source_sha256(model, loaded))
    budget = Budget.for_data(recipe.max_accuracy_drop, data, min_snr_db)
    started = time.monotonic()
    converted = run_recipe(source, recipe, data, out_dir, resume=resume, progress=progress)
    report = converted.report
    if not budget.holds(report):
        if fallback:
            report = fall_back(converted, source, recipe, data, out_dir, progress=progress)
        elif walk_back:
            report = walk_back_from(converted, recipe, data, out_dir, budget, seconds=time.monotonic() - started,
                                    progress=progress)
    record_verdict(report.verification, *budget)  # in report.json, before check_drop decides
    atomic_write_json(Path(out_dir) / "report.json", report.to_dict(), sort_keys=True)
    atomic_write_bytes(Path(out_dir) / "report.md", markdown_report(report).encode("utf-8"))
    if report.fallback is not None and not report.fallback.met:
        raise AccuracyDropError(_unreachable(report, recipe.max_accuracy_drop), report)
    try:
        check_drop(report.verification, recipe.max_accuracy_drop, report.tflite_path, report, budget.min_snr_db)
    except AccuracyDropError as error:
        if report.walk_back is None:
            raise
        raise AccuracyDropError(f"{error}; the walk back ran {len(report.walk_back.steps) - 1} weaker variant(s) down "
                                f"to {report.walk_back.chosen}, and none held", report) from None
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
    # an architecture a pass cannot take fails here, before any training. What a check built is for the first
    # pass only, the one that takes the model checked (QAT's graph and dry conversion): the rest are let go
    prepared = [check_model(step.name, current, step.options) for step in recipe.passes][0]
    outputs = source_outputs(current, data) if source.outputs is None else source.outputs
    scored = None if outputs is None or not data.labeled else agreement(outputs.argmax(-1), data.y_val)
    source = dataclasses.replace(source, outputs=outputs, stage=source.stage or source_stage(current, data, scored))
    stages = [source.stage]
    refuse_unreadable(source.stage.accuracy, data, current, outputs)
    last = len(recipe.keras_passes)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        for index, step in enumerate(recipe.keras_passes, start=1):
            stem = out / "stages" / f"{index:02d}-{step.name}" if keep_stages else None
            current = _run_or_resume(current, data, step, stem, _fingerprint(source.sha256, data, recipe, index),
                                     resume, notify, prepared)
            prepared = None
            stage = Stage(**record_of(current).as_dict())
            stages.append(_measure(stage, current, data, score=index < last) if keep_stages else stage)
    notify(recipe.conversion.name, 0, None)
    tflite = _call_pass(recipe.conversion, current, data, prepared)
    return Converted(_finish(tflite, source, current, data, recipe, stages, out / "model.tflite", name), tflite, source)


def _call_pass(step: Step, model, data, prepared, **keywords):
    """``step``'s pass on ``model``, given what its model check ``prepared`` (when it built anything)."""
    if prepared is not None:
        keywords["prepared"] = prepared
    return get_pass(step.name)(model, data, **keywords, **step.options)


class Budget(NamedTuple):
    """What a .tflite must hold: the recipe's ``max_accuracy_drop`` (points), or on unlabelled data a minimum
    output SNR against the source model (dB)."""

    max_accuracy_drop: float | None
    min_snr_db: float | None = None

    @classmethod
    def for_data(cls, max_accuracy_drop, data: Dataset, min_snr_db: float | None = None) -> "Budget":
        """The budget of a run on ``data``: unlabelled, it also has a minimum SNR (``min_snr_db``, 0 included;
        None: :data:`DEFAULT_MIN_SNR_DB`)."""
        if data.labeled:
            return cls(max_accuracy_drop)
        return cls(max_accuracy_drop, DEFAULT_MIN_SNR_DB if min_snr_db is None else min_snr_db)

    def holds(self, report: ConversionReport) -> bool:
        """The drop is within it (the point estimate: :func:`~edgesmith.converters.verify.budget_verdict`), which
        the verification records as its verdict."""
        return record_verdict(report.verification, *self) in (None, "holds")


# -- walk back ---------------------------------------------------------------------


def walk_back_from(converted: Converted, recipe: Recipe, data: Dataset, out_dir, budget: Budget, *,
                   seconds: float = 0.0, progress=None) -> ConversionReport:
    """Run the rungs of :func:`edgesmith.walk_back.relaxations` (weaker variants of ``recipe``, most compressed
    first, down to the int8 floor) until one's .tflite holds the budget; each run writes ``out_dir/model.tflite``,
    so the last run is the one delivered. Returns its report, whose ``walk_back`` lists every run."""
    notify = progress or (lambda stage, done, total: None)
    source = converted.source  # measured once: its stage row and outputs
    met = budget.holds(converted.report)  # also its verdict, for the first step
    steps, ranking, delivered = [_walk_step("as given", converted.report, seconds)], None, converted
    for rung in relaxations(recipe):
        variant = rung.recipe
        if rung.ranked:
            ranking = ranking or sensitivity_ranking(delivered, recipe, source, data, out_dir)
            variant = with_eight_bit_layers(rung, ranking[: (len(ranking) + 1) // 2])
        notify(f"walk-back: {rung.change}", 0, None)
        started = time.monotonic()
        try:
            delivered = run_recipe(source, variant, data, out_dir, resume=True, progress=progress)
        except ConversionError as error:  # a rung the model cannot take (e.g. a pass refusing a layer): the next
            steps.append({"recipe": variant.name, "change": rung.change, "error": str(error)})
            continue
        met = budget.holds(delivered.report)
        steps.append(_walk_step(rung.change, delivered.report, time.monotonic() - started))
        if met:
            break
    summary = WalkBack(met=met, chosen=delivered.report.recipe["name"], steps=steps, ranking=ranking)
    return dataclasses.replace(delivered.report, walk_back=summary)


def _walk_step(change: str, report: ConversionReport, seconds: float) -> dict:
    verification = report.verification
    return {"recipe": report.recipe["name"], "change": change, "verdict": verification.verdict,
            "accuracy_drop_pt": verification.accuracy_drop_pt, "output_snr_db": verification.output_snr_db,
            "tflite_bytes": report.tflite_bytes,
            "gzip_bytes": report.tflite_gzip_bytes, "seconds": round(seconds, 1)}


def sensitivity_ranking(converted: Converted, recipe: Recipe, source: Source, data: Dataset, out_dir) -> list:
    """The layers with 4-bit kernels in ``converted``, the one hurting the model output most first: ``edgesmith
    debug``'s ranking of the .tflite against the float model its QAT started from (layers it cannot match, or
    all of them when it cannot match the graphs, last, in graph order)."""
    names = [step.name for step in recipe.keras_passes]
    index = names.index("qat") if "qat" in names else 0
    stage_file = Path(out_dir) / "stages" / f"{index:02d}-{names[index - 1]}.keras"
    before = source.model if index == 0 else load_model(stage_file)
    try:
        report = debug_quantization(before, converted.report.tflite_path, data, samples=SENSITIVITY_SAMPLES)
        ranked = [row["layer"] for row in report["layers"]]
    except ConversionError:
        ranked = []
    return in_order_of(ranked, four_bit_candidates(before))


# -- fallback ---------------------------------------------------------------------

FALLBACK_BENCH = {"threads": 1, "runs": 30, "warmup": 3, "energy": "none"}


def fall_back(converted: Converted, source: Source, recipe: Recipe, data: Dataset, out_dir, *,
              progress=None) -> ConversionReport:
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
    found = raise_precisions(quantizer, data, precisions, default, reference=report.source_accuracy,
                             max_accuracy_drop=recipe.max_accuracy_drop, start_content=tflite.content,
                             progress=lambda stage, done, total: total and notify(stage, done, total))
    summary = Fallback(met=found["met"], raised=found["raised"], sensitivity=found["sensitivity"],
                       precisions=found["precisions"], default=found["default"], from_recipe=recipe.as_dict(),
                       start=_cost(tflite.content, report.verification.accuracy_drop_pt, out_dir),
                       end=_cost(found["content"], found["accuracy_drop_pt"], out_dir))
    if found["content"] is tflite.content:  # nothing raised did better: the first artifact stays
        return dataclasses.replace(report, fallback=summary)
    conversion = Step("mixed_precision", {"precisions": found["precisions"], "default": found["default"]})
    replay = dataclasses.replace(recipe, name=f"{recipe.name}+fallback", passes=(*recipe.keras_passes, conversion),
                                 fallback=False)
    raised = TFLiteModel(found["content"], model, "mixed", "float")
    remember(raised, stage_record("mixed_precision:fallback", model, details={
        "precisions": found["precisions"], "default": found["default"], "raised": found["raised"],
        "tflite_bytes": len(found["content"]), "gzip_bytes": gzipped_size(found["content"])}))
    new_report = _finish(raised, source, model, data, replay, [dataclasses.replace(row) for row in report.stages[:-1]],
                         Path(report.tflite_path), None)
    return dataclasses.replace(new_report, fallback=summary)


def _starting_precisions(step: Step, tflite, quantizer) -> tuple:
    """``(per-layer precisions, default)`` the recipe's conversion gave, in mixed-precision terms."""
    if step.name == "mixed_precision":
        default = step.options.get("default", "int8")
        return quantizer.resolved(step.options.get("precisions") or {}, default), EIGHT_BIT_OF.get(default, default)
    mode = {"int8": "int8", "int16x8": "int16x8", "dynamic": "int8-dynamic", "fp16": "float16"}.get(tflite.mode,
                                                                                                     "float32")
    other = "float32" if mode == "int8-dynamic" else mode
    return quantizer.resolved({}, mode), other


def _cost(content: bytes, drop, out_dir) -> Cost:
    """Graph bytes, accuracy drop and p50 invoke latency (1 thread, the runtime's benchmark) of a .tflite."""
    path = Path(out_dir) / ".fallback-bench.tflite"
    atomic_write_bytes(path, content)
    try:
        latency = benchmark(path, **FALLBACK_BENCH)["summary"]["latency_ms"]["p50"]
    finally:
        path.unlink(missing_ok=True)
    return Cost(tflite_bytes=len(content), accuracy_drop_pt=drop, latency_ms_p50=round(latency, 4))


def _unreachable(report: ConversionReport, budget) -> str:
    fallback = report.fallback
    return (f"{report.tflite_path}: accuracy dropped {report.verification.accuracy_drop_pt:.2f} pt, more than the "
            f"recipe's max_accuracy_drop of {budget} pt, even after the fallback raised {len(fallback.raised)} step(s) "
            f"(from {fallback.start.accuracy_drop_pt:.2f} pt; best {fallback.end.accuracy_drop_pt:.2f} pt); "
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
    outputs = None if keras_model is None else output_shapes(keras_model)
    image = {}
    if shape is not None and len(shape) == 3 and None not in shape[:2]:  # images: loaded at the model's size
        image = {"image_size": shape[:2], "color": "grayscale" if shape[2] == 1 else "rgb"}
    return load_data(data, **image, preprocessing=chosen, input_shape=shape, outputs=outputs)


def wrapped_subclassed(model, data, preprocess=None):
    """A subclassed ``model`` wrapped in a Functional model fed ``data``'s samples: as images (a channel axis
    added to [H, W] arrays), else as stored ([T, F] sequences); refused in one line when it takes neither."""
    loaded = dataset_for(data, None, preprocess)
    shapes = [loaded.sample_shape] + ([loaded.sample_shape[:-1]] if loaded.sample_shape[-1:] == (1,) else [])
    for shape in shapes:
        try:
            return functional_wrapper(model, shape)
        except Exception as error:  # Keras: whatever the model's own call raises on inputs it cannot take
            failure = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    raise UnsupportedModelError(f"the subclassed model {model.name} cannot be called on the data's samples "
                                f"(shape {' or '.join(str(list(shape)) for shape in shapes)}): {failure}")


def readable_source(model, data, preprocess=None, metrics=None) -> tuple:
    """``(keras_model, dataset, accuracy)``: the source model loaded, the data fed as it expects (its outputs'
    ``metrics`` chosen as :func:`convert` takes them), and its accuracy on the evaluation split (None: no one
    classifier's labels); refused (exit 2) when it scores at chance. For commands that measure a model before
    they change it (optimize, sensitivity)."""
    loaded = load_model(model)
    data = dataset_for(data, loaded, preprocess)
    data = data.choosing(metrics) if metrics else data
    data.check_model(loaded)
    measured = accuracy(loaded, data)
    refuse_unreadable(measured, data, loaded)
    return loaded, data, measured


def refuse_unreadable(source_accuracy, data: Dataset, model=None, outputs=None) -> None:
    """Stop before any work when the source model scores at chance on ``data``: it cannot read it as fed. With
    the ``model`` (and its ``outputs`` on the evaluation split, when measured), also each output whose targets
    are one class id per sample."""
    fed = data.contract.describe() if data.contract is not None else "none (arrays fed as stored)"
    refuse_at_chance(source_accuracy, data.y_val, fed, data.source)
    heads = _class_heads(model, data)
    if heads:
        produced = source_outputs(model, data) if outputs is None else outputs
        produced = produced if isinstance(produced, list) else [produced]
        for index, (name, truth) in heads.items():
            refuse_at_chance(agreement(produced[index].argmax(-1), truth), truth, fed, f"{data.source} (output {name})")


def _class_heads(model, data: Dataset) -> dict:
    """``{output index: (name, evaluation class ids)}`` of ``model``'s outputs whose targets in ``data`` are one
    class id per sample."""
    if model is None or isinstance(model, SavedModelSource) or not data.targets:
        return {}
    return {index: (name, data.targets[name][1]) for index, (name, shape) in enumerate(output_shapes(model).items())
            if name in data.targets and len(shape) == 1 and (data.metrics.get(name) or default_metric(
                data.targets[name][1], shape, data.sample_shape)) == "accuracy"}


def source_stage(model, data, accuracy: float | None = None) -> Stage:
    """The source model's row of the stage table; ``accuracy``: its accuracy when already measured."""
    if isinstance(model, SavedModelSource):
        return _measure(Stage(name="source", params=0, nonzero_params=0), model, data)
    return _measure(Stage(**stage_record("source", model, accuracy=accuracy).as_dict()), model, data)


def _measure(stage: Stage, model, data, score: bool = True) -> Stage:
    """``stage`` with its accuracy (when the pass did not give it and ``score``) and its float .tflite's sizes
    (not for a quantization-aware model: its float graph is no file anyone ships, its int8 one is the last row)."""
    if score and stage.accuracy is None and not isinstance(model, SavedModelSource):
        stage.accuracy = accuracy(model, data)
    if not is_quantization_aware(model):
        content = float_tflite(model)
        stage.tflite_bytes, stage.weights_bytes, stage.gzip_bytes = (len(content), total_weight_bytes(content),
                                                                     gzipped_size(content))
    return stage


def _fingerprint(digest: str, data: Dataset, recipe: Recipe, index: int) -> str:
    """Identifies a stage's inputs: the source model, the data, and the recipe's passes up to it."""
    steps = [step.as_dict() for step in recipe.keras_passes[:index]]
    text = json.dumps({"source": digest, "data": data.describe(), "steps": steps}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _run_or_resume(model, data, step, stem, fingerprint, resume, notify, prepared=None):
    """``model`` after ``step``; with a ``stem``, the stage is saved there and, with ``resume``, reused from there."""
    if stem is None:
        notify(step.name, 0, None)
        return _call_pass(step, model, data, prepared, progress=notify)
    marker, saved, teacher_file = (stem.with_suffix(suffix) for suffix in (".json", ".keras", ".teacher.keras"))
    if resume and _complete(marker, saved, fingerprint):
        restored = load_model(saved)
        notify(step.name, 0, 0)
        if teacher_file.is_file():  # the model the pass started from: a later distill's default teacher
            remember_teacher(restored, load_model(teacher_file))
        return remember(restored, StageRecord(**json.loads(marker.read_text())["record"]))
    notify(step.name, 0, None)
    result = _call_pass(step, model, data, prepared, progress=notify)
    record = record_of(result) or stage_record(step.name, result)
    _save_stage(result, saved)
    if teacher_of(result) is not None:
        _save_stage(teacher_of(result), teacher_file)
    atomic_write_json(marker, {"fingerprint": fingerprint, "record": record.as_dict()}, sort_keys=True)
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


def _finish(tflite, source: Source, final, data, recipe, stages: list, path: Path, name) -> ConversionReport:
    """Verify the converted graph, then write it once at ``path`` (metadata: recipe, metrics, stages); return the
    report. The last Keras stage takes its accuracy from the verification, which scores that model anyway."""
    fields = {"recipe": recipe.as_dict(), "source_sha256": source.sha256,
              "name": name or getattr(source.model, "name", "model"), "float_layers": _float_layers(stages)}
    keras_model = None if isinstance(final, SavedModelSource) else final
    source_accuracy = stages[0].accuracy
    checked = _verify_unpublished(tflite.content, data, path, keras_model, source_accuracy, source.outputs,
                                  getattr(source.model, "output_names", ()))
    if len(stages) > 1 and stages[-1].accuracy is None:
        stages[-1].accuracy = checked.keras_accuracy
    stages.append(Stage(**{**record_of(tflite).as_dict(), "accuracy": checked.tflite_accuracy},
                        tflite_bytes=len(tflite.content), weights_bytes=total_weight_bytes(tflite.content),
                        gzip_bytes=tflite.gzip_bytes))
    metrics = {**dataclasses.asdict(checked), "source_accuracy": source_accuracy,
               "stages": [dataclasses.asdict(stage) for stage in stages]}
    export(tflite, data, path, **fields, metrics=metrics, outputs=described_outputs(checked))
    written = path.read_bytes()
    return ConversionReport(
        recipe=recipe.as_dict(), verification=checked, source_accuracy=source_accuracy, tflite_path=str(path),
        stages=stages, tflite_bytes=len(written), tflite_weights_bytes=total_weight_bytes(written),
        tflite_gzip_bytes=gzipped_size(written), float_tflite_bytes=stages[0].tflite_bytes,
        float_tflite_weights_bytes=stages[0].weights_bytes, float_tflite_gzip_bytes=stages[0].gzip_bytes,
        float_layers=fields["float_layers"], weight_bytes=weight_bytes(written), source_sha256=source.sha256,
        data=data.describe())


def described_outputs(checked: Verification) -> list | None:
    """What the metadata says of each output of a model verified output by output: name, shape, task, metric."""
    return None if not checked.outputs else [
        {"name": check.name, "shape": check.shape, "task": METRICS[check.metric].task if check.metric else None,
         "metric": check.metric} for check in checked.outputs]


def _verify_unpublished(content: bytes, data, path: Path, keras_model, source_accuracy, source_outputs=None,
                        output_names=()):
    """Verify the converted graph under a hidden name, so ``path`` appears only once it has been verified (the
    metadata written with it adds buffers no op reads)."""
    unverified = path.with_name(f".{path.stem}.unverified.tflite")
    try:
        atomic_write_bytes(unverified, content)
        return verify(unverified, data, keras_model=keras_model, reference_accuracy=source_accuracy,
                      reference_outputs=source_outputs, output_names=output_names)
    finally:
        unverified.unlink(missing_ok=True)


def _float_layers(stages: list):
    """The layers QAT left in float, over all stages (sorted); None when no stage was quantization-aware."""
    lists = [stage.details["float_layers"] for stage in stages if "float_layers" in stage.details]
    return None if not lists else sorted({name for names in lists for name in names})


