"""``edgesmith report``: one self-contained HTML page (inline plots) from logs and convert reports."""

from __future__ import annotations

import io
import json

import click


@click.command("report")
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", default="report.html", show_default=True, type=click.Path(dir_okay=False),
              help="The HTML file to write.")
@click.option("--profile", default=None, help="Device profile for '% of peak' (default: the one each log names).")
@click.option("--json", "as_json", is_flag=True, help="Print what the report contains as JSON.")
def command(sources, output, profile, as_json):
    """Write an HTML report from LOGS_OR_DIRS: JSONL benchmark logs (bench, the
    Raspberry Pi example, the Android app) and the report.json files of convert
    and of optimize's candidates (an optimize --out folder is read whole)."""
    from edgesmith.report import collect, write_report

    stderr = click.get_text_stream("stderr")
    with click.progressbar(length=2, label="reading logs, drawing plots", file=stderr if stderr.isatty() else io.StringIO()) as bar:
        collection = collect(sources)
        bar.update(1)
        path = write_report(collection, output, profile=profile)
        bar.update(1)
    if as_json:
        click.echo(json.dumps({
            "output": str(path),
            "variants": [{"label": v.label, "log": v.source, "p50_ms": v.summary["latency_ms"]["p50"],
                          "accuracy": v.accuracy, "mj_per_inference": v.energy_mj} for v in collection.variants],
            "conversions": [p for p, _ in collection.conversions],
            "trials": [p for p, _ in collection.trials],
            "skipped": collection.skipped,
        }, indent=2))
    else:
        click.echo(f"wrote {path} ({len(collection.variants)} benchmark session(s), "
                   f"{len(collection.conversions)} conversion report(s), {len(collection.trials)} search candidate(s))")
