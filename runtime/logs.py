"""The JSONL benchmark log: one header, one record per timed run, one summary.

Every line is a JSON object carrying ``"schema": "edgesmith.log/1"`` and a
``"type"`` of ``header``, ``run`` or ``summary``. Lines are flushed as they are
written, so killing a benchmark loses at most the line being written. The
Android app and the Raspberry Pi example write the same schema; see
``docs/log-schema.md`` for every field.

>>> with LogWriter("bench.jsonl") as log:
...     log.write({"type": "run", "i": 0, "phase": "steady", "t": 0.25, "pre_ms": 0.02, "invoke_ms": 0.41,
...                "post_ms": 0.01})
>>> [(record["schema"], record["invoke_ms"]) for record in read_log("bench.jsonl")]
[('edgesmith.log/1', 0.41)]
>>> validate_record({"schema": SCHEMA, "type": "run", "i": 0, "phase": "steady", "t": 0.25})
['run.pre_ms missing or of the wrong type', 'run.invoke_ms missing or of the wrong type', 'run.post_ms missing or of the wrong type']

:func:`edgesmith.runtime.bench.benchmark` writes a whole log: a header, a record per run and a summary.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from .errors import InputError

SCHEMA = "edgesmith.log/1"
RECORD_TYPES = ("header", "run", "summary")
PHASES = ("warmup", "steady")

_NUMBER = (int, float)
# Fields each record type must have, with the JSON types they take.
REQUIRED = {
    "header": {"time": str, "tool": str, "model": dict, "device": dict, "runtime": dict},
    "run": {"i": int, "phase": str, "t": _NUMBER, "pre_ms": _NUMBER, "invoke_ms": _NUMBER, "post_ms": _NUMBER},
    "summary": {"runs": int, "latency_ms": dict, "energy": dict},
}
LATENCY_STATS = ("min", "mean", "p50", "p90", "p99", "max", "std")


class LogWriter:
    """Append JSON records to a file, one per line, flushed at once."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        """Stamp the schema onto ``record`` and append it as one line."""
        line = json.dumps({"schema": SCHEMA, **record}, allow_nan=False, default=_jsonable)
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "LogWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _jsonable(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def utc_now() -> str:
    """The current time as ISO 8601 UTC with milliseconds, as logs record it."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def validate_record(record) -> list:
    """Return the problems with one record (empty when it follows the schema)."""
    if not isinstance(record, dict):
        return ["record is not a JSON object"]
    if record.get("schema") != SCHEMA:
        return [f"schema is {record.get('schema')!r}, expected {SCHEMA!r}"]
    kind = record.get("type")
    if kind not in RECORD_TYPES:
        return [f"type is {kind!r}, expected one of {', '.join(RECORD_TYPES)}"]
    problems = [f"{kind}.{name} missing or of the wrong type" for name, expected in REQUIRED[kind].items()
                if isinstance(record.get(name), bool) or not isinstance(record.get(name), expected)]  # missing: None
    if problems or kind == "header":
        return problems
    return _check_run(record) if kind == "run" else _check_summary(record)


def _check_run(record: dict) -> list:
    problems = []
    if record["phase"] not in PHASES:
        problems.append(f"run.phase is {record['phase']!r}, expected warmup or steady")
    for name in ("pre_ms", "invoke_ms", "post_ms"):
        if not (math.isfinite(record[name]) and record[name] >= 0):
            problems.append(f"run.{name} must be a finite number >= 0")
    return problems


def _check_summary(record: dict) -> list:
    problems = []
    latency = record["latency_ms"]
    for stat in LATENCY_STATS:
        if not isinstance(latency.get(stat), _NUMBER):
            problems.append(f"summary.latency_ms.{stat} missing")
    energy = record["energy"]
    if not isinstance(energy.get("available"), bool):
        problems.append("summary.energy.available must be true or false")
    elif energy["available"]:
        for name in ("meter", "mj_per_inference"):
            if energy.get(name) is None:
                problems.append(f"summary.energy.{name} missing while energy is available")
    elif not energy.get("reason"):
        problems.append("summary.energy.reason missing while energy is unavailable")
    return problems


def read_log(path) -> list:
    """Read and validate a log; raise :class:`InputError` naming the first bad line.

    A truncated last line (a killed run) is dropped rather than rejected.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such log file")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break  # the line being written when the run was killed
            raise InputError(f"{path}:{number}: not JSON; is this an edgesmith log?") from None
        problems = validate_record(record)
        if problems:
            raise InputError(f"{path}:{number}: not an edgesmith log record ({problems[0]})")
        records.append(record)
    if not records:
        raise InputError(f"{path}: empty log")
    return records
