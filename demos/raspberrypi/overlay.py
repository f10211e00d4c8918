"""The live view: rolling latency statistics, the overlay drawn on each frame, and its window.

The overlay shows what the official examples leave out: per-frame pre, invoke
and post milliseconds, rolling p50/p90, frames per second, the CPU temperature
and whether the CPU is being throttled. It is drawn with Pillow (no OpenCV
needed) and shown with OpenCV when installed, else with Tk.

>>> stats = RollingStats(window=100)
>>> stats.add({"pre_ms": 0.3, "invoke_ms": 1.2, "post_ms": 0.1})
>>> render_overlay(image, [("3", 0.97)], stats.latest, stats.snapshot(), cpu={"temp_c": 51.2, "throttled": False})
"""

from __future__ import annotations

import collections
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MIN_WIDTH = 480  # small inputs (64-pixel digits) are scaled up so the text fits
WINDOW_TITLE = "edgesmith classify (q to quit)"


class RollingStats:
    """Percentiles and frames per second over the last ``window`` frames."""

    def __init__(self, window: int = 100, clock=time.perf_counter):
        self._clock = clock
        self._frames = collections.deque(maxlen=window)  # (arrival time, total ms, invoke ms)
        self.latest = {"pre_ms": 0.0, "invoke_ms": 0.0, "post_ms": 0.0}

    def add(self, timings: dict) -> None:
        """Count one frame's ``pre_ms``/``invoke_ms``/``post_ms``."""
        self.latest = timings
        total = timings["pre_ms"] + timings["invoke_ms"] + timings["post_ms"]
        self._frames.append((self._clock(), total, timings["invoke_ms"]))

    def snapshot(self) -> dict:
        """``n``, ``p50_ms``/``p90_ms`` (pre+invoke+post), ``invoke_p50_ms``, and ``fps``."""
        if not self._frames:
            return {"n": 0, "p50_ms": None, "p90_ms": None, "invoke_p50_ms": None, "fps": None}
        arrivals, totals, invokes = (np.asarray(column) for column in zip(*self._frames))
        p50, p90 = np.percentile(totals, [50, 90])
        span = arrivals[-1] - arrivals[0]
        return {
            "n": len(totals),
            "p50_ms": float(p50),
            "p90_ms": float(p90),
            "invoke_p50_ms": float(np.percentile(invokes, 50)),
            "fps": (len(arrivals) - 1) / span if span > 0 else None,
        }


def overlay_lines(results, timings: dict, rolling: dict, cpu: dict) -> list:
    """The overlay's text, one string per line."""
    top = "   ".join(f"{label} {score:.2f}" for label, score in results)
    fps = f"{rolling['fps']:.1f} FPS" if rolling.get("fps") else "-- FPS"
    percentiles = (
        f"p50 {_ms(rolling['p50_ms'])}  p90 {_ms(rolling['p90_ms'])} ms (last {rolling['n']})   {fps}"
        if rolling.get("n")
        else fps
    )
    temperature = f"{cpu['temp_c']:.1f} C" if cpu.get("temp_c") is not None else "temp n/a"
    throttle = {True: "THROTTLED", False: "not throttled"}.get(cpu.get("throttled"), "throttling n/a")
    return [
        top,
        f"pre {_ms(timings['pre_ms'])}  invoke {_ms(timings['invoke_ms'])}  post {_ms(timings['post_ms'])} ms",
        percentiles,
        f"CPU {temperature}   {throttle}",
    ]


def _ms(value: float) -> str:
    """Milliseconds with two decimals below 10 ms (small models run in well under 1 ms)."""
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def render_overlay(image: Image.Image, results, timings: dict, rolling: dict, cpu: dict) -> Image.Image:
    """A copy of ``image`` (RGB, at least :data:`MIN_WIDTH` wide) with the statistics drawn on it."""
    frame = image.convert("RGB")
    if frame.width < MIN_WIDTH:
        frame = frame.resize((MIN_WIDTH, round(frame.height * MIN_WIDTH / frame.width)), Image.NEAREST)
    font = _font(max(12, frame.width // 32))
    lines = overlay_lines(results, timings, rolling, cpu)
    line_height = font.getbbox("Ag")[3] + 4
    draw = ImageDraw.Draw(frame, "RGBA")
    draw.rectangle((0, 0, frame.width, line_height * len(lines) + 8), fill=(0, 0, 0, 160))
    for number, text in enumerate(lines):
        colour = (255, 80, 80) if text.endswith("THROTTLED") else (255, 255, 255)
        draw.text((6, 4 + number * line_height), text, fill=colour, font=font)
    return frame


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 (Debian bookworm's python3-pil) has one fixed-size font
        return ImageFont.load_default()


class Display:
    """A window showing overlay frames: OpenCV when installed, else Tk.

    :meth:`show` returns False once the user closes the window or presses q.
    """

    def __init__(self):
        self._show = self._open_opencv() or self._open_tk()

    @property
    def available(self) -> bool:
        return self._show is not None

    def show(self, frame: Image.Image, hold_s: float = 0.0) -> bool:
        return self._show(frame, hold_s) if self._show else True

    def _open_opencv(self):
        try:
            import cv2
        except ImportError:
            return None

        def show(frame, hold_s):
            cv2.imshow(WINDOW_TITLE, np.asarray(frame)[..., ::-1])
            return cv2.waitKey(max(1, int(hold_s * 1000))) & 0xFF != ord("q")

        return show

    def _open_tk(self):
        try:
            import tkinter

            from PIL import ImageTk

            root = tkinter.Tk()
        except Exception:  # no Tk, no ImageTk, or no display to connect to
            return None
        root.title(WINDOW_TITLE)
        label = tkinter.Label(root)
        label.pack()
        state = {"open": True}
        root.protocol("WM_DELETE_WINDOW", lambda: state.update(open=False))
        root.bind("q", lambda _event: state.update(open=False))

        def show(frame, hold_s):
            label.image = ImageTk.PhotoImage(frame)  # keep a reference, or Tk shows nothing
            label.configure(image=label.image)
            deadline = time.monotonic() + hold_s
            while state["open"]:
                root.update()
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.01)
            return state["open"]

        return show
