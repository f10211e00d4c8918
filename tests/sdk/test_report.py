"""``edgesmith report``: one self-contained HTML page from real benchmark logs.

The bench logs are real (LiteRT runs of third-party models). The Android
session is written with the log writer in the app's format (tool
``edgesmith-android``, meter ``android-battery``) because no phone is
attached; the report.json has the fields ``edgesmith convert`` writes.
"""

import base64
import io
import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from edgesmith.cli import main
from edgesmith.report import build_report, collect, percent_of_peak
from edgesmith.runtime.report_schema import TrialReport, read_report
from edgesmith.runtime.bench import benchmark
from edgesmith.runtime.errors import InputError
from edgesmith.runtime.logs import LogWriter
from edgesmith.runtime.metadata import write_metadata
from edgesmith.profiles import load_profile
from tests.assets import real_tflite


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("logs")
    tagged = folder / "face-int8ish.tflite"
    shutil.copy(real_tflite("face_detection_short_range"), tagged)
    write_metadata(tagged, {"metrics": {"tflite_accuracy": 0.93}, "recipe": {"name": "fp16"}})
    benchmark(tagged, runs=30, warmup=2, energy="estimate", profile=load_profile("rpi4"), log_path=folder / "pi.jsonl",
              tool="edgesmith-pi-demo")
    result = benchmark(real_tflite("okay_nabu"), runs=30, warmup=2, energy="none", log_path=folder / "host.jsonl")
    _android_log(folder / "phone" / "android.jsonl", result)
    _killed_log(folder / "killed.jsonl", result)
    (folder / "report.json").write_text(json.dumps(_convert_report()))
    return folder


def _android_log(path, like):
    header = {**like["header"], "tool": "edgesmith-android", "device": {"hostname": "pixel", "system": "Android",
              "machine": "aarch64", "cpu": "Tensor G2", "cores": 8, "profile": "arm64-phone"},
              "runtime": {"backend": "litert-android", "threads": 4, "delegate": "xnnpack"}}
    energy = {"available": True, "meter": "android-battery", "estimated": False, "mj_per_inference": 0.8,
              "avg_power_w": 1.9, "joules": 0.02, "seconds": 0.011, "samples": 12}
    runs = [0.40, 0.42, 0.41, 0.55, 0.39]
    latency = {"min": min(runs), "mean": float(np.mean(runs)), "max": max(runs), "std": float(np.std(runs)),
               **{f"p{q}": float(np.percentile(runs, q)) for q in (50, 90, 99)}}  # the summary agrees with the runs
    with LogWriter(path) as log:
        log.write({k: v for k, v in header.items() if k != "schema"})
        for i, ms in enumerate(runs):
            log.write({"type": "run", "i": i, "phase": "steady", "t": 1.7e9 + i, "pre_ms": 0.01, "invoke_ms": ms, "post_ms": 0.01})
        ips = 1000 / latency["mean"]
        speed = {"throughput_ips": ips, "gmacs_per_s": like["summary"]["macs"] * ips / 1e9}
        log.write({k: v for k, v in {**like["summary"], "runs": 5, "latency_ms": latency, **speed,
                                     "energy": energy}.items() if k != "schema"})


def _killed_log(path, like):
    with LogWriter(path) as log:
        log.write({k: v for k, v in like["header"].items() if k != "schema"})
        log.write({"type": "run", "i": 0, "phase": "steady", "t": 1.7e9, "pre_ms": 0.0, "invoke_ms": 1.0, "post_ms": 0.0})


def _convert_report():
    stage = {"params": 1000, "nonzero_params": 500, "macs": 20000, "accuracy": 0.95, "unique_weights": 16,
             "details": {}, "tflite_bytes": 6000, "gzip_bytes": 3000}
    return {"recipe": {"name": "prune50-int8"}, "source_accuracy": 0.95, "keras_accuracy": 0.95, "tflite_accuracy": 0.94,
            "top1_agreement": 0.99, "accuracy_drop_pt": 1.0, "tflite_path": "out/model.tflite", "tflite_bytes": 2500,
            "tflite_gzip_bytes": 1800, "float_tflite_bytes": 6000, "float_tflite_gzip_bytes": 5400,
            "stages": [{**stage, "name": "source"}, {**stage, "name": "prune"}, {**stage, "name": "int8-ptq"}]}


def _images(page: str) -> list:
    return [Image.open(io.BytesIO(base64.b64decode(data))) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_one_self_contained_page_with_plots_and_tables(logs, tmp_path):
    page = build_report([logs], tmp_path / "report.html").read_text()
    images = _images(page)
    assert len(images) == 2 and all(im.size[0] > 400 for im in images)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from elsewhere
    for label in ("fp16 @ rpi4", "okay_nabu @", "@ arm64-phone x4"):
        assert label in page
    assert "edgesmith-android" in page and "edgesmith-pi-demo" in page
    assert "prune50-int8" not in page or "Conversion stages" in page
    assert page.count("<tr>") >= 3 + 1 + 3  # variants, devices, stages
    assert "a session without a summary" in page


def test_accuracy_energy_and_percent_of_peak(logs):
    variants = {v.header["tool"]: v for v in collect([logs]).variants}
    pi = variants["edgesmith-pi-demo"]
    assert pi.accuracy == pytest.approx(0.93) and pi.energy_mj > 0
    assert variants["edgesmith-android"].energy_mj == 0.8
    expected = 100 * pi.summary["gmacs_per_s"] / 96.0
    assert percent_of_peak(pi.summary, load_profile("rpi4")) == pytest.approx(expected)
    assert f"{expected:.1f}%" in build_report([logs / "pi.jsonl"], logs / "pi.html").read_text()


def test_cli_writes_the_report_and_lists_it_as_json(logs, tmp_path, capsys):
    output = tmp_path / "r.html"
    try:
        main(["report", str(logs / "pi.jsonl"), str(logs / "phone"), "-o", str(output), "--profile", "rpi5", "--json"])
    except SystemExit as done:
        assert done.code in (None, 0)
    listed = json.loads(capsys.readouterr().out)
    assert len(listed["variants"]) == 2 and output.stat().st_size > 10_000


def test_a_log_from_another_tool_is_refused(logs, tmp_path, capsys):
    foreign = tmp_path / "other.jsonl"
    foreign.write_text('{"step": 1, "loss": 0.3}\n{"step": 2, "loss": 0.2}\n')
    with pytest.raises(InputError, match="not an edgesmith log"):
        collect([foreign])
    with pytest.raises(SystemExit) as done:
        main(["report", str(foreign), "-o", str(tmp_path / "x.html")])
    assert done.value.code == 2 and not (tmp_path / "x.html").exists()
    assert capsys.readouterr().err.startswith("error: ")


def test_nothing_to_report_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no edgesmith logs"):
        collect([tmp_path])


def test_conversion_tables_lead_with_raw_bytes_and_keep_gzip_second():
    from edgesmith.report import Collection
    from edgesmith.report.html import render
    from edgesmith.report.text import stage_table, summary_lines

    report = read_report(_convert_report())  # a report.json written before the schema (and weights_bytes) renders
    assert list(stage_table(report)[0])[5:8] == ["size", "weights", "gzip"]
    report.stages[-1].tflite_bytes, report.stages[-1].weights_bytes, report.stages[-1].gzip_bytes = 2000, 1500, 1200
    headline = summary_lines(report)[0]
    assert headline.index("weights 1.5 KiB") < headline.index("3.0x smaller than float32") < headline.index("gzip 1.2 KiB")
    assert "4.5x smaller than float32 (5.3 KiB gzip)" in headline
    page = render(Collection(variants=[], conversions=[("out/report.json", report)], skipped=[]), None, {})
    assert page.index("<th>size</th>") < page.index("<th>weights</th>") < page.index("<th>gzip</th>")


def test_an_optimize_folder_reports_its_candidates_old_and_new(tmp_path, capsys):
    """`edgesmith report` on an `edgesmith optimize` --out folder: each candidate's report.json is a typed trial
    (this one), or the flat row written before the schema (the other); neither is refused."""
    trial = TrialReport(trial=0, path="out/candidates/trial-0000/model.tflite", sha256="ab", tflite_bytes=3000,
                        graph_bytes=2800, weights_bytes=2000, gzip_bytes=2100, accuracy=0.95, accuracy_drop_pt=0.4,
                        top1_agreement=0.99, macs=20000, passes=[], precisions={"conv": "int8"},
                        measured={"latency_ms": 0.0123, "energy_mj": None})
    for number, content in ((0, trial.to_dict()), (1, {**trial.row(), "trial": 1})):
        folder = tmp_path / "search" / "candidates" / f"trial-{number:04d}"
        folder.mkdir(parents=True)
        (folder / "report.json").write_text(json.dumps(content))
    trials = collect([tmp_path / "search"]).trials
    assert [(t.trial, t.measured["latency_ms"]) for _, t in trials] == [(0, 0.0123), (1, 0.0123)]
    assert read_report(json.loads(json.dumps(trial.to_dict()))) == trial
    try:
        main(["report", str(tmp_path / "search"), "-o", str(tmp_path / "r.html"), "--json"])
    except SystemExit as done:
        assert done.code in (None, 0)
    assert len(json.loads(capsys.readouterr().out)["trials"]) == 2
    assert "<h2>Search candidates</h2>" in (tmp_path / "r.html").read_text()
