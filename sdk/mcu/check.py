"""One call for the whole microcontroller check: TFLite Micro runs the model, its memory against each
profile, accuracy and agreement on data, a latency estimate, and the firmware export.

>>> report = check_mcu("model.tflite", ["nrf52840", "rp2040"])
>>> [row["fits"] for row in report["profiles"]], report["ops"]
([True, True], ['CONV_2D', 'MEAN', 'FULLY_CONNECTED', 'SOFTMAX'])
>>> report["profiles"][0]["latency_estimate"]["estimated"]
True
"""

from __future__ import annotations

from pathlib import Path

from edgesmith.mcu.compress import compress_tflm
from edgesmith.mcu.cores import estimate_ms
from edgesmith.mcu.evaluate import evaluate, micro_dataset
from edgesmith.mcu.export import export_firmware, model_ops
from edgesmith.mcu.fit import export_overhead, fit, measure_memory
from edgesmith.mcu.profiles import list_mcu_profiles, load_mcu_profile
from edgesmith.runtime.errors import InputError
from edgesmith.runtime.metadata import read_metadata
from edgesmith.runtime.micro import MicroModel
from edgesmith.runtime.tflite_file import check_tflite_file, graph_macs


def check_mcu(model, profiles=None, *, data: str | None = None, preprocess=None, limit: int | None = None,
              margin: float = 0.2, export=None, compress=None) -> dict:
    """Check ``model`` (.tflite) for microcontrollers.

    Args:
        model: the .tflite file.
        profiles: profile names or TOML files (default: every built-in profile).
        data: a --data spec: accuracy in TFLM and agreement with LiteRT's reference kernels.
        preprocess: how to normalize ``data`` when the model's metadata does not say (see --preprocess).
        limit: evaluate at most this many samples.
        margin: headroom added to the measured arena and flash before comparing (0.2 = 20 %).
        export: a folder to write the firmware sources to.
        compress: a .tflite to write with TFLM's lookup-table weight compression (see
            :mod:`edgesmith.mcu.compress`); its outputs are checked bit-identical to the original's on
            ``data`` (else on random inputs), and the memory, profiles and export are then the compressed
            model's (``report["compression"]`` has both).
    """
    if not 0 <= margin < 10:
        raise InputError(f"margin must be between 0 and 10 (a fraction: 0.2 = 20 %), got {margin}")
    path = Path(model)
    check_tflite_file(path)
    chosen = [load_mcu_profile(p) for p in (profiles or list_mcu_profiles())]
    micro = MicroModel(path)  # first: an op TFLM lacks stops here, with its name
    metadata = read_metadata(path) or {}
    extra = export_overhead([str(label) for label in metadata.get("labels") or []], metadata.get("preprocessing"))
    macs = graph_macs(path) or 0
    dataset = micro_dataset(data, path, preprocess, limit) if data is not None else None
    compression, deployed = None, path
    if compress is None:
        memory = measure_memory(micro.data)
    else:  # nothing to compress is refused before the arena is measured
        inputs = None
        if dataset is not None and len(micro.inputs) == 1:
            inputs = [[micro.to_input(sample[None])] for sample in dataset.x_val]
        compression = compress_tflm(path, compress, inputs)
        memory = compression["before"]
        compression["flash_before_bytes"] = memory["model_bytes"] + extra
        compression["flash_after_bytes"] = compression["after"]["model_bytes"] + extra
        compression["flash_ratio"] = round(compression["flash_after_bytes"] / compression["flash_before_bytes"], 4)
        deployed, memory = Path(compress), compression["after"]
    report = {"model": str(deployed), "ops": model_ops(deployed.read_bytes()), "macs": macs, "memory": memory,
              "export_overhead_bytes": extra, "margin": margin,
              "profiles": [_profile_row(memory, profile, margin, extra, macs) for profile in chosen]}
    if compression is not None:
        report["compression"] = {"source": str(path), **compression}
    if dataset is not None:  # LiteRT cannot run the compressed model: its outputs are the original's (checked)
        report["accuracy"] = evaluate(path, dataset)
    if export is not None:
        arena = report["profiles"][0]["ram"]["needed_bytes"]
        report["export"] = {"dir": str(export), "arena_bytes": arena,
                            "files": export_firmware(deployed, export, arena, memory)}
    return report


def _profile_row(memory: dict, profile: dict, margin: float, extra: int, macs: int) -> dict:
    row = fit(memory, profile, margin, extra)
    timing = profile["timing"]
    row["latency_estimate"] = {"estimated": True, "ms": round(estimate_ms(macs, profile["clock_mhz"], timing), 3),
                               "macs": macs, "core": profile["core"], "clock_mhz": profile["clock_mhz"],
                               "cycles_per_mac": round(timing.cycles_per_mac, 3), "calibrated": timing.calibrated,
                               "source": timing.source}
    return row
