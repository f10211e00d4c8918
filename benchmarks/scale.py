"""Scale-out benchmark: one `edgesmith optimize` study in PostgreSQL, searched by 1, 2 and 4 worker processes.

    .venv/bin/python benchmarks/scale.py [--workers 1,2,4] [--wall 300] [--storage postgresql://...] [--out bench-scale]

For each worker count, a fresh study (``--study scale-N``) is searched by N ``edgesmith optimize``
processes started together with the same command, on this machine, for ``--wall`` seconds (start-up
included), then interrupted (Ctrl-C: the study is kept). Reported per worker count: trials finished within
the wall time, trials per hour, and the best pick at that time (smallest raw bytes within the accuracy
constraint). Then the storage overhead of one trial: the same sampler, search space and trial attributes
as the search, with an objective that returns at once, on PostgreSQL (with the heartbeat) and on a journal
file; milliseconds per trial.

Without ``--storage`` a throwaway PostgreSQL server is started (tests/sdk/postgres.py; needs Debian's
postgresql package). The model is the tests' tiny digits CNN unless ``--model`` names one; the data is
``builtin:digits``. Workers search precisions and pruning (``--passes prune``) with short benchmarks.
On a machine with C cores, more than C workers share the cores: the figures say what a study gains from
workers that have their own cores only when N <= C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.sdk.postgres import running_postgres, server_binaries  # noqa: E402

WORKER = ["--data", "builtin:digits", "--passes", "prune", "--runs", "10", "--warmup", "2", "--quiet",
          "--max-accuracy-drop", "1.0", "--heartbeat", "10"]


def run_workers(model: Path, url: str, study: str, workers: int, wall: float, out: Path) -> dict:
    """Start ``workers`` processes on ``study``; interrupt them after ``wall`` seconds; what the study holds then."""
    started = time.time()
    processes = [subprocess.Popen([sys.executable, "-m", "edgesmith", "optimize", str(model), *WORKER,
                                   "--out", str(out / f"{study}-w{i}"), "--storage", url, "--study", study,
                                   "--trials", "100000"],
                                  cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                  for i in range(workers)]
    time.sleep(wall)
    for process in processes:
        process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
    return study_at(url, study, started + wall)


def study_at(url: str, study: str, deadline: float) -> dict:
    import optuna
    from optuna.trial import TrialState

    from edgesmith.optimize.storage import optuna_storage

    try:
        trials = optuna.load_study(study_name=study, storage=optuna_storage(url)).get_trials(deepcopy=False)
    except KeyError:  # no worker got as far as the study within the wall time (start-up takes TensorFlow's import)
        trials = []
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.datetime_complete.timestamp() <= deadline]
    rows = [t.user_attrs["row"] for t in done if "row" in t.user_attrs]
    feasible = [r for r in rows if r["accuracy_drop_pt"] <= 1.0]
    best = min(feasible, key=lambda r: (r["graph_bytes"], r["accuracy_drop_pt"]), default=None)
    return {"complete": len(done), "failed": sum(t.state == TrialState.FAIL for t in trials),
            "workers_seen": len({t.user_attrs.get("worker") for t in done}),
            "best_graph_bytes": best and best["graph_bytes"], "best_drop_pt": best and best["accuracy_drop_pt"],
            "best_trial": best and best["trial"]}


def storage_overhead(model_path: Path, url: str, journal: Path, trials: int) -> dict:
    """Milliseconds per trial spent by Optuna and the storage alone (sampling, attributes, state changes)."""
    from edgesmith.converters.load import load_model
    from edgesmith.optimize.search import open_study
    from edgesmith.optimize.space import SearchSpace
    from edgesmith.optimize.storage import optuna_storage

    model = load_model(model_path)
    space = SearchSpace.for_model(model, ("prune",), 1, ("int8", "int16x8", "float16", "float32"))
    row = {"trial": 0, "graph_bytes": 1000, "gzip_bytes": 900, "latency_ms": 0.1, "accuracy_drop_pt": 0.5, "path": "x" * 80,
           "sha256": "0" * 64, "passes": [], "precisions": {}, "log": "y" * 80}
    figures = {}
    for name, storage in (("postgresql", optuna_storage(url, heartbeat=10)), ("journal", optuna_storage(f"journal:{journal}"))):
        study = open_study(storage, f"overhead-{name}", 2, "tpe", 0, 1.0, trials)

        def objective(trial):
            recipe = space.suggest(trial)
            trial.set_user_attr("worker", "bench:0")
            trial.set_user_attr("recipe", recipe.as_dict())
            trial.set_user_attr("row", {**row, "trial": trial.number, "graph_bytes": 1000 + trial.number % 7})
            return [1000 + trial.number % 7, 0.5]

        started = time.perf_counter()
        study.optimize(objective, n_trials=trials)
        figures[name] = round(1000 * (time.perf_counter() - started) / trials, 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--wall", type=float, default=300, help="seconds each worker count searches (start-up included)")
    parser.add_argument("--storage", default=None, help="a PostgreSQL URL (default: start a throwaway server)")
    parser.add_argument("--model", type=Path, default=None, help=".keras model (default: the tests' tiny CNN)")
    parser.add_argument("--overhead-trials", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("bench-scale"))
    args = parser.parse_args()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        from tests.sdk.test_optimize_models import digits, saved, tiny_model

        model = saved(tiny_model(digits()), args.out)
    with contextlib.ExitStack() as stack:
        if args.storage:
            url = args.storage
        else:
            server = stack.enter_context(running_postgres(server_binaries()))
            url = server.database(f"scale_{os.getpid()}")
        results = {"cores": os.cpu_count(), "wall_s": args.wall, "runs": {}}
        for count in [int(n) for n in args.workers.split(",") if n.strip()]:  # --workers "": the overhead only
            found = run_workers(model, url, f"scale-{count}-{os.getpid()}", count, args.wall, args.out)
            found["trials_per_hour"] = round(3600 * found["complete"] / args.wall, 1)
            results["runs"][count] = found
            print(f"{count} worker(s): {found}", flush=True)
        results["storage_ms_per_trial"] = storage_overhead(model, url, args.out / "overhead.journal", args.overhead_trials)
        print(f"storage overhead, ms per trial: {results['storage_ms_per_trial']}", flush=True)
    (args.out / "scale.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
