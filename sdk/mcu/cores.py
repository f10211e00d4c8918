"""Cycles per multiply-accumulate of each microcontroller core running TFLite Micro, from MLPerf Tiny results.

A latency *estimate* is ``MACs x cycles_per_mac / clock``. The cycles per MAC of a core come from published
MLPerf Tiny closed-division results (mlcommons/tiny_results_v0.5, v0.7, v1.1), over the three benchmarks whose
work is almost all MACs: image classification (ResNet-8, 12,501,632 MACs), keyword spotting (DS-CNN,
2,656,768 MACs) and visual wake words (MobileNetV1 0.25, 7,489,664 MACs), counted by
:func:`edgesmith.runtime.tflite_file.graph_macs` on the reference .tflite files of mlcommons/tiny.

>>> round(CORES["cortex-m33"].cycles_per_mac, 2)
4.05
>>> sorted(CORES)
['cortex-m0plus', 'cortex-m33', 'cortex-m4', 'cortex-m7', 'xtensa-lx7']

One anchor is TFLite Micro itself with CMSIS-NN kernels on a Cortex-M33; the other Cortex-M cores are scaled
from it by the ratios one engine (Bosch HALE, MLPerf Tiny v1.1) showed across M0+, M4, M7 and M33 boards.
No TFLite Micro result exists for the ESP32-S3's Xtensa LX7: its figure is an assumption and says so.
"""

from __future__ import annotations

from typing import NamedTuple

# the MACs of the three MLPerf Tiny models used (IC, KWS, VWW)
MLPERF_TINY_MACS = (12_501_632, 2_656_768, 7_489_664)


class Core(NamedTuple):
    """A core's TFLM cycles per MAC, how it was obtained (``calibrated``: from a TFLM result), and the source."""

    cycles_per_mac: float
    calibrated: bool
    source: str


def cycles_per_mac(clock_mhz: float, inferences_per_second: tuple) -> float:
    """Cycles per MAC over the IC, KWS and VWW runs of one MLPerf Tiny submission.

    >>> round(cycles_per_mac(200, (4.062, 19.774, 6.159)), 3)     # Renesas EK-RA6M4, v0.7
    4.054
    """
    seconds = sum(1.0 / rate for rate in inferences_per_second)
    return seconds * clock_mhz * 1e6 / sum(MLPERF_TINY_MACS)


# MLPerf Tiny v0.7 closed, Renesas EK-RA6M4 (Cortex-M33, 200 MHz), "tflite-micro" with CMSIS
_TFLM_M33 = cycles_per_mac(200, (4.062, 19.774, 6.159))
# MLPerf Tiny v1.1 closed, Bosch HALE 1.0, same engine on four cores (IC, KWS, VWW inferences/s)
_HALE = {
    "cortex-m0plus": cycles_per_mac(64, (0.599, 1.472, 0.535)),     # NUCLEO-G0B1RE, 64 MHz
    "cortex-m4": cycles_per_mac(120, (5.586, 15.954, 5.533)),       # NUCLEO-L4R5ZI, 120 MHz
    "cortex-m7": cycles_per_mac(216, (16.242, 54.293, 17.490)),     # DISCO-F746NG, 216 MHz
    "cortex-m33": cycles_per_mac(160, (8.493, 25.166, 8.715)),      # NUCLEO-U575ZI-Q, 160 MHz
}
_ANCHOR = ("MLPerf Tiny v0.7 closed, Renesas EK-RA6M4 (Cortex-M33 200 MHz, tflite-micro + CMSIS-NN): "
           "IC 4.062, KWS 19.774, VWW 6.159 inferences/s")


def _scaled(core: str) -> Core:
    ratio = _HALE[core] / _HALE["cortex-m33"]
    return Core(_TFLM_M33 * ratio, True, f"{_ANCHOR}; scaled x{ratio:.2f} by the {core}/cortex-m33 ratio of "
                                       "Bosch HALE 1.0 in MLPerf Tiny v1.1 closed")


CORES = {
    "cortex-m33": Core(_TFLM_M33, True, _ANCHOR),
    "cortex-m4": _scaled("cortex-m4"),
    "cortex-m7": _scaled("cortex-m7"),
    "cortex-m0plus": _scaled("cortex-m0plus"),
    # no MLPerf Tiny submission runs TFLM (or anything) on an Xtensa LX7: assumed as fast per cycle as a
    # Cortex-M7, for ESP-NN's SIMD kernels
    "xtensa-lx7": Core(_scaled("cortex-m7").cycles_per_mac, False,
                       "no MLPerf Tiny result: assumed equal to cortex-m7 (ESP-NN SIMD kernels), not calibrated"),
}


def estimate_ms(macs: int, clock_mhz: float, core: Core) -> float:
    """Milliseconds per inference, estimated: ``macs x cycles_per_mac / clock``.

    >>> round(estimate_ms(12_501_632, 200, CORES["cortex-m33"]), 1)  # the anchor run itself: 1/4.062 s
    253.4
    """
    return macs * core.cycles_per_mac / (clock_mhz * 1e3)
