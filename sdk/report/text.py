"""A conversion report as text: the per-stage table, the headline lines and report.md.

The CLI table, report.md and the HTML report's stage tables are all drawn from a
:class:`~edgesmith.runtime.report_schema.ConversionReport` by these functions.

>>> from edgesmith.runtime.report_schema import ConversionReport, Stage, Verification
>>> report = ConversionReport(recipe={"name": "int8-ptq"}, source_accuracy=0.98, tflite_path="model.tflite",
...                           verification=Verification(samples=300, tflite_accuracy=0.97),
...                           stages=[Stage("source", 1200, 1200, tflite_bytes=8000, gzip_bytes=7000)],
...                           float_tflite_bytes=8000, float_tflite_gzip_bytes=7000, tflite_bytes=2600)
>>> row = stage_table(report)[0]
>>> row["stage"], row["params"], row["size"], row["gzip"], row["accuracy"]
('source', '1,200', '7.8 KiB', '6.8 KiB', '-')
>>> summary_lines(report)[1]
'accuracy: source 98.00%, keras -, tflite 97.00%; top-1 agreement - on 300 samples'

The accuracy drop is shown with its evidence (samples, 95 % interval, samples lost and gained) and its verdict
against the recipe's budget:

>>> report.recipe["max_accuracy_drop"] = 2.0
>>> report.verification = Verification(samples=40, tflite_accuracy=0.9, accuracy_drop_pt=7.5, lost=3, gained=0,
...                                    drop_ci95_pt=[-1.9369, 16.2226], verdict="unresolved", samples_needed=103)
>>> summary_lines(report)[2]
'accuracy drop 7.50 pt (95 % interval -1.9..16.2 pt, 3 of 40 samples lost, 0 gained) cannot be resolved against the 2.0 pt budget on 40 samples; about 103 would'
"""

from __future__ import annotations

from edgesmith.converters.verify import drop_line, output_line

MAX_SHOWN_CLUSTERS = 256  # more distinct values than this in a kernel means "not clustered"


def stage_table(report) -> list:
    """Rows of the per-stage table (list of dicts with printable values)."""
    return [
        {
            "stage": stage.name,
            "params": _number(stage.params),
            "nonzeros": _number(stage.nonzero_params),
            "clusters": _clusters(stage.unique_weights),
            "MACs": _number(stage.macs),
            "size": _bytes(stage.tflite_bytes),
            "weights": _bytes(stage.weights_bytes),
            "gzip": _bytes(stage.gzip_bytes),
            "accuracy": _percent(stage.accuracy),
        }
        for stage in report.stages
    ]


def format_table(rows: list) -> str:
    """A plain-text table with aligned columns."""
    if not rows:
        return ""
    widths = {key: max(len(key), *(len(str(row[key])) for row in rows)) for key in rows[0]}
    lines = ["  ".join(key.ljust(widths[key]) for key in rows[0])]
    lines += ["  ".join(str(row[key]).ljust(widths[key]) for key in row) for row in rows]
    return "\n".join(lines)


def summary_lines(report) -> list:
    """The headline figures: sizes (raw bytes as stored first, gzip after), accuracies, agreement, and the
    accuracy drop with its 95 % interval and verdict."""
    graph, checked = report.graph, report.verification
    ratio = (report.float_tflite_bytes or 0) / max(1, graph.tflite_bytes or 0)
    gzip_ratio = (report.float_tflite_gzip_bytes or 0) / max(1, graph.gzip_bytes or 0)
    weights = f", weights {_bytes(graph.weights_bytes)}" if graph.weights_bytes is not None else ""
    return [
        f"model.tflite: {_bytes(report.tflite_bytes)} as stored, with metadata; graph {_bytes(graph.tflite_bytes)}"
        f"{weights}: {ratio:.1f}x smaller than float32 ({_bytes(report.float_tflite_bytes)}); "
        f"gzip {_bytes(graph.gzip_bytes)}, {gzip_ratio:.1f}x smaller than float32 "
        f"({_bytes(report.float_tflite_gzip_bytes)} gzip)",
        *_accuracy_line(report.source_accuracy, checked),
        *_drop_line(checked, report.recipe.get("max_accuracy_drop")),
        *_fidelity_line(checked),
        *_float_layers_line(report.float_layers),
        *_float_weights_line(report.weight_bytes, report.recipe),
        *_fallback_line(report.fallback),
        *_walk_back_lines(report.walk_back),
    ]


def markdown_report(report) -> str:
    """report.md: the recipe, headline figures and the per-stage table."""
    rows = stage_table(report)
    header = "| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]) + "\n"
    body = "".join("| " + " | ".join(str(v) for v in row.values()) + " |\n" for row in rows)
    lines = "\n".join(f"- {line}" for line in summary_lines(report))
    return f"# edgesmith convert: recipe `{report.recipe['name']}`\n\n{lines}\n\n{header}{body}"


def _accuracy_line(source_accuracy, checked) -> list:
    """Accuracies and top-1 agreement; none without labels, or for a model verified output by output."""
    figures = (source_accuracy, checked.keras_accuracy, checked.tflite_accuracy, checked.top1_agreement)
    if all(figure is None for figure in figures):
        return []
    return [f"accuracy: source {_percent(source_accuracy)}, keras {_percent(checked.keras_accuracy)}, tflite "
            f"{_percent(checked.tflite_accuracy)}; top-1 agreement {_percent(checked.top1_agreement)} on "
            f"{checked.samples:,} samples"]


def _drop_line(verification, max_drop) -> list:
    """The drop, its evidence and its verdict (:func:`edgesmith.converters.verify.drop_line`), when measured."""
    line = drop_line(verification, max_drop)
    return [] if line is None else [line]


def _fidelity_line(verification) -> list:
    """How closely the .tflite's outputs follow the source model's (all a verification on unlabelled data has)."""
    if verification.outputs:
        return [output_line(check) for check in verification.outputs]
    if verification.output_snr_db is None:
        return []
    verdict = f": {verification.verdict}" if verification.tflite_accuracy is None and verification.verdict else ""
    return [f"outputs against the source model: SNR {verification.output_snr_db:.1f} dB, cosine "
            f"{verification.output_cosine:.4f}, top-1 agreement {_percent(verification.source_top1_agreement)} on "
            f"{verification.samples:,} samples{verdict}"]


def _walk_back_lines(walk_back) -> list:
    """The walk back: each run (recipe, change, drop, raw bytes) and what was delivered."""
    if not walk_back:
        return []
    runs = [f"{step['recipe']} ({step['change']}): " + _walk_step(step) for step in walk_back.steps]
    outcome = "held the budget" if walk_back.met else "the int8 floor still misses the budget"
    return [f"walk back: delivered {walk_back.chosen}, which {outcome}; runs: " + "; ".join(runs)]


def _walk_step(step: dict) -> str:
    if "error" in step:
        return f"failed: {step['error']}"
    drop = step.get("accuracy_drop_pt")
    measured = f"drop {drop:.2f} pt" if drop is not None else f"output SNR {step.get('output_snr_db') or 0:.1f} dB"
    return f"{measured}, {_bytes(step['tflite_bytes'])}, {step['seconds']:.0f} s"


def _fallback_line(fallback) -> list:
    """What the fallback raised and what it cost."""
    if not fallback:
        return []
    start, end = fallback.start, fallback.end
    raised = ", ".join(f"{step['layer']} {step['from']}->{step['to']}" for step in fallback.raised) or "nothing"
    verdict = "budget met" if fallback.met else "budget not reached"
    return [f"fallback raised {len(fallback.raised)} step(s): {raised}; drop {start.accuracy_drop_pt:.2f} -> "
            f"{end.accuracy_drop_pt:.2f} pt ({verdict}), graph {_bytes(start.tflite_bytes)} -> "
            f"{_bytes(end.tflite_bytes)}, p50 {start.latency_ms_p50:.3f} -> {end.latency_ms_p50:.3f} ms"]


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
