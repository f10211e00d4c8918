"""``edgesmith sensitivity``: per-layer quantization and pruning sensitivity, as a table and a plot."""

from __future__ import annotations

import click

from edgesmith.commands.data_options import check_inputs, preprocessing_options
from edgesmith.commands.progress import Progress, quiet_option, show_result
from edgesmith.optimize.sensitivity import KINDS


@click.command("sensitivity")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", "data_spec", required=True, metavar="SPEC",
              help="Labeled data: builtin:digits|mnist|..., an image folder with class sub-folders, or an .npz file.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS), default=KINDS, show_default=True,
              help="What to measure (repeat the option for several).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Write the plot to this PNG file.")
@click.option("--json", "as_json", is_flag=True, help="Print the measurements as JSON.")
@preprocessing_options
@quiet_option
def command(model, data_spec, kinds, plot_path, as_json, preprocess, quiet):
    """Measure, layer by layer, how much accuracy MODEL (.keras or .h5) loses when that
    layer alone is int8 (or alone stays float among int8 layers), and when its weights
    or channels alone are pruned."""
    check_inputs(model, data_spec)
    from edgesmith.optimize.sensitivity import format_sensitivity, plot_sensitivity, sensitivity
    from edgesmith.pipeline import readable_source

    loaded, data, _ = readable_source(model, data_spec, preprocess)
    bars = Progress(enabled=not (as_json or quiet), unit="layer")
    try:
        report = sensitivity(loaded, data, kinds=kinds, progress=bars)
    finally:
        bars.close()
    show_result(report, as_json, format_sensitivity, plot_path, plot_sensitivity)
