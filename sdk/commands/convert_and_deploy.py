"""``edgesmith convert-and-deploy``: Keras model -> verified .tflite -> benchmarked on each target -> HTML report."""

from __future__ import annotations

import json
import sys

import click

from edgesmith.commands.data_options import check_inputs, preprocessing_options
from edgesmith.commands.deploy import format_results, report, run_settings, target_options
from edgesmith.commands.mcu import format_report
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
    An mcu:PROFILE target (a microcontroller profile, e.g. mcu:stm32f746) gets the
    firmware bundle instead: OUT/firmware-PROFILE/ and OUT/mcu-PROFILE.json (see
    `edgesmith mcu`; kernels compressed with TFLite Micro's lookup tables when that
    saves flash).

    \b
    edgesmith convert-and-deploy digits.keras --data builtin:digits \\
        --target ssh://pi@raspberrypi --profile rpi5 --out out/
    edgesmith convert-and-deploy digits.keras --data builtin:digits \\
        --recipe mcu-smallest-flash --target mcu:stm32f746 --out out/
    """
    from edgesmith.deploy import convert_and_deploy
    from edgesmith.deploy.urls import split_targets

    _, devices = split_targets(settings["targets"])  # a bad mcu profile fails here, before the conversion
    check_inputs(model, data_spec)
    options, ssh = run_settings(settings, devices)
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
        shown_result = {**result, "convert": result["convert"].to_dict()}
        click.echo(json.dumps({key: value for key, value in shown_result.items() if key != "first_error"}, indent=2,
                              default=str))
        if result["first_error"] is not None:
            sys.exit(result["first_error"].exit_code)
        _exit_if_no_fit(result.get("mcu", []))
        return
    print_report(result["convert"])
    summary = f"report: {result['report_html']} (total {result['timings_s']['total']:.1f} s)"
    for done in result.get("mcu", []):
        click.echo(f"\n{format_report(done)}")
    if devices:
        report(result["deploys"], result["first_error"], False, lambda results: f"{format_results(results)}\n{summary}")
    else:
        click.echo(summary)
    _exit_if_no_fit(result.get("mcu", []))


def _exit_if_no_fit(reports: list) -> None:
    from edgesmith.runtime.errors import RunFailedError

    missed = [row["profile"] for done in reports for row in done["profiles"] if not row["fits"]]
    if missed:
        raise RunFailedError(f"the model does not fit {', '.join(missed)} (see the mcu report)")
