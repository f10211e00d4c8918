"""``edgesmith convert-and-deploy``: Keras model -> verified .tflite -> benchmarked on each target -> HTML report."""

from __future__ import annotations

import json
import sys

import click

from edgesmith.commands.data_options import preprocessing_options
from edgesmith.commands.deploy import format_results, report, run_settings, target_options
from edgesmith.commands.progress import Progress, print_report, quiet_option
from edgesmith.commands.quiet import quiet_console


@click.command("convert-and-deploy")
@click.argument("model", type=click.Path())
@click.option("--recipe", default="int8-ptq", show_default=True, metavar="NAME|FILE.toml|FILE.tflite",
              help="Compression recipe: a built-in name, a TOML file, or a .tflite edgesmith wrote "
                   "(its recorded recipe).")
@click.option("--data", "data_spec", required=True, metavar="SPEC",
              help="builtin:digits|mnist|..., an image folder, or an .npz file (used to calibrate and verify).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output: model.tflite, report.json/.md, logs/, report.html.")
@target_options
@preprocessing_options
@quiet_option
def command(model, recipe, data_spec, out_dir, as_json, preprocess, quiet, **settings):
    """Convert MODEL with --recipe, verify the .tflite on --data, deploy it to each
    --target, benchmark it there, copy the logs back and write OUT/report.html.

    \b
    edgesmith convert-and-deploy digits.keras --data builtin:digits \\
        --target ssh://pi@raspberrypi --profile rpi5 --out out/
    """
    from edgesmith.deploy import convert_and_deploy

    options, ssh = run_settings(settings, settings["targets"])
    with quiet_console() as console:
        shown = not (as_json or quiet)
        convert_progress = Progress(enabled=shown, stream=console)
        try:
            result = convert_and_deploy(model, recipe, data_spec, settings["targets"], out_dir, options=options,
                                        ssh_options=ssh, convert_progress=convert_progress, preprocess=preprocess,
                                        progress_for=lambda url: Progress(enabled=shown, stream=console))
        finally:
            convert_progress.close()
    if as_json:
        click.echo(json.dumps({key: value for key, value in result.items() if key != "first_error"}, indent=2, default=str))
        if result["first_error"] is not None:
            sys.exit(result["first_error"].exit_code)
        return
    print_report(result["convert"])
    summary = f"report: {result['report_html']} (total {result['timings_s']['total']:.1f} s)"
    report(result["deploys"], result["first_error"], False, lambda results: f"{format_results(results)}\n{summary}")
