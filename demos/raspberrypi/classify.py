#!/usr/bin/env python3
"""Classify images on a Raspberry Pi with edgesmith's TF-free runtime.

Frames come from image files, folders and globs, or from the Pi camera
(picamera2) or a USB camera (OpenCV). Each frame gets the model's top-k labels
(from its edgesmith metadata; class indices when it has none) and its pre,
invoke and post milliseconds. With a display, an overlay shows rolling p50/p90,
FPS, the CPU temperature and throttling. Energy comes from the runtime's
meters (the Pi 5 PMIC, an INA219/INA226 hwmon sensor, ...). ``--log`` writes
the shared JSONL schema (docs/log-schema.md), so ``edgesmith report`` reads it.

    python classify.py samples/                       # the bundled sample images
    python classify.py --camera auto                  # Pi camera, else USB camera
    python classify.py 'photos/*.jpg' --headless --log run.jsonl
    python classify.py samples/ --benchmark 20 --threads 4 --energy auto

Imports only edgesmith.runtime (numpy, Pillow, a LiteRT interpreter): no TensorFlow.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import click

from edgesmith.runtime import Classifier
from edgesmith.runtime.bench import header_record, stop_meter, summary_record  # the records `edgesmith bench` writes
from edgesmith.runtime.energy import open_meter
from edgesmith.runtime.errors import EdgesmithError, InputError, RunFailedError
from edgesmith.runtime.logs import LogWriter
from edgesmith.runtime.sysinfo import cpu_snapshot, throttled

from overlay import Display, RollingStats, render_overlay
from sources import camera_frames, file_frames

TOOL = "edgesmith-pi-demo"
HERE = Path(__file__).resolve().parent
DEFAULT_MODEL = HERE / "models" / "digits.tflite"
CPU_READ_INTERVAL_S = 1.0  # sysfs/vcgencmd reads for the overlay, not every frame
log = logging.getLogger("edgesmith.pi-demo")


class Session:
    """One run of the demo: classifies frames, logs them, keeps the statistics."""

    def __init__(self, classifier: Classifier, options: dict):
        self.classifier = classifier
        self.options = options
        self.rolling = RollingStats()
        self.warm, self.steady, self.skipped = [], [], []
        self.cpu_start = self._cpu_now = cpu_snapshot(options["sysfs_root"])
        self._cpu_read_at = time.monotonic()
        self.meter = open_meter(options["energy"], root=options["sysfs_root"])
        self.steady_started = None

    def classify(self, frame, index: int) -> dict:
        """Classify one frame; return the result line (also written to the log)."""
        phase = "warmup" if index < self.options["warmup"] else "steady"
        if phase == "steady" and self.steady_started is None:
            self._start_steady_window()
        started = time.time()
        results, timings = self.classifier.classify_timed(frame.image)
        timings["pre_ms"] += frame.decode_ms  # the schema's pre includes decoding
        timed = self.warm if phase == "warmup" else self.steady
        timed.append((timings["pre_ms"], timings["invoke_ms"], timings["post_ms"]))
        self.rolling.add(timings)
        label, score = results[0]
        return {"type": "run", "i": len(timed) - 1, "phase": phase, "t": started, **timings,
                "label": label, "score": score, "source": frame.source, "top_k": results}

    def _start_steady_window(self) -> None:
        self.steady_started = time.perf_counter()
        if self.meter is not None:
            self.meter.start()

    def skip(self, frame) -> dict:
        log.warning("skipped %s: %s", frame.source, frame.error)
        self.skipped.append({"source": frame.source, "reason": frame.error})
        return {"type": "skipped", "source": frame.source, "reason": frame.error}

    def cpu(self) -> dict:
        """Temperature and throttling for the overlay, re-read at most once a second."""
        if time.monotonic() - self._cpu_read_at >= CPU_READ_INTERVAL_S:
            self._cpu_now, self._cpu_read_at = cpu_snapshot(self.options["sysfs_root"]), time.monotonic()
        return {"temp_c": self._cpu_now.get("temp_c"), "throttled": throttled(self.cpu_start, self._cpu_now)}

    def summary(self, header: dict) -> dict:
        """The log's summary record, plus what the demo adds (skipped files, label source)."""
        if not self.steady and not self.warm:
            raise RunFailedError(f"no frame could be classified ({len(self.skipped)} skipped)")
        seconds = time.perf_counter() - self.steady_started if self.steady_started else None
        reading, reason = stop_meter(self.meter if self.steady_started else None, self.options["energy"])
        warm, steady = (self.warm, self.steady) if self.steady else (self.warm[:1], self.warm)
        summary = summary_record(self.classifier.model, header, warm or steady[:1], steady, reading, reason,
                           self.cpu_start, self.options["sysfs_root"])
        if seconds and self.steady:
            summary["throughput_ips"] = len(self.steady) / seconds  # measured frames/s, decode included
        summary.update(backend=self.classifier.model.backend, machine=platform.machine(),
                       labels="model" if self.classifier.labels else "indices", skipped=self.skipped)
        return summary


def load_classifier(options: dict) -> Classifier:
    model = Path(options["model"])
    if model == DEFAULT_MODEL and not model.exists():
        raise InputError(
            f"{model}: the default model is not built yet; run `python make_model.py` on a computer with "
            "TensorFlow and copy models/ here, or pass --model FILE.tflite"
        )
    return Classifier(model, threads=options["threads"], top_k=options["top_k"], backend=options["backend"])


def frames_for(inputs, options: dict):
    """Files when any are named, else the camera."""
    if inputs:
        return file_frames(inputs, repeat=options["benchmark"] or 1), "files"
    limit = options["frames"] or options["benchmark"]
    return camera_frames(options["camera"] or "auto", limit=limit), "camera"


def wants_display(options: dict) -> bool:
    if options["headless"]:
        return False
    return options["show"] or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run(inputs, options: dict, emit) -> dict:
    """Classify every frame, calling ``emit(record)`` for each; return the summary record."""
    classifier = load_classifier(options)
    frames, source_kind = frames_for(inputs, options)
    display = Display() if wants_display(options) else None
    if display is not None and not display.available:
        log.warning("no window can be opened (no OpenCV or Tk display); continuing headless")
    session = Session(classifier, options)
    header = header_record(classifier.model, classifier.model.path, TOOL, options["threads"], options["benchmark"],
                     options["warmup"], source_kind, options["energy"], None)
    writer = LogWriter(options["log"]) if options["log"] else None
    try:
        _write(writer, header)
        for index, frame in enumerate(frames):
            if frame.error:
                emit(session.skip(frame))
                continue
            record = session.classify(frame, index - len(session.skipped))
            _write(writer, {key: value for key, value in record.items() if key != "top_k"})
            emit(record)
            if not _present(frame, record, session, display, options):
                break
        summary = session.summary(header)
        _write(writer, summary)
    finally:
        if writer is not None:
            writer.close()
    return summary


def _write(writer, record: dict) -> None:
    if writer is not None:
        writer.write(record)


def _present(frame, record: dict, session: Session, display, options: dict) -> bool:
    """Draw the overlay if anyone will see it; False when the user closed the window."""
    if display is None and not options["save_overlay"]:
        return True
    image = render_overlay(frame.image, record["top_k"], record, session.rolling.snapshot(), session.cpu())
    if options["save_overlay"]:
        out = Path(options["save_overlay"])
        out.mkdir(parents=True, exist_ok=True)
        image.save(out / f"{record['phase']}-{record['i']:05d}.png")
    hold_s = 0.0 if frame.source.startswith("camera:") or options["benchmark"] else options["delay"]
    return display.show(image, hold_s) if display is not None else True


# -- output ------------------------------------------------------------------------


def print_json(record: dict) -> None:
    if record["type"] == "run":
        record = {"type": "result", "source": record["source"], "phase": record["phase"],
                  "top_k": [{"label": label, "score": score} for label, score in record["top_k"]],
                  **{key: record[key] for key in ("pre_ms", "invoke_ms", "post_ms")}}
    click.echo(json.dumps(record, default=lambda value: value.item()))


def print_text(record: dict) -> None:
    if record["type"] == "skipped":
        return  # already logged as a warning
    top = "  ".join(f"{label} ({score:.3f})" for label, score in record["top_k"])
    click.echo(f"{Path(record['source']).name:<24} {top:<40} pre {record['pre_ms']:6.2f}  "
               f"invoke {record['invoke_ms']:6.2f}  post {record['post_ms']:5.2f} ms")


def print_summary(summary: dict) -> None:
    latency, energy = summary["latency_ms"], summary["energy"]
    lines = [
        f"{summary['runs']} frames timed ({len(summary['skipped'])} skipped) on {summary['backend']}",
        f"invoke p50 {latency['p50']:.2f} ms, p90 {latency['p90']:.2f} ms; "
        f"pre p50 {summary['pre_ms']['p50']:.2f} ms; {summary['throughput_ips']:.1f} frames/s",
        f"energy: {energy['mj_per_inference']:.2f} mJ/frame ({energy['meter']})" if energy["available"]
        else f"energy: not measured ({energy['reason']})",
    ]
    if summary["labels"] == "indices":
        lines.append("note: the model has no labels in its metadata, so class indices are shown")
    click.echo("\n".join(lines), err=True)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("inputs", nargs=-1)
@click.option("--model", "-m", type=click.Path(dir_okay=False), default=str(DEFAULT_MODEL),
              show_default="models/digits.tflite beside classify.py",
              help="The .tflite classifier (make the default with make_model.py).")
@click.option("--camera", help="Use a camera when no INPUTS are given: auto, picamera or usb[:N].")
@click.option("--top-k", "-k", type=click.IntRange(min=1), default=3, show_default=True, help="Labels shown per frame.")
@click.option("--threads", "-t", type=click.IntRange(min=1), help="Interpreter threads (default: LiteRT decides).")
@click.option("--headless", is_flag=True, help="Never open a window, even when a display exists.")
@click.option("--show", is_flag=True, help="Open the overlay window even if $DISPLAY is unset.")
@click.option("--benchmark", type=click.IntRange(min=1), metavar="N",
              help="Repeat the inputs N times (camera: N frames) and print only the summary.")
@click.option("--warmup", type=click.IntRange(min=0),
              help="Frames left out of the statistics [1 with --benchmark, else 0].")
@click.option("--frames", type=click.IntRange(min=1), help="Stop the camera after this many frames.")
@click.option("--delay", type=float, default=1.0, show_default=True, help="Seconds each file stays on screen.")
@click.option("--log", type=click.Path(dir_okay=False), help="Append a JSONL log (docs/log-schema.md) here.")
@click.option("--energy", default="auto", show_default=True,
              help="Energy meter: auto, none, pi5, hwmon[:NAME], rapl, battery, csv:FILE.")
@click.option("--sysfs-root", default="/", hidden=True, help="Read /sys under this root (tests use fixtures).")
@click.option("--save-overlay", type=click.Path(file_okay=False), help="Also save each overlay frame as a PNG here.")
@click.option("--backend", type=click.Choice(["auto", "ai_edge_litert", "tflite_runtime"]), default="auto",
              show_default=True, help="LiteRT interpreter package.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per frame and the summary record.")
def command(inputs, as_json, **options):
    """Classify INPUTS (image files, folders, globs) or camera frames, with latency and energy."""
    if options["warmup"] is None:
        options["warmup"] = 1 if options["benchmark"] else 0
    quiet = options["benchmark"] and not as_json
    emit = print_json if as_json else (lambda record: None) if quiet else print_text
    summary = run(inputs, options, emit)
    if as_json:
        print_json(summary)
    else:
        print_summary(summary)


def main(argv=None) -> None:
    """Run the demo; errors a user can fix print one line and exit 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        command.main(args=argv, prog_name="classify.py", standalone_mode=False)
    except click.ClickException as usage:
        usage.show()
        sys.exit(usage.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except EdgesmithError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
