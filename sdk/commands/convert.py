"""``edgesmith convert``: apply a recipe to a Keras model, write and verify the .tflite."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click



class _StageProgress:
    """One stderr progress bar per training stage; a one-line note for stages without steps."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._bar = None
        self._stage = None

    def __call__(self, stage: str, done: int, total) -> None:
        if not self.enabled:
            return
        if stage != self._stage or total is None:
            self.close()
            self._stage = stage
            if total is None:
                click.echo(f"{stage}...", err=True)
                return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=f"{stage:>8}", unit="step", file=sys.stderr, leave=False)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def print_report(report: dict) -> None:
    """The per-stage table and the headline figures, on stdout."""
    from edgesmith.pipeline import format_table, stage_table, summary_lines

    click.echo(format_table(stage_table(report)))
    for line in summary_lines(report):
        click.echo(line)


@click.command("convert")
@click.argument("model", type=click.Path(exists=False))
@click.option("--recipe", default="int8-ptq", show_default=True, metavar="NAME|FILE.toml",
              help="A built-in recipe (fp16, dynamic-int8, int8-ptq, int8-qat, prune50-int8, max-compression) or a TOML file.")
@click.option("--data", "data_spec", required=True, metavar="SPEC",
              help="builtin:digits|mnist|fashion_mnist|cifar10, an image folder (one sub-folder per class), or an .npz file.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--resume", is_flag=True, help="Reuse stages a previous run of the same recipe completed.")
@click.option("--json", "as_json", is_flag=True, help="Print report.json instead of the table.")
def command(model, recipe, data_spec, out_dir, resume, as_json):
    """Compress MODEL (.keras, .h5 or a SavedModel directory) with a recipe, write
    OUT/model.tflite with metadata, verify it on the data, and write OUT/report.json
    and OUT/report.md."""
    from edgesmith.converters.errors import AccuracyDropError
    from edgesmith.pipeline import convert

    progress = _StageProgress(enabled=not as_json)
    try:
        report = convert(model, recipe, data_spec, out_dir, resume=resume, progress=progress)
    except AccuracyDropError:
        progress.close()
        _show(json.loads((Path(out_dir) / "report.json").read_text()), as_json)
        raise
    finally:
        progress.close()
    _show(report, as_json)
    if not as_json:
        click.echo(f"wrote {Path(out_dir) / 'model.tflite'}, report.json and report.md")


def _show(report: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        print_report(report)



