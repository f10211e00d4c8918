"""The JSONL log: schema checks, flushing, and refusal of other tools' logs."""

import json

import pytest

from edgesmith.runtime import InputError
from edgesmith.runtime.logs import SCHEMA, LogWriter, read_log, validate_record

RUN = {"type": "run", "i": 0, "phase": "steady", "t": 1.0, "pre_ms": 0.1, "invoke_ms": 1.2, "post_ms": 0.05}


def test_each_line_is_on_disk_as_soon_as_it_is_written(tmp_path):
    path = tmp_path / "log.jsonl"
    writer = LogWriter(path)
    writer.write(RUN)
    assert json.loads(path.read_text())["schema"] == SCHEMA  # readable before close
    writer.close()


def test_validation_names_the_problem():
    assert validate_record({"schema": SCHEMA, **RUN}) == []
    assert validate_record({**RUN}) == [f"schema is None, expected {SCHEMA!r}"]
    assert "run.phase" in validate_record({"schema": SCHEMA, **RUN, "phase": "cold"})[0]
    assert "run.invoke_ms" in validate_record({"schema": SCHEMA, **RUN, "invoke_ms": -1})[0]
    summary = {"schema": SCHEMA, "type": "summary", "runs": 3, "latency_ms": {}, "energy": {"available": False}}
    problems = validate_record(summary)
    assert any("latency_ms.p50" in p for p in problems) and any("energy.reason" in p for p in problems)


def test_a_killed_run_loses_only_its_last_line(tmp_path):
    path = tmp_path / "log.jsonl"
    with LogWriter(path) as writer:
        writer.write(RUN)
    with open(path, "a") as handle:
        handle.write('{"schema": "edgesmith.log/1", "type": "ru')
    assert len(read_log(path)) == 1


def test_logs_from_other_tools_are_refused(tmp_path):
    other = tmp_path / "other.jsonl"
    other.write_text('{"model": "x.tflite", "avg_ms": 3.2}\n')
    with pytest.raises(InputError, match="not an edgesmith log record"):
        read_log(other)
    csv = tmp_path / "other.csv"
    csv.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(InputError, match="not JSON"):
        read_log(csv)
    with pytest.raises(InputError, match="no such log"):
        read_log(tmp_path / "missing.jsonl")
