"""``edgesmith demo``: train, compress, verify and benchmark a model, offline."""

from __future__ import annotations

import json

import click

from edgesmith.commands.progress import Progress, print_report, quiet_option
from edgesmith.commands.quiet import quiet_console


@click.command("demo")
@click.option("--out", "out_dir", default="demo-out", show_default=True, type=click.Path(file_okay=False),
              help="Where the models and reports go.")
@click.option("--recipe", default="int8-qat", show_default=True, help="The recipe to compress with.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@quiet_option
def command(out_dir, recipe, as_json, quiet):
    """Train a small CNN on builtin:digits (offline), compress it with a recipe,
    verify the .tflite on held-out data, benchmark float and compressed with
    edgesmith.runtime, and print size, accuracy and latency side by side."""
    with quiet_console() as console:
        from edgesmith.demo import run_demo  # imports TensorFlow: inside quiet_console

        progress = Progress(enabled=not (as_json or quiet), stream=console)
        try:
            result = run_demo(out_dir, recipe=recipe, progress=progress)
        finally:
            progress.close()
    if as_json:
        click.echo(json.dumps({**result, "report": result["report"].to_dict()}, indent=2, sort_keys=True))
        return
    print_report(result["report"])
    click.echo("")
    click.echo(f"{'':12}{'bytes':>10}{'weights':>10}{'gzip':>10}{'accuracy':>10}{'latency p50':>13}")
    for name in ("float", "compressed"):
        row = result[name]
        click.echo(f"{name:12}{row['bytes']:>10,}{row['weights_bytes']:>10,}{row['gzip_bytes']:>10,}"
                   f"{100 * row['accuracy']:>9.2f}%{row['latency_p50_ms']:>10.3f} ms")
    smaller = result["float"]["bytes"] / result["compressed"]["bytes"]
    gzip_smaller = result["float"]["gzip_bytes"] / result["compressed"]["gzip_bytes"]
    click.echo(f"compressed is {smaller:.1f}x smaller as stored ({gzip_smaller:.1f}x gzip); models in {out_dir}/")
