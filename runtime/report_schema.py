"""The typed reports edgesmith writes: one schema for report.json, report.md, the CLI table and the HTML report.

A conversion (``edgesmith convert``, each candidate of ``edgesmith optimize``) is described by a
:class:`ConversionReport`; a search's candidate row by a :class:`TrialReport`. Each ``report.json`` carries
its ``kind`` and ``schema_version``, and :func:`read_report` turns any of them back into its class (also the
untyped report.json files edgesmith wrote before the schema had a version).

>>> verification = Verification(samples=300, tflite_accuracy=0.97, keras_accuracy=0.975, top1_agreement=0.99,
...                             accuracy_drop_pt=0.5)
>>> report = ConversionReport(recipe={"name": "int8-ptq"}, verification=verification, source_accuracy=0.975,
...                           tflite_path="out/model.tflite", stages=[Stage("source", params=120, nonzero_params=120)])
>>> again = read_report(report.to_dict())
>>> again == report, again.verification.accuracy_drop_pt, again.to_dict()["kind"]
(True, 0.5, 'convert')

The field docstrings below are the schema's documentation: docs/report-schema.md is generated from them
(``docs/generate_report_schema_md.py``).

This module is plain data (no TensorFlow, no numpy): a board with the base install reads reports too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

SCHEMA_VERSION = 2  # 1: the untyped report.json of edgesmith before this schema (no "schema_version" key)


@dataclass
class OutputCheck:
    """One output of a model with several, or with outputs that are not class scores, against the source model's."""

    name: str  # the Keras output's name
    shape: list  # one sample's output shape
    snr_db: float  # 10 log10(signal / error) of this output against the source model's
    cosine: float  # mean cosine similarity of its rows with the source model's
    top1_agreement: float | None = None  # softmax outputs: share of samples where both pick the same class
    metric: str | None = None  # with targets for this output: the metric scored (edgesmith.converters.metrics)
    source_score: float | None = None  # the source model's on the targets
    tflite_score: float | None = None  # the .tflite's on the targets
    change: float | None = None  # tflite_score - source_score, in the metric's units (mse: a rise is worse)
    budget: float | None = None  # how much worse it may be: pt, dB (psnr), % rise (mse, mae); no targets: min SNR dB
    verdict: str | None = None  # "holds", "misses" or (paired accuracy only) "unresolved" against that budget
    drop_ci95_pt: list | None = None  # accuracy of class ids: 95 % interval of its drop, paired as the run's is


@dataclass
class Verification:
    """The .tflite measured against its Keras model on the evaluation split (``edgesmith.converters.verify``).

    The drop is paired: the reference (the source model) and the .tflite run on the same samples, ``lost`` and
    ``gained`` count where they part, and the drop is ``(lost - gained) / samples``. Its 95 % interval is the
    Agresti-Min adjusted Wald interval for paired proportions (0.5 added to each cell of the 2 x 2 table). The
    verdict reads a budget against the interval: 40 samples with 3 lost is a 7.5 pt drop whose interval
    (about -1.9..16.2 pt) reaches a 2 pt budget, so the split cannot tell ("unresolved", about 103 samples would).
    On unlabelled data there is no drop: the output SNR against the source model is judged against a minimum
    (``edgesmith convert --min-snr``, 20 dB by default); with several outputs, ``output_snr_db`` is the worst
    output's and ``outputs`` has each one's. Reports written before these fields read with them None.
    """

    samples: int  # evaluation samples the .tflite ran on
    tflite_accuracy: float | None  # top-1 accuracy of the .tflite (0..1); None on unlabelled data
    keras_accuracy: float | None = None  # top-1 accuracy of the Keras model it was converted from
    top1_agreement: float | None = None  # share of samples where the .tflite and the Keras model agree on top-1
    accuracy_drop_pt: float | None = None  # points below the reference (the source model's accuracy)
    paired_with: str | None = None  # what the drop is paired with: "source" (its predictions), "keras", None
    lost: int | None = None  # samples the reference got right and the .tflite got wrong (None: no paired reference)
    gained: int | None = None  # samples the reference got wrong and the .tflite got right
    drop_ci95_pt: list | None = None  # [low, high]: 95 % interval of the drop, Agresti-Min paired Wald (+0.5 per cell)
    verdict: str | None = None  # against the budget: "holds", "misses" (beyond noise), "unresolved"; None: no budget
    samples_needed: int | None = None  # "unresolved": about how many evaluation samples would resolve the budget
    output_snr_db: float | None = None  # the .tflite's outputs against the source model's: 10 log10(signal / error)
    output_cosine: float | None = None  # mean cosine similarity of its output rows with the source model's
    source_top1_agreement: float | None = None  # share of samples where the .tflite and the source agree on top-1
    outputs: list | None = None  # several outputs, or outputs that are not [samples, classes]: an OutputCheck each


@dataclass
class Stage:
    """One row of the stage table: the model after a pass, or the written .tflite (the last row)."""

    name: str  # the pass ("source", "prune", "qat", "ptq:int8", ...)
    params: int  # weights of the model (Keras stages) or of the graph's source model
    nonzero_params: int  # of them, those that are not zero (pruning shows here)
    macs: int | None = None  # multiply-accumulates per inference; None where the counter does not know a layer
    accuracy: float | None = None  # top-1 on the evaluation split (the .tflite's on the last row)
    unique_weights: int | None = None  # most distinct values in one kernel (clustering shows here)
    details: dict = field(default_factory=dict)  # what the pass recorded: per-layer choices, errors, skipped layers
    tflite_bytes: int | None = None  # raw bytes of the stage as a .tflite (float32 for Keras stages)
    weights_bytes: int | None = None  # of them, the weight buffers as stored
    gzip_bytes: int | None = None  # the same .tflite after gzip -9 (a secondary size)


@dataclass
class Cost:
    """What one .tflite costs: raw graph bytes, accuracy drop and p50 latency (1 thread, ``edgesmith bench``)."""

    tflite_bytes: int  # raw bytes of the graph
    accuracy_drop_pt: float | None  # points below the source model
    latency_ms_p50: float  # median invoke time, 1 thread


@dataclass
class Fallback:
    """What the precision fallback raised (``edgesmith convert --fallback``) and what it cost."""

    met: bool  # the budget holds after the fallback
    raised: list  # each step: {"layer", "from", "to", "accuracy_drop_pt", "bytes"}
    sensitivity: list | None  # [{"layer", "gain_pt"}]: points won back raising each layer alone; None if not measured
    precisions: dict  # the final precision of every weighted layer
    default: str  # the final precision of every other op
    from_recipe: dict  # the recipe the fallback started from
    start: Cost  # the .tflite the budget failed on
    end: Cost  # the .tflite written


@dataclass
class WalkBack:
    """The walk back from a recipe whose .tflite missed its budget (``edgesmith.walk_back``; on by default,
    ``edgesmith convert --no-walk-back`` turns it off)."""

    met: bool  # the delivered .tflite holds the budget
    chosen: str  # the recipe delivered: the first rung that held, else the last one run (the int8 floor)
    steps: list  # each run, the recipe as given first: {"recipe", "change", "verdict", "accuracy_drop_pt", "tflite_bytes", "gzip_bytes", "seconds"} (or "error")
    ranking: list | None = None  # 4-bit layers, most sensitive first (edgesmith debug's output impact); None: not ranked


@dataclass
class ConversionReport:
    """What a run of a recipe produced and measured (report.json of ``edgesmith convert``)."""

    recipe: dict  # the recipe as run (name, passes with options, budget)
    verification: Verification  # the written .tflite against its Keras model
    source_accuracy: float | None  # the source model's top-1 accuracy: the reference of every drop
    tflite_path: str  # where the verified .tflite was written
    stages: list = field(default_factory=list)  # Stage rows: the source, each pass, the .tflite last
    tflite_bytes: int | None = None  # the file as stored, metadata included
    tflite_weights_bytes: int | None = None  # its weight buffers
    tflite_gzip_bytes: int | None = None  # the file after gzip -9
    float_tflite_bytes: int | None = None  # the source model as a float32 .tflite: the size baseline
    float_tflite_weights_bytes: int | None = None  # its weight buffers
    float_tflite_gzip_bytes: int | None = None  # it after gzip -9
    float_layers: list | None = None  # layers quantization-aware training left in float (None: no QAT stage)
    weight_bytes: dict | None = None  # weight bytes of the file by tensor type, and its largest float32 tensors
    source_sha256: str | None = None  # SHA-256 of the model file given (or of its weights)
    data: dict = field(default_factory=dict)  # the data as fed: source, splits, input contract
    fallback: Fallback | None = None  # present when the precision fallback ran
    walk_back: WalkBack | None = None  # present when the recipe missed its budget and the walk back ran
    kind: str = "convert"  # what wrote the report.json
    schema_version: int = SCHEMA_VERSION  # of this schema

    @property
    def graph(self) -> Stage:
        """The last stage row: the .tflite's graph as converted (before metadata)."""
        return self.stages[-1]

    def to_dict(self) -> dict:
        """The JSON form (report.json)."""
        return dataclasses.asdict(self)


@dataclass
class TrialReport:
    """One candidate of ``edgesmith optimize`` (candidates/trial-NNNN/report.json): its sizes, verification and
    what the measurer measured."""

    trial: int  # the study's trial number
    path: str  # where the candidate's .tflite is kept
    sha256: str  # of the .tflite's graph
    tflite_bytes: int  # the file as stored, metadata included
    graph_bytes: int  # the graph as converted (the "size" objective)
    weights_bytes: int | None  # its weight buffers
    gzip_bytes: int  # the graph after gzip -9 (the "gzip-size" objective)
    accuracy: float | None  # the .tflite's top-1 accuracy
    accuracy_drop_pt: float | None  # points below the source model
    top1_agreement: float | None  # with its Keras model
    macs: int | None  # per inference
    passes: list  # the training passes applied, with their options
    precisions: dict  # the precision of each weighted layer
    budget_used: float | None = None  # verified output by output: its worst output's share of its budget (1: at it)
    measured: dict = field(default_factory=dict)  # latency_ms, energy_mj, ...; arena and flash on an mcu: target
    log: str | None = None  # the benchmark log kept with the candidate
    kind: str = "optimize-trial"  # what wrote the report.json
    schema_version: int = SCHEMA_VERSION  # of this schema

    def to_dict(self) -> dict:
        """The JSON form (report.json of the candidate)."""
        return dataclasses.asdict(self)

    def row(self) -> dict:
        """The flat row the search ranks: every field, with the measured figures beside the others."""
        flat = self.to_dict()
        return {**{key: value for key, value in flat.items() if key not in ("measured", "kind", "schema_version")},
                **flat["measured"]}


REPORT_KINDS = {"convert": ConversionReport, "optimize-trial": TrialReport}


class ReportFormatError(ValueError):
    """A JSON document that is not a report edgesmith writes (the message names what is missing)."""


def read_report(value: dict):
    """The :class:`ConversionReport` or :class:`TrialReport` a report.json holds (any schema version)."""
    if not isinstance(value, dict):
        raise ReportFormatError("not a JSON object")
    kind = value.get("kind") or ("convert" if "stages" in value else "optimize-trial" if "trial" in value else None)
    if kind not in REPORT_KINDS:
        raise ReportFormatError("neither a convert report (no 'stages') nor an optimize trial (no 'trial')")
    if "schema_version" not in value:
        value = _from_version_1(kind, value)
    return _build(REPORT_KINDS[kind], value)


def _from_version_1(kind: str, value: dict) -> dict:
    """A report.json written before the schema: flat verification keys, measured figures beside the others."""
    names = {f.name for f in dataclasses.fields(REPORT_KINDS[kind])}
    if kind == "optimize-trial":
        return {**{k: v for k, v in value.items() if k in names},
                "measured": {k: v for k, v in value.items() if k not in names}}
    verification = {f.name: value.get(f.name) for f in dataclasses.fields(Verification)}
    verification["samples"] = verification["samples"] or 0
    return {**value, "verification": verification}


# fields holding another dataclass (by name: the annotations are strings, and `X | None` cannot be evaluated
# on Python 3.9)
NESTED = {"verification": Verification, "fallback": Fallback, "walk_back": WalkBack, "start": Cost, "end": Cost}


def _build(cls, value: dict):
    """``cls`` from its JSON form, nested dataclasses included; keys the class does not know are ignored."""
    known = {each.name: _nested(each.name, value[each.name]) for each in dataclasses.fields(cls) if each.name in value}
    try:
        return cls(**known)
    except TypeError as error:
        raise ReportFormatError(f"{cls.__name__}: {error}") from None


def _nested(name: str, value):
    """A field's value: a dataclass built from its dict, a list of Stage or OutputCheck rows, or the value as
    it is."""
    if name == "stages" and isinstance(value, list):
        return [_build(Stage, row) for row in value]
    if name == "outputs" and isinstance(value, list):
        return [_build(OutputCheck, row) for row in value]
    if name in NESTED and isinstance(value, dict):
        return _build(NESTED[name], value)
    return value
