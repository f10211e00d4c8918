"""The firmware bundle for one microcontroller: what ``convert-and-deploy --target mcu:PROFILE`` writes
instead of copying the model to a device.

>>> report = firmware_bundle("model.tflite", "stm32f746", "out")
>>> sorted(p.name for p in Path("out").iterdir())
['firmware-stm32f746', 'mcu-stm32f746.json']
>>> report["profiles"][0]["fits"], "compression" in report
(True, False)

Kernels are compressed with TFLM's lookup tables (:mod:`edgesmith.mcu.compress`) when that saves flash,
as after the ``mcu-smallest-flash`` recipe: the bundle then holds ``model.tflm.tflite`` and the report both
sizes and both arenas. The decoded kernels take arena: when the compressed model does not fit the board
and the original does, the original is bundled and ``compression_not_used`` says why.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgesmith.mcu.check import check_mcu
from edgesmith.mcu.compress import NothingToCompressError, plan_compression
from edgesmith.mcu.profiles import load_mcu_profile


def firmware_bundle(model, profile, out_dir, *, data: str | None = None, preprocess=None, margin: float = 0.2) -> dict:
    """Check ``model`` (.tflite) for ``profile`` (a name or TOML file) and write ``out_dir/firmware-NAME/``
    (:func:`edgesmith.mcu.export_firmware`) and ``out_dir/mcu-NAME.json`` (the :func:`check_mcu` report).

    Args:
        model: the .tflite file.
        profile: a built-in microcontroller profile name or a TOML file.
        out_dir: the folder to write into.
        data: a --data spec: accuracy in TFLM, and the samples compressed outputs are compared on.
        preprocess: how to normalize ``data`` when the model's metadata does not say.
        margin: headroom added to the measured arena and flash (0.2 = 20 %).
    """
    out, name = Path(out_dir), load_mcu_profile(profile)["name"]
    options = dict(data=data, preprocess=preprocess, margin=margin, export=out / f"firmware-{name}")
    report = None
    if any(row["chosen"] for row in plan_compression(Path(model).read_bytes())):
        try:
            report = check_mcu(model, [profile], compress=out / "model.tflm.tflite", **options)
        except NothingToCompressError:  # measured: the tables cost more than they save
            report = None
    if report is not None and not report["profiles"][0]["fits"]:  # the decoded kernels may not fit the RAM
        plain = check_mcu(model, [profile], **options)
        if plain["profiles"][0]["fits"]:
            (out / "model.tflm.tflite").unlink(missing_ok=True)
            plain["compression_not_used"] = ("the compressed model does not fit: its decoded kernels need an arena "
                                             f"of {report['memory']['arena_bytes']:,} B")
            report = plain
    if report is None:
        report = check_mcu(model, [profile], **options)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"mcu-{name}.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return report
