"""``edgesmith debug``: where a quantized .tflite loses precision, layer by layer, against its float Keras model."""

from __future__ import annotations

from pathlib import Path

import click

from edgesmith.commands.data_options import check_inputs, preprocessing_options
from edgesmith.commands.progress import show_result
from edgesmith.commands.quiet import quiet_console


@click.command("debug")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("tflite", type=click.Path(dir_okay=False))
@click.option("--data", "data_spec", required=True, metavar="SPEC",
              help="builtin:digits|mnist|..., an image folder (labels not needed), or an .npz file.")
@click.option("--samples", default=256, show_default=True, type=click.IntRange(min=1),
              help="How many samples (of the evaluation split) both models run.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Write a bar chart of the SNR of each layer to this PNG file.")
@click.option("--json", "as_json", is_flag=True, help="Print every figure as JSON.")
@preprocessing_options
def command(model, tflite, data_spec, samples, plot_path, as_json, preprocess):
    """Compare the quantized TFLITE with the float Keras MODEL it was converted from, layer
    by layer, on real data: SNR, cosine, largest error, the quantized range against the float
    range seen, the layers ranked by the error they add, and what would help each one.
    Without --preprocess/--mean/--std the data is fed as the .tflite's metadata records."""
    check_inputs(model, data_spec, tflite)
    with quiet_console():
        report = _debug(model, tflite, data_spec, samples, preprocess)
    from edgesmith.converters.debug import format_debug
    from edgesmith.report.plots import layer_snr

    show_result(report, as_json, format_debug, plot_path, layer_snr)


def _debug(model, tflite, data_spec, samples, preprocess) -> dict:
    from edgesmith.converters.debug import debug_quantization
    from edgesmith.converters.load import load_model, source_sha256
    from edgesmith.data import check_shapes
    from edgesmith.pipeline import dataset_for
    from edgesmith.preprocessing import recorded_preprocess
    from edgesmith.runtime.metadata import read_metadata
    from edgesmith.runtime.tflite_file import check_tflite_file

    check_tflite_file(Path(tflite))
    loaded = load_model(model)
    data = dataset_for(data_spec, loaded, preprocess or recorded_preprocess(read_metadata(tflite)))
    check_shapes(tuple(loaded.inputs[0].shape[1:]), data.sample_shape, data.source)
    return debug_quantization(loaded, tflite, data, samples=samples, source_sha256=source_sha256(model, loaded))
