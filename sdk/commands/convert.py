"""``edgesmith convert``: apply a recipe to a Keras model, write and verify the .tflite."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgesmith.commands.data_options import budget_options, check_inputs, preprocessing_options
from edgesmith.commands.progress import Progress, print_report, quiet_option
from edgesmith.commands.quiet import quiet_console
from edgesmith.data import BUILTINS
from edgesmith.recipes import builtin_recipes


class Duration(click.ParamType):
    """A duration as seconds: ``90``, ``90s``, ``10m``, ``1.5h``."""

    name = "duration"
    UNITS = {"s": 1, "m": 60, "h": 3600}

    def convert(self, value, param, ctx):
        text = str(value).strip().lower()
        scale = self.UNITS.get(text[-1:], None)
        try:
            seconds = float(text[:-1] if scale else text) * (scale or 1)
        except ValueError:
            self.fail(f"{value!r} is not a duration (e.g. 90s, 10m, 1h)", param, ctx)
        if seconds <= 0:
            self.fail(f"{value!r} is not a positive duration", param, ctx)
        return seconds


@click.command("convert")
@click.argument("model", type=click.Path(exists=False))
@click.option("--recipe", default="int8-ptq", show_default=True, metavar="NAME|FILE.toml|FILE.tflite",
              help=f"A built-in recipe ({', '.join(builtin_recipes())}), a TOML file, or a .tflite edgesmith wrote "
                   "(replays the recipe in its metadata).")
@click.option("--data", "data_spec", required=True, metavar="SPEC",
              help=f"builtin:{'|'.join(BUILTINS)}, an image folder (one sub-folder per class, or images "
                   "alone: unlabelled), or an .npz file (x_train/y_train/x_test/y_test, or x_train/x_test alone).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--resume", is_flag=True, help="Reuse stages a previous run of the same recipe completed.")
@click.option("--walk-back/--no-walk-back", default=True, show_default=True,
              help="When the .tflite misses the recipe's accuracy budget, run weaker variants of the recipe (the last "
                   "of several structural passes dropped, half the pruning, 8-bit kernels on the most sensitive "
                   "4-bit layers, no structural pass, then int8 "
                   "post-training quantization) and deliver the first that holds; each run is in report.json.")
@click.option("--fallback", is_flag=True,
              help="Instead of the walk back: raise the precision of the worst layers one step at a time (int4 -> "
                   "int8 -> int16x8 -> float), re-verifying each time, until it holds (also: recipe key "
                   "fallback = true; post-training recipes only).")
@click.option("--recovery-time", type=Duration(), metavar="DURATION",
              help="Fine-tuning time in all (e.g. 90s, 10m, 1h), shared among the recipe's training passes by their "
                   "epochs; each then trains until its share runs out or its accuracy on held-out training rows "
                   "stops rising, and keeps its best epoch.")
@click.option("--json", "as_json", is_flag=True, help="Print report.json instead of the table.")
@budget_options
@preprocessing_options
@quiet_option
def command(model, recipe, data_spec, out_dir, resume, walk_back, fallback, recovery_time, min_snr_db, metrics,
            as_json, preprocess, quiet):
    """Compress MODEL (.keras, .h5 or a SavedModel directory) with a recipe, write
    OUT/model.tflite with metadata, verify it on the data, and write OUT/report.json
    and OUT/report.md."""
    settings = {"resume": resume, "fallback": fallback or None, "walk_back": walk_back, "recovery_time": recovery_time,
                "min_snr_db": min_snr_db, "metrics": metrics, "preprocess": preprocess}
    with quiet_console() as console:
        report, error = _convert(model, recipe, data_spec, out_dir, settings, Progress(not (as_json or quiet), console))
    _show(report, as_json)
    if error is not None:
        raise error
    if not as_json:
        click.echo(f"wrote {Path(out_dir) / 'model.tflite'}, report.json and report.md")


def _convert(model, recipe, data_spec, out_dir, settings, progress) -> tuple:
    """``(report, None)``; or, when the accuracy drop is too large, the report written before the error and the error."""
    from edgesmith.converters.errors import AccuracyDropError
    from edgesmith.recipes import load_recipe

    try:
        check_inputs(model, data_spec)  # a recipe's option values need its passes' modules (TensorFlow): last
        recipe = load_recipe(recipe)
        from edgesmith.pipeline import convert  # imports TensorFlow: inside quiet_console

        return convert(model, recipe, data_spec, out_dir, **settings, progress=progress), None
    except AccuracyDropError as error:
        return error.report, error
    finally:
        progress.close()


def _show(report, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        print_report(report)
