"""Render a :class:`~edgesmith.report.collect.Collection` as one self-contained HTML page."""

from __future__ import annotations

import base64
import html
import time

from . import plots
from .text import stage_table, summary_lines

DEBUG_ROWS = 10  # layers of an `edgesmith debug` run shown in its table (the plot shows all)
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee}.note{color:#666;font-size:.85em}
"""


def render(collection, profile: dict | None, profiles: dict) -> str:
    """The whole page. ``profile`` overrides the logs' own profiles (``profiles``: name -> profile)."""
    variants = collection.variants
    parts = [f"<h1>edgesmith report</h1><p class=note>generated {html.escape(time.strftime('%Y-%m-%d %H:%M:%S'))}; "
             f"{len(variants)} benchmark session(s), {len(collection.conversions)} conversion report(s)</p>"]
    if variants:
        parts += ["<h2>Benchmarks</h2>", _table(*_variant_rows(variants, profile, profiles))]
        parts += ["<h2>Latency CDF</h2>", _image(plots.latency_cdf(variants), "latency CDF")]
        parts += ["<h2>Accuracy, size, latency and energy</h2>", _image(plots.pareto(variants), "Pareto scatter")]
        unplotted = [v.label for v in variants if v.accuracy is None]
        if any(v.accuracy is not None for v in variants) and unplotted:
            parts.append(f"<p class=note>not plotted (no accuracy in the model's metadata): {html.escape(', '.join(unplotted))}</p>")
        parts += ["<h2>Devices</h2>", _table(*_device_rows(variants, profile, profiles))]
    for path, report in collection.conversions:
        parts += [f"<h2>Conversion stages: {html.escape(path)}</h2>", _stage_table(report)]
    if collection.trials:
        parts += ["<h2>Search candidates</h2>", _table(*_trial_rows(collection.trials))]
    for path, report in collection.debug_runs:
        parts += [f"<h2>Quantization error by layer: {html.escape(report.get('tflite', path))}</h2>",
                  _image(plots.layer_snr(report), "SNR by layer"), _table(*_debug_rows(report))]
    if collection.skipped:
        parts.append("<p class=note>skipped: " + "; ".join(html.escape(s) for s in collection.skipped) + "</p>")
    body = "\n".join(parts)
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>edgesmith report</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>\n")


def _image(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(columns: list, rows: list) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value, pattern: str = "{:.3f}") -> str:
    return "-" if value is None else pattern.format(value)


def _profile_of(variant, profile, profiles):
    return profile or profiles.get(variant.header["device"].get("profile"))


def percent_of_peak(summary: dict, profile: dict | None) -> float | None:
    """Achieved GMAC/s as a percentage of the profile's int8 peak (None when unknown)."""
    if not profile or not summary.get("gmacs_per_s"):
        return None
    return 100 * summary["gmacs_per_s"] / profile["peak_int8_gmacs"]


def _variant_rows(variants, profile, profiles) -> tuple:
    columns = ["variant", "p50 ms", "p90 ms", "p99 ms", "inferences/s", "mJ/inference", "accuracy", "size KiB",
               "GMAC/s", "% of peak", "log"]
    rows = []
    for v in variants:
        latency, summary = v.summary["latency_ms"], v.summary
        energy = v.summary["energy"]
        mj = _fmt(v.energy_mj) + (" (est.)" if energy.get("estimated") else "") if v.energy_mj is not None else \
            f"- ({energy.get('reason', 'unavailable')})"
        rows.append([v.label, _fmt(latency["p50"]), _fmt(latency["p90"]), _fmt(latency["p99"]),
                     _fmt(summary.get("throughput_ips"), "{:.1f}"), mj, _fmt(v.accuracy and 100 * v.accuracy, "{:.2f}%"),
                     _fmt(v.size_bytes and v.size_bytes / 1024, "{:.1f}"), _fmt(summary.get("gmacs_per_s"), "{:.2f}"),
                     _fmt(percent_of_peak(summary, _profile_of(v, profile, profiles)), "{:.1f}%"), v.source])
    return columns, rows


def _device_rows(variants, profile, profiles) -> tuple:
    columns = ["device", "system", "machine", "cpu", "cores", "profile", "int8 peak GMAC/s", "runtime", "threads", "tool"]
    rows, seen = [], set()
    for v in variants:
        device, runtime = v.header["device"], v.header["runtime"]
        known = _profile_of(v, profile, profiles)
        row = [device.get("hostname", "?"), device.get("system", "?"), device.get("machine", "?"), device.get("cpu", "?"),
               device.get("cores", "?"), (known or {}).get("name", device.get("profile") or "-"),
               _fmt((known or {}).get("peak_int8_gmacs"), "{:.1f}"),
               f"{runtime.get('backend')} / {runtime.get('delegate', '?')}", runtime.get("threads") or "default",
               v.header.get("tool", "?")]
        if tuple(map(str, row)) not in seen:
            seen.add(tuple(map(str, row)))
            rows.append(row)
    return columns, rows


def _debug_rows(report: dict, shown: int = DEBUG_ROWS) -> tuple:
    """The layers that hurt most (``edgesmith debug``'s ranking) and what would help each."""
    columns = ["rank", "layer", "dtype", "output SNR dB", "local SNR dB", "SNR dB", "what would help"]
    rows = [[row["rank"], row["layer"], row["dtype"], _fmt(row.get("output_snr_db"), "{:.1f}"),
             _fmt(row["local_channel_snr_db"], "{:.1f}"),
             _fmt(row["channel_snr_db"], "{:.1f}"), "; ".join(row.get("advice") or [])]
            for row in sorted(report["layers"], key=lambda row: row["rank"])[:shown]]
    return columns, rows


def _trial_rows(trials: list) -> tuple:
    """One row per `edgesmith optimize` candidate: sizes, verification and its measured latency."""
    columns = ["trial", "graph KiB", "gzip KiB", "accuracy", "drop pt", "p50 ms", "report"]
    rows = [[t.trial, _fmt(t.graph_bytes / 1024, "{:.1f}"), _fmt(t.gzip_bytes / 1024, "{:.1f}"),
             _fmt(t.accuracy and 100 * t.accuracy, "{:.2f}%"), _fmt(t.accuracy_drop_pt, "{:.2f}"),
             _fmt(t.measured.get("latency_ms")), path] for path, t in sorted(trials, key=lambda item: item[1].trial)]
    return columns, rows


def _stage_table(report) -> str:
    rows = stage_table(report)
    notes = "".join(f"<p class=note>{html.escape(line)}</p>" for line in summary_lines(report)) if rows else ""
    if not rows:
        return "<p class=note>no stages</p>"
    return _table(list(rows[0]), [list(row.values()) for row in rows]) + notes
