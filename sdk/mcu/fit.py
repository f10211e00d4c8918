"""Does a .tflite fit a microcontroller? Its arena (measured twice) against SRAM, its bytes against flash.

>>> from edgesmith.mcu.profiles import load_mcu_profile
>>> memory = measure_memory("model.tflite")
>>> memory["arena_bytes"] == max(memory["arena_recorded_bytes"], memory["arena_smallest_bytes"])
True
>>> verdict = fit(memory, load_mcu_profile("nrf52840"), margin=0.2)
>>> verdict["fits"], verdict["ram"]["needed_bytes"] == align16(memory["arena_bytes"] * 1.2)
(True, True)

The margin is added to what was measured before comparing: kernels optimized for a core (CMSIS-NN,
ESP-NN) take scratch buffers the reference kernels do not, and the firmware has its own stack, heap, code
and data; TFLM's library code is not counted in flash.
"""

from __future__ import annotations

import math

from edgesmith.runtime.micro import MicroModel, smallest_arena

ALIGNMENT = 16  # TFLM wants the model and the arena 16-byte aligned


def align16(size: float) -> int:
    """``size`` rounded up to a multiple of 16 bytes."""
    return int(math.ceil(size / ALIGNMENT) * ALIGNMENT)


def measure_memory(model) -> dict:
    """The arena a .tflite (path or bytes) needs in TFLite Micro, measured, and its size as stored.

    ``arena_recorded_bytes``: TFLM's allocation record after one invoke; ``arena_smallest_bytes``: the
    smallest arena with which it allocates and runs (binary search); ``arena_bytes``: the larger of the two
    (they differ for some models: TFLM's record misses buffers of resource variables); ``arena_sections``:
    the record's split; ``model_bytes``: the file.
    """
    micro = MicroModel(model)
    recorded = micro.arena
    smallest = smallest_arena(micro.data, upper=2 * recorded["total"] + 4096)
    return {"model_bytes": len(micro.data), "arena_recorded_bytes": recorded["total"], "arena_smallest_bytes": smallest,
            "arena_bytes": max(recorded["total"], smallest), "arena_sections": recorded["sections"]}


def export_overhead(labels: list, preprocessing: dict | None) -> int:
    """Flash bytes the firmware export adds to the model array: alignment padding (at most 15) and the
    config header's data (label strings and their 32-bit pointers, mean/std floats)."""
    strings = sum(len(label.encode("utf-8")) + 1 for label in labels) + 4 * len(labels)
    floats = 4 * sum(len((preprocessing or {}).get(key) or []) for key in ("mean", "std"))
    return ALIGNMENT - 1 + strings + floats


def fit(memory: dict, profile: dict, margin: float = 0.2, export_bytes: int = 0) -> dict:
    """``memory`` (from :func:`measure_memory`) against ``profile``: the arena plus ``margin`` in the largest
    SRAM block, the model plus ``export_bytes`` plus ``margin`` in flash."""
    ram_needed = align16(memory["arena_bytes"] * (1 + margin))
    flash_stored = memory["model_bytes"] + export_bytes
    flash_needed = int(math.ceil(flash_stored * (1 + margin)))
    ram = {"measured_bytes": memory["arena_bytes"], "needed_bytes": ram_needed,
           "available_bytes": profile["arena_ram_bytes"], "fits": ram_needed <= profile["arena_ram_bytes"]}
    flash = {"measured_bytes": flash_stored, "needed_bytes": flash_needed, "available_bytes": profile["flash_bytes"],
             "fits": flash_needed <= profile["flash_bytes"]}
    return {"profile": profile["name"], "margin": margin, "ram": ram, "flash": flash,
            "fits": ram["fits"] and flash["fits"]}
