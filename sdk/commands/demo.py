"""``edgesmith demo``: train, compress, verify and benchmark a model, offline."""

from __future__ import annotations

import json

import click

from edgesmith.commands.progress import Progress, print_report, quiet_option
from edgesmith.commands.quiet import quiet_console
from edgesmith.demo import DEMO_RECIPE, run_demo  # no TensorFlow yet: run_demo imports it when it runs


@click.command("demo")
@click.option("--out", "out_dir", default="demo-out", show_default=True, type=click.Path(file_okay=False),
              help="Where the models and reports go.")
@click.option("--recipe", default=DEMO_RECIPE, show_default=True, help="The recipe to compress with.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@quiet_option
def command(out_dir, recipe, as_json, quiet):
    """Train a small CNN on builtin:digits (offline), compress it with a recipe,
    verify the .tflite on held-out data, benchmark float and compressed with
    edgesmith.runtime in alternating rounds, and print size, accuracy and
    latency side by side, with how many times smaller and faster (or slower)."""
    with quiet_console() as console:  # run_demo imports TensorFlow, whose start-up noise this hides
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
    for line in [*side_by_side(result), *verdict(result), f"models in {out_dir}/"]:
        click.echo(line)


def side_by_side(result: dict) -> list:
    """The float and compressed rows: bytes, gzip, weights, accuracy, p50 latency."""
    lines = [f"{'':12}{'bytes':>10}{'gzip':>10}{'weights':>10}{'accuracy':>10}{'latency p50':>13}"]
    for name in ("float", "compressed"):
        row = result[name]
        lines.append(f"{name:12}{row['bytes']:>10,}{row['gzip_bytes']:>10,}{row['weights_bytes']:>10,}"
                     f"{100 * row['accuracy']:>9.2f}%{row['latency_p50_ms']:>10.3g} ms")
    return lines


def verdict(result: dict) -> list:
    """The headline (how many times smaller and faster, or plainly slower) and how latency was measured."""
    ratios, recipe = result["comparison"], result["recipe"]
    drop = 100 * (result["float"]["accuracy"] - result["compressed"]["accuracy"])
    budget = result["report"].recipe.get("max_accuracy_drop")
    size = f"{ratios['smaller']:.1f}x smaller ({ratios['gzip_smaller']:.1f}x gzip)"
    accuracy = f"accuracy {-drop:+.2f} pt" + (f" (the recipe allows -{budget:g} pt)" if budget is not None else "")
    if ratios["at_least_as_fast"]:
        speed = f"{ratios['faster']:.1f}x faster (p50)"
    else:
        speed = f"but NOT faster: {1 / ratios['faster']:.2f}x SLOWER (p50) than float on this machine"
    return [f"{recipe} vs float: {size}, {speed}; {accuracy}",
            f"latency: median of {ratios['rounds']} rounds' p50, float and compressed alternating "
            f"({ratios['runs']} invokes a round, {ratios['threads']} thread); compressed not slower in "
            f"{ratios['rounds_not_slower']} of {ratios['rounds']} rounds"]
