"""``edgesmith sensitivity``: per-layer quantization and pruning sensitivity, as a table and a plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

KINDS = ("quantization", "pruning", "channels")


class _Bars:
    """One stderr progress bar per kind of measurement."""

    def __init__(self, enabled: bool, unit: str = "layer"):
        self.enabled, self.unit, self._bar, self._stage = enabled, unit, None, None

    def __call__(self, stage: str, done: int, total) -> None:
        if not self.enabled or total is None:
            return
        if stage != self._stage:
            self.close()
            from tqdm import tqdm

            self._stage = stage
            self._bar = tqdm(total=total, desc=f"{stage:>12}", unit=self.unit, file=sys.stderr, leave=False)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


@click.command("sensitivity")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", "data_spec", required=True, metavar="SPEC",
              help="Labeled data: builtin:digits|mnist|..., an image folder with class sub-folders, or an .npz file.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS), default=KINDS, show_default=True,
              help="What to measure (repeat the option for several).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Write the plot to this PNG file.")
@click.option("--json", "as_json", is_flag=True, help="Print the measurements as JSON.")
def command(model, data_spec, kinds, plot_path, as_json):
    """Measure, layer by layer, how much accuracy MODEL (.keras or .h5) loses when that
    layer alone is int8 (or alone stays float among int8 layers), and when its weights
    or channels alone are pruned."""
    from edgesmith.converters.load import load_model
    from edgesmith.optimize.sensitivity import format_sensitivity, plot_sensitivity, sensitivity
    from edgesmith.pipeline import dataset_for
    from edgesmith.runtime.metadata import atomic_write_bytes

    loaded = load_model(model)
    data = dataset_for(data_spec, loaded)
    data.check_model(loaded)
    bars = _Bars(enabled=not as_json)
    try:
        report = sensitivity(loaded, data, kinds=kinds, progress=bars)
    finally:
        bars.close()
    if plot_path:
        atomic_write_bytes(Path(plot_path), plot_sensitivity(report))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(format_sensitivity(report))
    if plot_path:
        click.echo(f"wrote {plot_path}")
