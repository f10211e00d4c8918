"""``--preprocess``, ``--mean`` and ``--std``: the options every command that takes ``--data`` shares; ``--metric``
and ``--min-snr``, the budget options of the commands that verify (convert, optimize).

>>> @click.command()
... @preprocessing_options
... def command(preprocess):
...     ...                      # ``preprocess``: None, a preset name, or {"mean": (...), "std": (...)}
"""

from __future__ import annotations

import functools
from pathlib import Path

import click

from edgesmith.preprocessing import ALIASES, PRESETS, parse_values


def check_inputs(model=None, data_spec=None, tflite=None) -> None:
    """A command's inputs checked as far as it can be done without TensorFlow (does the model file exist, does the
    data spec name something, is the .tflite one): bad input fails in a second, not after TensorFlow loads."""
    from edgesmith.converters.load import check_model_path
    from edgesmith.data import check_spec
    from edgesmith.runtime.tflite_file import check_tflite_file

    if model is not None:
        check_model_path(model)
    if tflite is not None:
        check_tflite_file(Path(tflite))
    if data_spec is not None:
        check_spec(data_spec)


def preprocessing_options(command):
    """Add ``--preprocess/--mean/--std`` to ``command`` and hand it one ``preprocess`` argument."""

    @click.option("--preprocess", "preset", type=click.Choice(sorted(PRESETS) + sorted(ALIASES)), default=None,
                  help="How the model wants its pixels: raw (0..255, models that normalize inside), unit (0..1), "
                       "tf (-1..1), torch (ImageNet mean/std), caffe (BGR minus the ImageNet mean). Default: raw "
                       "for a model that starts with Rescaling/Normalization, else unit.")
    @click.option("--mean", default=None, metavar="V[,V,V]",
                  help="Pixel mean (0..255 scale), one value or one per channel: input = (pixel - mean) / std.")
    @click.option("--std", default=None, metavar="V[,V,V]", help="Pixel std (0..255 scale), one value or one per channel.")
    @functools.wraps(command)
    def with_preprocessing(*args, preset, mean, std, **kwargs):
        if preset is not None and (mean is not None or std is not None):
            raise click.UsageError("give --preprocess or --mean/--std, not both")
        values = {"mean": parse_values(mean), "std": parse_values(std)}
        chosen = preset if preset is not None else (
            {key: value for key, value in values.items() if value is not None} or None)
        return command(*args, preprocess=chosen, **kwargs)

    return with_preprocessing


def budget_options(command):
    """Add ``--min-snr`` (``min_snr_db``) and ``--metric OUTPUT=METRIC[:BUDGET]`` (``metrics``, a dict) to
    ``command``."""
    command = click.option(
        "--metric", "metrics", multiple=True, metavar="OUTPUT=METRIC[:BUDGET]",
        callback=lambda _, param, values: _pairs(values, param),
        help="How the data's targets for OUTPUT are scored: accuracy, top5, f1, miou (points), mse, mae (a rise in "
             "%), psnr (dB), cosine or auc; repeat per output (default: accuracy or miou for class ids, auc for 0/1 "
             "anomaly labels, mse for values). OUTPUT=METRIC:BUDGET also sets that output's budget in the metric's "
             "units (box=mae:5: at most 5 % worse than the source).")(command)
    return click.option(
        "--min-snr", "min_snr_db", type=float, metavar="DB",
        help="On unlabelled data (no accuracy to lose): the lowest output SNR, in dB against the source model's "
             "outputs, the .tflite may have (default 20).")(command)


def _pairs(values, param) -> dict:
    """``("box=mae", ...)`` as ``{"box": "mae"}``; a value without ``=`` is a usage error (exit 2)."""
    pairs = {}
    for value in values:
        name, equals, metric = value.partition("=")
        if not (equals and name and metric):
            raise click.BadParameter(f"{value!r} is not OUTPUT=METRIC (e.g. box=mae)", param=param)
        pairs[name] = metric
    return pairs
