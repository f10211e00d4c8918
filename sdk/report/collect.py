"""Gather what a report shows: benchmark sessions from JSONL logs, and the report.json files of convert and of
optimize's candidates (read as the typed reports of :mod:`edgesmith.runtime.report_schema`).

Logs from ``edgesmith bench``, the Raspberry Pi example and the Android app
share one schema (docs/log-schema.md), so they are read the same way; a file
from another tool is refused with :class:`InputError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edgesmith.runtime.errors import InputError
from edgesmith.runtime.logs import read_log
from edgesmith.runtime.report_schema import ConversionReport, ReportFormatError, read_report


@dataclass
class Variant:
    """One benchmark session: a model on a device with given settings."""

    label: str
    source: str
    header: dict
    summary: dict
    latencies_ms: list = field(default_factory=list)

    @property
    def accuracy(self) -> float | None:
        """The .tflite's verified accuracy, from the metadata convert embedded."""
        metrics = ((self.header["model"].get("metadata") or {}).get("metrics") or {})
        value = metrics.get("tflite_accuracy", metrics.get("accuracy"))
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def size_bytes(self) -> int | None:
        return self.header["model"].get("size_bytes")

    @property
    def energy_mj(self) -> float | None:
        energy = self.summary["energy"]
        return energy.get("mj_per_inference") if energy.get("available") else None


@dataclass
class Collection:
    """Everything found in the report's inputs."""

    variants: list
    conversions: list  # (path, ConversionReport)
    skipped: list  # sessions without a summary (killed runs), as "file: reason"
    debug_runs: list = field(default_factory=list)  # (path, `edgesmith debug --json` dict)
    trials: list = field(default_factory=list)  # (path, TrialReport) of `edgesmith optimize` candidates


def collect(sources) -> Collection:
    """Read every ``*.jsonl`` log, ``report.json`` and ``debug.json`` (``edgesmith debug --json``) in ``sources``
    (files or directories)."""
    logs, reports = _files(sources)
    if not logs and not reports:
        raise InputError(f"no edgesmith logs (*.jsonl), report.json or debug.json found in "
                         f"{', '.join(map(str, sources))}")
    variants, skipped = [], []
    for log in logs:
        found, missing = _sessions(log)
        variants += found
        skipped += missing
    _make_labels_unique(variants)
    read = [(str(path), _read_report(path)) for path in reports]
    return Collection(variants=variants, skipped=skipped,
                      conversions=[(path, r) for path, r in read if isinstance(r, ConversionReport)],
                      debug_runs=[(path, r) for path, r in read if isinstance(r, dict)],
                      trials=[(path, r) for path, r in read if not isinstance(r, (dict, ConversionReport))])


def _files(sources) -> tuple:
    logs, reports = [], []
    for source in map(Path, sources):
        if source.is_dir():
            logs += sorted(source.rglob("*.jsonl"))
            reports += sorted(source.rglob("report.json")) + sorted(source.rglob("debug.json"))
        elif source.is_file():
            (reports if source.suffix == ".json" else logs).append(source)
        else:
            raise InputError(f"{source}: no such file or directory")
    return logs, reports


def _sessions(path: Path) -> tuple:
    """Split a log into header-led sessions; keep those that reached their summary."""
    variants, skipped, current = [], [], None
    for record in read_log(path):
        if record["type"] == "header":
            if current is not None:
                skipped.append(f"{path}: a session without a summary (stopped early)")
            current = {"header": record, "runs": []}
        elif current is None:
            raise InputError(f"{path}: a {record['type']} record before any header; is the log truncated at the start?")
        elif record["type"] == "run":
            if record["phase"] == "steady":
                current["runs"].append(record["invoke_ms"])
        else:
            variants.append(Variant(_label(current["header"]), str(path), current["header"], record, current["runs"]))
            current = None
    if current is not None:
        skipped.append(f"{path}: a session without a summary (stopped early)")
    return variants, skipped


def _label(header: dict) -> str:
    metadata = header["model"].get("metadata") or {}
    model = (metadata.get("recipe") or {}).get("name") or Path(header["model"].get("path", "model")).stem
    device = header["device"].get("profile") or header["device"].get("hostname") or "device"
    threads = header["runtime"].get("threads")
    return f"{model} @ {device}" + (f" x{threads}" if threads else "")


def _make_labels_unique(variants: list) -> None:
    seen: dict = {}
    for variant in variants:
        seen[variant.label] = seen.get(variant.label, 0) + 1
        if seen[variant.label] > 1:
            variant.label = f"{variant.label} #{seen[variant.label]}"


def _read_report(path: Path):
    """A typed report (convert, optimize candidate), or the dict of `edgesmith debug --json`."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{path}: not JSON; expected a report.json written by edgesmith") from None
    if isinstance(report, dict) and "ranked_by" in report and isinstance(report.get("layers"), list):
        return report  # what `edgesmith debug --json` writes (per-layer quantization error)
    try:
        return read_report(report)
    except ReportFormatError as error:
        raise InputError(f"{path}: {error}; expected a report.json written by `edgesmith convert` or "
                         "`edgesmith optimize` (or the JSON of `edgesmith debug --json`)") from None
