"""Latency measured, not MACs: Keras models' int8 .tflite files timed on this machine as ``edgesmith bench`` times
them, in alternating rounds so that the machine's noise falls on all of them alike.

>>> from edgesmith.converters.latency import int8_latencies_ms
>>> samples = data.calibration(8)
>>> [round(ms, 3) > 0 for ms in int8_latencies_ms([model, model], samples)]
[True, True]

Fewer MACs is not less time. On 2 x86 cores, at 32 x 32 pixels, channel pruning to 2x fewer MACs made the int8
graph of ResNet50 0.87x as slow, of MobileNetV2 (alpha 0.35) 0.96x, and of MobileNetV3Small 1.36x (slower):
there, fixed per-op costs (and int8 HARD_SWISH, which XNNPACK leaves to the built-in kernels) dominate.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from edgesmith.runtime.bench import alternating_p50s

from .ptq import to_tflite

TIMING = {"threads": 1, "runs": 100, "warmup": 10}  # per model and round
ROUNDS = 7  # EfficientNetB0's 7-block cut read 1.47x over 3 rounds of 40 runs and ran 1.30x in the matrix


def int8_latencies_ms(models: list, samples, rounds: int = ROUNDS) -> list:
    """The p50 invoke latency (ms) of each model's int8 .tflite (calibrated on ``samples``), the median over
    ``rounds`` rounds that each time every model in turn (:func:`~edgesmith.runtime.bench.alternating_p50s`)."""
    return [statistics.median(p50s) for p50s in _int8_rounds(models, samples, rounds)]


def speedup(model, candidate, samples) -> tuple:
    """``(model's p50 / candidate's p50, model's p50 ms, candidate's p50 ms)`` of their int8 .tflite files; the
    ratio is the median of the rounds' ratios (paired: load that changes between rounds cancels)."""
    base, faster = _int8_rounds([model, candidate], samples, ROUNDS)
    ratio = statistics.median(b / f for b, f in zip(base, faster))
    return ratio, statistics.median(base), statistics.median(faster)


def _int8_rounds(models: list, samples, rounds: int) -> list:
    """Per model, the p50 (ms) of each round of :func:`~edgesmith.runtime.bench.alternating_p50s`."""
    with tempfile.TemporaryDirectory(prefix="edgesmith-latency-") as folder:
        paths = {}
        for index, model in enumerate(models):
            paths[index] = Path(folder) / f"{index}.tflite"
            paths[index].write_bytes(to_tflite(model, "int8", samples=samples))
        p50s = alternating_p50s(paths, rounds, **TIMING)
    return [p50s[index] for index in paths]
