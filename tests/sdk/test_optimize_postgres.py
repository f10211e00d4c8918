"""Scale-out on a real database: `edgesmith optimize` worker processes share one study in PostgreSQL.

The server is a throwaway one (tests/sdk/postgres.py). Workers search precisions only (``--passes none``)
with short benchmarks, so a trial is a conversion, a verification and a benchmark: no training.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import edgesmith.optimize.search  # noqa: F401 (TensorFlow is imported once, before the timed calls)
from edgesmith.cli import main
from tests.sdk.postgres import free_port, postgres  # noqa: F401 (the fixture)
from tests.sdk.test_optimize_models import REPO, digits, saved, tiny_model

WORKER = ["--data", "builtin:digits", "--passes", "none", "--runs", "5", "--warmup", "1", "--json"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return saved(tiny_model(digits(), epochs=2), tmp_path_factory.mktemp("model"))


def worker(model, out, url, study, trials, *extra) -> subprocess.Popen:
    argv = [sys.executable, "-m", "edgesmith", "optimize", str(model), *WORKER, "--out", str(out), "--storage", url,
            "--study", study, "--trials", str(trials), *extra]
    return subprocess.Popen(argv, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen, timeout: float = 240) -> dict:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-2000:]
    return json.loads(out)


def trials_in_database(postgres, database: str, study: str) -> list:
    """(number, state, worker) of every trial of ``study``, read with psql, not through Optuna."""
    rows = postgres.sql(
        "SELECT t.number, t.state, COALESCE(a.value_json, 'null') FROM trials t JOIN studies s USING (study_id) "
        "LEFT JOIN trial_user_attributes a ON a.trial_id = t.trial_id AND a.key = 'worker' "
        f"WHERE s.study_name = '{study}' ORDER BY t.number", database, check=False)
    if rows is None:  # no worker has created Optuna's tables yet
        return []
    return [(int(n), state, json.loads(who)) for n, state, who in (line.split("|") for line in rows.splitlines())]


@pytest.mark.slow  # trains the model the workers search
def test_three_workers_share_one_postgres_study(postgres, model_path, tmp_path):
    url = postgres.database("three_workers")
    workers = [worker(model_path, tmp_path / f"w{i}", url, "shared", 5) for i in range(3)]
    results = [finished(w) for w in workers]

    rows = trials_in_database(postgres, "three_workers", "shared")
    done = [r for r in rows if r[1] in ("COMPLETE", "FAIL")]
    assert all(state == "COMPLETE" for _, state, _ in rows)
    assert {r["worker"]["id"] for r in results} == {who for _, _, who in done}  # every worker ran trials
    assert len(done) == sum(r["worker"]["trials"] for r in results)  # the database holds the sum
    assert 5 <= len(done) <= 5 + 2  # the shared total, overshot at most by the trials the others were running
    picks = {(r["pick"]["trial"], r["pick"]["sha256"]) for r in results}
    assert len(picks) == 1  # each worker waited for the others' last trials: one pick, whoever writes it
    assert len({(tmp_path / f"w{i}" / "model.tflite").read_bytes() for i in range(3)}) == 1
    assert all(r["trials"]["complete"] == len(done) for r in results)
    assert "s3cret" not in json.dumps(results)  # the password is not written to optimize.json


@pytest.mark.slow
def test_a_killed_worker_leaves_no_partial_candidate_its_trial_fails_and_a_rerun_resumes(postgres, model_path,
                                                                                          tmp_path):
    url, out = postgres.database("killed"), tmp_path / "out"
    # a long benchmark keeps files in the partial folder for seconds, not the milliseconds of --runs 5
    victim = worker(model_path, out, url, "killed", 3, "--heartbeat", "1", "--runs", "20000")
    deadline, running = time.monotonic() + 120, None
    while running is None and time.monotonic() < deadline:  # wait until it is inside a trial, building files
        assert victim.poll() is None, victim.stderr.read()[-2000:]
        victim.send_signal(signal.SIGSTOP)  # frozen while we look: it advances only during the sleep below,
        ours = [r for r in trials_in_database(postgres, "killed", "killed")  # however slow the look is
                if r[1] == "RUNNING" and r[2] == f"{socket.gethostname()}:{victim.pid}"]
        if ours and list((out / "candidates").glob(f".trial-{ours[-1][0]:04d}.*.partial/*")):
            running = ours[-1][0]
        else:
            victim.send_signal(signal.SIGCONT)
            time.sleep(0.05)
    assert running is not None, "the worker never got inside a trial"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)

    # what it left: complete candidates, and the killed one only under a hidden .partial name
    complete = {int(p.name[len("trial-"):]) for p in (out / "candidates").glob("trial-*")}
    assert running not in complete
    for number in complete:
        report = json.loads((out / "candidates" / f"trial-{number:04d}" / "report.json").read_text())
        assert report["trial"] == number and (out / "candidates" / f"trial-{number:04d}" / "model.tflite").is_file()
    assert list((out / "candidates").glob(f".trial-{running:04d}.*.partial"))

    time.sleep(2.5)  # twice the heartbeat: the killed trial is now stale
    rerun = finished(worker(model_path, out, url, "killed", 3, "--heartbeat", "1"))
    rows = {number: state for number, state, _ in trials_in_database(postgres, "killed", "killed")}
    assert rows[running] == "FAIL"  # marked failed, not lost...
    assert any(f["trial"] == running and "stopped mid-trial" in f["error"] for f in rerun["trials"]["failures"])
    assert rerun["worker"]["trials"] == 3 - len(complete)  # the rerun ran what was missing, the retry in its place
    assert sum(state == "COMPLETE" for state in rows.values()) == 3
    retry_of = postgres.sql("SELECT a.value_json FROM trial_system_attributes a JOIN trials t USING (trial_id) "
                            f"WHERE t.number = {running + 1} AND a.key = 'failed_trial'", "killed")
    assert retry_of == str(running) and rows[running + 1] == "COMPLETE"  # its recipe ran again, first
    assert not list((out / "candidates").glob(".trial-*.partial"))  # the rerun removed the dead worker's folder
    assert rerun["met"] and (out / "model.tflite").is_file()


# -- bad storage: one line, exit 2, bounded time (no model is loaded before the storage answers) -------------


def run(argv, capsys) -> tuple:
    started = time.monotonic()
    try:
        main(argv)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err, time.monotonic() - started


def _optimize(url, tmp_path) -> list:
    (tmp_path / "never-loaded.keras").write_bytes(b"")  # found, but never read: the storage fails first
    return ["optimize", str(tmp_path / "never-loaded.keras"), "--data", "builtin:digits", "--out", str(tmp_path / "o"),
            "--storage", url]


@pytest.mark.parametrize("url, says", [
    ("postgresql//127.0.0.1/db", "give an Optuna storage URL"),
    ("nosuchdb://host/db", "SQLAlchemy knows no database 'nosuchdb'"),
    ("postgresql://edgesmith:x@127.0.0.1:{free}/db", "Connection refused"),
])
def test_bad_or_unreachable_storage_is_one_line_and_exit_2(url, says, tmp_path, capsys):
    code, err, seconds = run(_optimize(url.format(free=free_port()), tmp_path), capsys)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert seconds < 10


@pytest.mark.slow  # starts the server
def test_wrong_password_and_missing_database_are_one_line_and_exit_2(postgres, tmp_path, capsys):
    code, err, _ = run(_optimize(postgres.url("postgres", password="wrong"), tmp_path), capsys)
    assert code == 2 and "password authentication failed" in err and len(err.strip().splitlines()) == 1, err
    assert "wrong" not in err  # the password is never printed
    code, err, _ = run(_optimize(postgres.url("no_such_db"), tmp_path), capsys)
    assert code == 2 and 'database "no_such_db" does not exist' in err, err


def test_a_server_that_never_answers_times_out(tmp_path, capsys):
    with socket.socket() as silent:  # accepts TCP connections (the kernel does), never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"postgresql://edgesmith:x@127.0.0.1:{silent.getsockname()[1]}/db?connect_timeout=2"
        code, err, seconds = run(_optimize(url, tmp_path), capsys)
    assert code == 2 and "timeout" in err and len(err.strip().splitlines()) == 1, err
    assert seconds < 8
