"""``edgesmith bench``: latency, memory, temperature and energy of a .tflite on this device."""

from __future__ import annotations

import functools

import click

from edgesmith.commands.progress import Progress, quiet_option, show_result
from edgesmith.runtime.energy import SPECS, check_spec
from edgesmith.runtime.errors import InputError
from edgesmith.runtime.interpreter import BACKENDS


def _load_profile(name):
    if not name:
        return None
    try:
        from edgesmith.profiles import load_profile
    except ImportError:  # profiles ship with the deploy tooling
        raise InputError("device profiles are not available in this installation") from None
    return load_profile(name)


@click.command("bench")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Interpreter threads (default: the profile's, else LiteRT's).")
@click.option("--runs", type=click.IntRange(min=1), default=100, show_default=True, help="Timed steady-state runs.")
@click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True, help="Untimed-for-statistics warm-up runs (the first invoke is always recorded).")
@click.option("--input", "input_", default="random", show_default=True, metavar="random|FILE.npy|FILE.npz|IMAGE", help="What to feed the model.")
@click.option("--log", "log_path", type=click.Path(dir_okay=False), default=None, help="Append JSONL records here (docs/log-schema.md).")
@click.option("--energy", default="auto", show_default=True, callback=lambda ctx, param, value: check_spec(value), metavar="METER", help=f"Energy meter: {SPECS}; 'unavailable' is reported when none can measure.")
@click.option("--energy-root", default="/", hidden=True, help="Root of the sysfs tree to read (for tests and fixtures).")
@click.option("--profile", default=None, help="Device profile name or TOML file (for estimate, default threads, % of peak).")
@click.option("--backend", type=click.Choice(["auto", *BACKENDS]), default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the header and summary as JSON.")
@quiet_option
def command(model, threads, runs, warmup, input_, log_path, energy, energy_root, profile, backend, as_json, quiet):
    """Benchmark MODEL (.tflite): init, first invoke, warm-up, latency percentiles,
    throughput, peak memory, CPU temperature/frequency/throttling and energy per
    inference."""
    from edgesmith.runtime.bench import benchmark

    device_profile = _load_profile(profile)
    if threads is None and device_profile:
        threads = device_profile.get("default_threads")
    progress = Progress(enabled=not (as_json or quiet), unit="run")
    try:
        result = benchmark(model, threads=threads, runs=runs, warmup=warmup, input=input_, energy=energy,
                           energy_root=energy_root, profile=device_profile, log_path=log_path, backend=backend,
                           progress=progress)
    finally:
        progress.close()
    show_result(result, as_json, functools.partial(format_result, profile=device_profile))


def format_result(result: dict, profile: dict | None = None) -> str:
    """A human-readable table of one benchmark."""
    header, summary = result["header"], result["summary"]
    latency = summary["latency_ms"]
    rows = [
        ("model", f"{header['model']['path']} ({header['model']['size_bytes'] / 1024:.1f} KiB)"),
        ("runtime", f"{header['runtime']['backend']}, threads={header['runtime']['threads'] or 'default'}"),
        ("init", f"{summary['init_ms']:.2f} ms"),
        ("first invoke", f"{summary['first_invoke_ms']:.3f} ms"),
        ("warm-up", f"{summary['warmup_ms']['n']} runs, mean {summary['warmup_ms']['mean']:.3f} ms"),
        ("latency", "  ".join(f"{k} {latency[k]:.3f}" for k in ("min", "mean", "p50", "p90", "p99", "max")) + f"  std {latency['std']:.3f} ms"),
        ("pre / post p50", f"{summary['pre_ms']['p50']:.3f} / {summary['post_ms']['p50']:.3f} ms"),
        ("throughput", f"{summary['throughput_ips']:.1f} inferences/s ({summary['runs']} runs)"),
        ("peak RSS", _maybe(summary["peak_rss_mb"], "{:.1f} MB")),
        ("CPU", _cpu_text(summary["cpu"])),
        ("compute", _compute_text(summary, profile)),
        ("energy", _energy_text(summary["energy"])),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _maybe(value, fmt: str) -> str:
    return "unavailable" if value is None else fmt.format(value)


def _cpu_text(cpu: dict) -> str:
    temp = f"{_maybe(cpu['temp_c_start'], '{:.1f}')} -> {_maybe(cpu['temp_c_end'], '{:.1f}')} C"
    freq = f"{_maybe(cpu['freq_mhz_start'], '{:.0f}')} -> {_maybe(cpu['freq_mhz_end'], '{:.0f}')} MHz"
    flag = {True: "THROTTLED", False: "not throttled", None: "throttling unknown"}[cpu["throttled"]]
    return f"{temp}, {freq}, {flag}"


def _compute_text(summary: dict, profile: dict | None) -> str:
    if not summary.get("macs"):
        return "MACs unknown"
    text = f"{summary['macs'] / 1e6:.2f} MMAC/inference, {summary['gmacs_per_s']:.2f} GMAC/s"
    peak = (profile or {}).get("peak_int8_gmacs")
    if peak:
        text += f" ({100 * summary['gmacs_per_s'] / peak:.1f}% of {profile['name']} int8 peak)"
    return text


def _energy_text(energy: dict) -> str:
    if not energy["available"]:
        return f"unavailable ({energy['reason']})"
    kind = "estimated" if energy.get("estimated") else "measured"
    return f"{energy['mj_per_inference']:.3f} mJ/inference, {energy['avg_power_w']:.2f} W avg ({kind}, {energy['meter']})"
