"""The accuracy drop as the reports show it: samples, 95 % interval and verdict beside the drop, in the CLI summary,
report.md and the HTML report; sizes raw bytes first, gzip second."""

from __future__ import annotations

import html

from edgesmith.converters.verify import check_drop, drop_interval
from edgesmith.report import Collection
from edgesmith.report.html import render
from edgesmith.report.text import markdown_report, stage_table, summary_lines
from edgesmith.runtime.report_schema import ConversionReport, Stage, Verification, read_report


def report_for(n: int, lost: int, gained: int, budget: float) -> ConversionReport:
    """A conversion whose .tflite lost ``lost`` and gained ``gained`` of ``n`` samples against a ``budget``."""
    checked = Verification(samples=n, tflite_accuracy=0.9, keras_accuracy=0.9 + (lost - gained) / n,
                           accuracy_drop_pt=round(100 * (lost - gained) / n, 4), lost=lost, gained=gained,
                           drop_ci95_pt=list(drop_interval(lost, gained, n)), paired_with="source")
    check_drop(checked, budget, "out/model.tflite")  # raises on a miss: these reports hold or are unresolved
    stages = [Stage("source", 58000, 58000, tflite_bytes=232000, weights_bytes=230000, gzip_bytes=214000),
              Stage("int8-ptq", 58000, 58000, tflite_bytes=62000, weights_bytes=58500, gzip_bytes=52000)]
    return ConversionReport(recipe={"name": "int8-ptq", "max_accuracy_drop": budget}, verification=checked,
                            source_accuracy=checked.keras_accuracy, tflite_path="out/model.tflite", stages=stages,
                            tflite_bytes=63000, float_tflite_bytes=232000, float_tflite_gzip_bytes=214000)


def test_an_unresolved_drop_shows_its_interval_samples_and_what_would_resolve_it():
    report = report_for(40, 3, 0, 2.0)
    wanted = (f"accuracy drop 7.50 pt (95 % interval -1.9..16.2 pt, 3 of 40 samples lost, 0 gained) cannot be "
              f"resolved against the 2.0 pt budget on 40 samples; about {report.verification.samples_needed} would")
    assert wanted in summary_lines(report)
    assert f"- {wanted}\n" in markdown_report(report)
    page = render(Collection(variants=[], conversions=[("out/report.json", report)], skipped=[]), None, {})
    assert html.escape(wanted) in page


def test_a_drop_within_budget_says_so_with_its_interval():
    lines = summary_lines(report_for(300, 1, 1, 1.0))
    # by hand: 1.5 / 302 in each discordant cell, half-width 1.96 * sqrt(3 / 302 / 302) = 1.12 pt
    assert ("accuracy drop 0.00 pt (95 % interval -1.1..1.1 pt, 1 of 300 samples lost, 1 gained): within the "
            "1.0 pt budget") in lines


def test_a_report_written_before_the_verdict_shows_its_drop_without_an_interval():
    old = report_for(300, 1, 1, 1.0).to_dict()
    for name in ("paired_with", "lost", "gained", "drop_ci95_pt", "verdict", "samples_needed"):
        del old["verification"][name]
    old["verification"]["accuracy_drop_pt"] = 0.5
    line = [line for line in summary_lines(read_report(old)) if line.startswith("accuracy drop")]
    assert line == ["accuracy drop 0.50 pt (on 300 samples; no interval: not paired with its reference): within the "
                    "1.0 pt budget"]


def test_sizes_lead_with_raw_bytes_and_keep_gzip_second():
    report = report_for(300, 1, 1, 1.0)
    assert list(stage_table(report)[0])[5:8] == ["size", "weights", "gzip"]
    headline = summary_lines(report)[0]
    assert headline.index("as stored") < headline.index("graph 60.5 KiB") < headline.index("gzip 50.8 KiB")
