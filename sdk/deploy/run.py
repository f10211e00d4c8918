"""Deploy a .tflite to a target, benchmark it there, and bring the log home, timing each step."""

from __future__ import annotations

import time
from pathlib import Path

from edgesmith.runtime.errors import EdgesmithError
from edgesmith.runtime.logs import read_log
from edgesmith.runtime.tflite_file import check_tflite_file

from .target import BenchOptions
from .urls import parse_target, split_targets


def deploy(model, target, *, out_dir=".", options: BenchOptions | None = None, progress=None) -> dict:
    """Push ``model`` to ``target``, benchmark it there, and copy the JSONL log to ``out_dir``.

    Args:
        model: the .tflite file.
        target: a :class:`Target` or a URL (``local``, ``ssh://...``, ``adb://...``).
        options: how to benchmark (runs, warm-up, threads, energy meter, profile).
        progress: called with a one-line message as each step starts.

    Returns ``{"target", "model", "log", "header", "summary", "timings_s"}``;
    ``timings_s`` has one entry per step plus ``total`` and
    ``overhead`` (everything but the benchmark itself).

    >>> result = deploy("model.tflite", "local", out_dir="logs")  # or "ssh://pi@raspberrypi", "adb://R58M123ABC"
    >>> result["log"], result["summary"]["runs"]
    ('logs/model.local.jsonl', 100)
    >>> sorted(result["timings_s"])
    ['bench', 'connect', 'fetch', 'overhead', 'push', 'total']
    """
    model = Path(model)
    check_tflite_file(model)
    options = options or BenchOptions()
    target = parse_target(target) if isinstance(target, str) else target
    local_log = Path(out_dir) / f"{model.stem}.{target.slug}.jsonl"
    timings = {}
    started = time.perf_counter()
    with target:
        _step(timings, "connect", progress, f"connecting to {target.url}", target.open, progress)
        remote_model = _step(timings, "push", progress, f"pushing {model.name}", target.push, model)
        remote_log = _step(timings, "bench", progress, f"benchmarking on {target.url}", target.bench, remote_model, options)
        _step(timings, "fetch", progress, "copying the log back", target.fetch, remote_log, local_log)
    timings["total"] = time.perf_counter() - started
    timings["overhead"] = timings["total"] - timings["bench"]
    last = {record["type"]: record for record in read_log(local_log)}  # the last record of each type
    header, summary = last.get("header"), last.get("summary")
    return {"target": target.url, "model": str(model), "log": str(local_log), "header": header,
            "summary": summary, "timings_s": {k: round(v, 3) for k, v in timings.items()}}


def deploy_many(model, targets, *, out_dir=".", options: BenchOptions | None = None, ssh_options=None,
                progress_for=None) -> tuple:
    """:func:`deploy` to each target URL; one failing target does not stop the others.

    Returns ``(results, first_error)``: a failed target's result is
    ``{"target": url, "error": message}``. ``progress_for(url)`` returns the
    progress callback for one target.
    """
    results, first_error = [], None
    for url in targets:
        progress = progress_for(url) if progress_for else None
        try:
            target = parse_target(url, **(ssh_options or {})) if url.startswith("ssh://") else parse_target(url)
            results.append(deploy(model, target, out_dir=out_dir, options=options, progress=progress))
        except EdgesmithError as error:
            results.append({"target": url, "error": str(error)})
            first_error = first_error or error
        finally:
            getattr(progress, "close", lambda: None)()
    return results, first_error


def convert_and_deploy(model, recipe, data, targets, out_dir, *, options: BenchOptions | None = None,
                       ssh_options=None, convert_progress=None, progress_for=None, preprocess=None) -> dict:
    """Convert ``model`` with ``recipe``, verify it on ``data``, deploy and benchmark it on each target,
    and write ``out_dir/report.html``. An ``mcu:PROFILE`` target gets the firmware bundle instead
    (:func:`edgesmith.mcu.firmware_bundle`), its report in ``result["mcu"]``.

    >>> result = convert_and_deploy("digits.keras", "int8-ptq", "builtin:digits",
    ...                             ["local"], "out/")  # or ["ssh://pi@raspberrypi", "adb://R58M123ABC"]
    >>> result["report_html"], result["first_error"]
    ('out/report.html', None)
    >>> result["deploys"][0]["summary"]["latency_ms"]["p50"] > 0
    True

    Returns ``{"convert", "deploys", "report_html", "first_error", "timings_s"}`` (and ``"mcu"``);
    a failed target appears in ``deploys`` with its error and in ``first_error``.
    """
    from edgesmith.pipeline import convert
    from edgesmith.report import build_report

    boards, devices = split_targets(targets)
    out = Path(out_dir)
    started = time.perf_counter()
    report = convert(model, recipe, data, out, preprocess=preprocess, progress=convert_progress)
    converted = time.perf_counter()
    results, first_error = deploy_many(report.tflite_path, devices, out_dir=out / "logs", options=options,
                                       ssh_options=ssh_options, progress_for=progress_for)
    deployed = time.perf_counter()
    sources = [out / "report.json"] + [r["log"] for r in results if "log" in r]
    html = build_report(sources, out / "report.html", profile=(options.profile if options else None))
    timings = {"convert": converted - started, "deploy": deployed - converted,
               "report": time.perf_counter() - deployed, "total": time.perf_counter() - started}
    result = {"convert": report, "deploys": results, "report_html": str(html), "first_error": first_error,
              "timings_s": {k: round(v, 3) for k, v in timings.items()}}
    if boards:
        from edgesmith.mcu import firmware_bundle

        result["mcu"] = [firmware_bundle(report.tflite_path, board, out, data=data, preprocess=preprocess)
                         for board in boards]
    return result


def _step(timings: dict, name: str, progress, message: str, action, *args):
    if progress is not None:
        progress(message)
    start = time.perf_counter()
    try:
        return action(*args)
    finally:
        timings[name] = time.perf_counter() - start
