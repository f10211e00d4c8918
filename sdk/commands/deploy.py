"""``edgesmith deploy``: push a .tflite to one or more targets, benchmark it there, copy the logs back."""

from __future__ import annotations

import json
import sys

import click

from edgesmith.commands.progress import Progress, quiet_option
from edgesmith.deploy.adb import DELEGATES
from edgesmith.profiles import list_profiles
from edgesmith.runtime.energy import SPECS

ENERGY_HELP = f"Energy meter on the target: {SPECS}."


def target_options(function):
    """The options every command that deploys shares (bench settings and SSH settings)."""
    options = [
        click.option("--target", "targets", multiple=True, required=True, metavar="URL",
                     help="local, ssh://[user@]host[:port][/dir][?python=PATH] or adb://SERIAL; repeatable."),
        click.option("--runs", type=click.IntRange(min=1), default=100, show_default=True, help="Timed runs on the target."),
        click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True, help="Warm-up runs."),
        click.option("--threads", type=click.IntRange(min=1), default=None, help="Interpreter threads (default: the profile's)."),
        click.option("--energy", default="auto", show_default=True, help=ENERGY_HELP),
        click.option("--delegate", type=click.Choice(DELEGATES), default=None,
                     help="LiteRT delegate for adb:// targets (the app's default: xnnpack)."),
        click.option("--profile", default=None, help=f"Device profile name ({', '.join(list_profiles())})."),
        click.option("--identity", type=click.Path(exists=True, dir_okay=False), default=None, help="SSH private key."),
        click.option("--known-hosts", type=click.Path(dir_okay=False), default=None,
                     help="Known-hosts file edgesmith records SSH hosts in (default ~/.config/edgesmith/known_hosts)."),
        click.option("--connect-timeout", type=click.IntRange(min=1), default=10, show_default=True, help="Seconds to wait for a host."),
        click.option("--ssh-config", default=None, help="ssh_config file for the SSH client ('none' to ignore ~/.ssh/config)."),
        click.option("--json", "as_json", is_flag=True, help="Print the results as JSON."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def run_settings(settings: dict, targets) -> tuple:
    """``(BenchOptions, ssh options)`` from the parsed :func:`target_options`; checks the profile first.

    ``--delegate`` is for the Android app only: with any other target it is refused
    (``edgesmith bench`` on a Linux board always uses XNNPACK).
    """
    from edgesmith.deploy import BenchOptions
    from edgesmith.deploy.adb import AdbBenchOptions

    if settings["profile"]:
        from edgesmith.profiles import load_profile

        load_profile(settings["profile"])  # a bad name fails here, before any connection
    fields = dict(runs=settings["runs"], warmup=settings["warmup"], threads=settings["threads"],
                  energy=settings["energy"], profile=settings["profile"])
    if settings["delegate"] is None:
        options = BenchOptions(**fields)
    elif all(url.startswith("adb://") for url in targets):
        options = AdbBenchOptions(**fields, delegate=settings["delegate"])
    else:
        raise click.BadParameter("applies to adb:// targets only (local and ssh:// benchmarks use XNNPACK)",
                                 param_hint="--delegate")
    return options, {key: settings[key] for key in ("identity", "known_hosts", "connect_timeout", "ssh_config")}


def format_results(results: list) -> str:
    """One line per target: latency, energy, the log, and the deploy overhead."""
    lines = []
    for result in (r for r in results if "error" not in r):
        latency, energy = result["summary"]["latency_ms"], result["summary"]["energy"]
        power = f"{energy['mj_per_inference']:.3f} mJ/inference" if energy["available"] else f"energy unavailable ({energy['reason']})"
        timings = result["timings_s"]
        lines.append(f"{result['target']}: p50 {latency['p50']:.3f} ms, p90 {latency['p90']:.3f} ms, {power}; "
                     f"log {result['log']} (deploy {timings['total']:.1f} s, of which bench {timings['bench']:.1f} s)")
    return "\n".join(lines)


@click.command("deploy")
@click.argument("model", type=click.Path(dir_okay=False))
@target_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".", show_default=True, help="Where the logs go.")
@quiet_option
def command(model, targets, out_dir, as_json, quiet, **settings):
    """Deploy MODEL (.tflite) to each --target, benchmark it there and copy the JSONL logs to --out.

    \b
    edgesmith deploy model.tflite --target ssh://pi@raspberrypi --profile rpi5
    edgesmith deploy model.tflite --target local --target adb://R58M123ABC --json
    """
    from edgesmith.deploy import deploy_many

    options, ssh = run_settings(settings, targets)
    results, first_error = deploy_many(model, targets, out_dir=out_dir, options=options, ssh_options=ssh,
                                       progress_for=lambda url: Progress(enabled=not (as_json or quiet)))
    report(results, first_error, as_json, format_results)


def report(results: list, first_error, as_json: bool, formatter) -> None:
    """Print results (failures as one ``error:`` line each on stderr) and exit with the first error's code."""
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        text = formatter(results)
        if text:
            click.echo(text)
        for failed in (r for r in results if "error" in r):
            click.echo(f"error: {failed['error']}", err=True)
    if first_error is not None:
        sys.exit(first_error.exit_code)
