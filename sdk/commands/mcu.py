"""``edgesmith mcu``: run a .tflite in TensorFlow Lite Micro, check it fits microcontrollers, export firmware."""

from __future__ import annotations

from pathlib import Path

import click

from edgesmith.commands.data_options import preprocessing_options
from edgesmith.commands.progress import show_result
from edgesmith.mcu.profiles import list_mcu_profiles


@click.command("mcu")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--profile", "profiles", multiple=True, metavar="NAME|FILE.toml",
              help=f"A built-in microcontroller profile ({', '.join(list_mcu_profiles())}) or a TOML file; repeat for "
                   "several. Default: every built-in profile.")
@click.option("--data", "data_spec", default=None, metavar="SPEC",
              help="Data (builtin:digits|..., an image folder, an .npz): TFLite Micro's outputs against LiteRT's "
                   "reference kernels, every output; with class labels, the accuracy of both too.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate at most this many samples.")
@click.option("--margin", type=click.FloatRange(0, 10), default=0.2, show_default=True,
              help="Headroom added to the measured arena and flash before comparing (0.2 = 20%).")
@click.option("--export", "export_dir", type=click.Path(file_okay=False), default=None,
              help="Write firmware sources here: model array, op resolver, config header, README.")
@click.option("--compress", is_flag=True,
              help="Write MODEL.compressed.tflite with TFLite Micro's lookup-table weight compression (kernels with "
                   "few distinct values, as clustering leaves them), checked bit-identical to MODEL in TFLite Micro on "
                   "--data (else random inputs); the figures, profiles and --export are then the compressed model's.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@preprocessing_options
def command(model, profiles, data_spec, limit, margin, export_dir, compress, as_json, preprocess):
    """Run MODEL (.tflite) in TensorFlow Lite Micro: measure its arena and flash, check them against
    microcontroller profiles (exit 1 when it fits none), measure accuracy on --data, estimate latency,
    --compress its weights and --export firmware sources."""
    from edgesmith.mcu import check_mcu
    from edgesmith.runtime.errors import RunFailedError

    compressed = compressed_path(model) if compress else None
    report = check_mcu(model, list(profiles) or None, data=data_spec, preprocess=preprocess, limit=limit,
                       margin=margin, export=export_dir, compress=compressed)
    show_result(report, as_json, format_report)
    if not any(row["fits"] for row in report["profiles"]):
        names = ", ".join(row["profile"] for row in report["profiles"])
        raise RunFailedError(f"{model} does not fit {names} with a {100 * margin:.0f}% margin")


def compressed_path(model) -> Path:
    """Where ``--compress`` writes: ``model.tflite`` -> ``model.compressed.tflite`` beside it."""
    path = Path(model)
    return path.with_name(f"{path.stem}.compressed.tflite")


def _bytes(size: int) -> str:
    return f"{size:,} B"


def format_report(report: dict) -> str:
    """A readable summary of :func:`edgesmith.mcu.check_mcu`'s report."""
    memory, margin = report["memory"], report["margin"]
    lines = [
        f"model      {report['model']}: {_bytes(memory['model_bytes'])}, {report['macs']:,} MACs",
        f"ops        {', '.join(report['ops'])}",
        f"arena      {_bytes(memory['arena_bytes'])} measured in TFLite Micro (allocation record "
        f"{_bytes(memory['arena_recorded_bytes'])}, smallest arena that runs {_bytes(memory['arena_smallest_bytes'])}; "
        "64-bit host)",
        f"flash      {_bytes(memory['model_bytes'] + report['export_overhead_bytes'])}: the model as stored plus "
        f"{_bytes(report['export_overhead_bytes'])} the export adds (TFLM code not counted)",
        f"margin     {100 * margin:.0f}% added to both before comparing",
        "",
        f"{'profile':<12}{'RAM: needed / available':<30}{'flash: needed / available':<32}{'fits':<6}latency (ESTIMATE)",
    ]
    for row in report["profiles"]:
        ram, flash, latency = row["ram"], row["flash"], row["latency_estimate"]
        basis = f"{latency['core']}, {latency['cycles_per_mac']} cycles/MAC" + (
            "" if latency["calibrated"] else ", uncalibrated")
        lines.append(f"{row['profile']:<12}{_pair(ram):<30}{_pair(flash):<32}{'yes' if row['fits'] else 'NO':<6}"
                     f"~{latency['ms']:.3g} ms ({basis})")
    if "compression" in report:
        lines += [""] + format_compression(report["compression"])
    if "accuracy" in report:
        acc = report["accuracy"]
        scores = (f"TFLite Micro {100 * acc['tflm_accuracy']:.2f}% on {acc['samples']} samples; LiteRT reference "
                  f"kernels {100 * acc['reference_accuracy']:.2f}%; top-1 agreement {100 * acc['top1_agreement']:.2f}%"
                  if "tflm_accuracy" in acc else f"{acc['samples']} unlabelled samples, {acc['outputs']} output(s)")
        lines += ["", f"{'accuracy' if 'tflm_accuracy' in acc else 'outputs':<11}{scores}; {acc['outputs_differing']} sample(s) with outputs not bit-identical to "
                      f"LiteRT's reference kernels (largest difference {acc['max_output_difference']:g})"]
    if "export" in report:
        lines += ["", f"export     wrote {report['export']['dir']}/ ({', '.join(report['export']['files'])}), "
                      f"arena {_bytes(report['export']['arena_bytes'])}"]
    return "\n".join(lines)


def format_compression(done: dict) -> list:
    """The ``--compress`` lines: flash and arena before and after, what was compressed and skipped, the check."""
    before, after = done["before"], done["after"]
    lines = [f"compressed {done['source']} -> {done['file']}: outputs bit-identical in TFLite Micro on "
             f"{done['check']['samples']} {done['check']['inputs']} sample(s)",
             f"  flash    {_bytes(done['flash_before_bytes'])} -> {_bytes(done['flash_after_bytes'])} "
             f"({done['flash_ratio']:.2f}x)",
             f"  arena    {_bytes(before['arena_bytes'])} -> {_bytes(after['arena_bytes'])} (decoded kernels live in "
             "the arena)"]
    for row in done["tensors"]:
        where = f"per-channel, axis {row['axis']}" if row["mode"] == "per-channel" else "per-tensor"
        lines.append(f"  {row['op']:<18}{row['name']}: {row['values']} values -> {row['index_bits']}-bit indices "
                     f"({where}), {_bytes(row['saved_bytes'])} saved")
    for row in done["skipped"]:
        lines.append(f"  {row['op']:<18}{row['name']}: kept ({row['reason']})")
    return lines


def _pair(side: dict) -> str:
    return f"{side['needed_bytes']:,} / {side['available_bytes']:,}" + ("" if side["fits"] else " !")
