"""Constraint-driven, multi-objective search of compression recipes with Optuna, on measured figures.

>>> from pathlib import Path
>>> from edgesmith.optimize import optimize
>>> result = optimize("digits.keras", "builtin:digits", "out/", max_accuracy_drop=1.0,
...                   objectives=("size", "latency"), trials=2)
>>> result["met"], result["trials"]
(True, {'complete': 2, 'failed': 0, 'failures': []})
>>> sorted(path.name for path in Path("out").iterdir())
['candidates', 'front', 'measurements.json', 'model.tflite', 'optimize.json', 'pareto.png', 'report.html',
 'study.journal']

Each trial samples a recipe from :class:`~edgesmith.optimize.space.SearchSpace`
(channel pruning ratios per group, sparsity, clusters, a precision per layer),
runs it through :func:`edgesmith.pipeline.run_recipe` as ``convert`` does (training
passes, per-layer mixed precision, a deployable .tflite verified by running it),
and benchmarks it (locally or on a deploy target; cached by model hash). The study
minimizes the chosen objectives plus the accuracy drop, under the constraint
``drop <= max_accuracy_drop``.

With ``target="mcu:PROFILE"`` (a microcontroller profile) each candidate is run in TFLite Micro
instead (:class:`~edgesmith.optimize.measure.McuMeasurer`): its arena must fit the profile's SRAM and its
flash bytes the profile's flash (with a 20 % margin, as ``edgesmith mcu`` checks), two more constraints
(see :func:`violations`); ``latency`` is then the MACs x cycles-per-MAC estimate, and layers take int8
unless ``precisions`` says otherwise:

>>> result = optimize("digits.keras", "builtin:digits", "out/", target="mcu:stm32f746", trials=1)
>>> all(row["arena_needed_bytes"] <= row["arena_limit_bytes"] for row in result["front"])
True

Outputs in ``out_dir``: ``candidates/trial-NNNN/`` (model.tflite, report.json,
bench log), ``front/`` (the feasible Pareto front: .tflite and bench log each),
``model.tflite`` (the pick: best first objective within the constraint),
``report.html`` and ``pareto.png``, ``optimize.json``, and the study itself
(``study.journal`` unless ``storage`` names another), so rerunning resumes.

Many workers (processes or machines) share one study through a database ``storage``
(``postgresql://...``; see :mod:`edgesmith.optimize.storage`): each runs trials until the
study holds ``trials`` finished ones, then waits for the others' running trials, so every
worker's summary, and its pick, covers the same trials. A candidate is built in a hidden
``candidates/.trial-NNNN.HOST-PID.partial/`` folder and renamed to ``trial-NNNN`` once verified
and measured: a worker killed mid-trial leaves no half-written candidate, and with a heartbeat
its trial is marked failed and its recipe queued again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import time
from pathlib import Path

from edgesmith.converters.checks import check_choice
from edgesmith.converters.errors import UnknownOptionError
from edgesmith.converters.load import source_sha256
from edgesmith.converters.mixed_precision import PRECISIONS
from edgesmith.deploy.target import BenchOptions
from edgesmith.deploy.urls import mcu_profile
from edgesmith.converters.verify import budget_used, record_verdict
from edgesmith.pipeline import Budget, Source, readable_source, run_recipe, source_outputs, source_stage
from edgesmith.recipes import Recipe
from edgesmith.runtime.errors import EdgesmithError, RunFailedError, first_line
from edgesmith.runtime.atomic_write import atomic_write_bytes, atomic_write_json
from edgesmith.runtime.report_schema import TrialReport

from .measure import McuMeasurer, Measurer, MeasurementError, copy_log, measurer_for
from .space import OBJECTIVES, SAMPLERS, SEARCHABLE_PASSES, SearchSpace
from .storage import HEARTBEAT_S, fail_stale_trials, has_heartbeat, optuna_storage, shown_storage, wait_for_running

log = logging.getLogger(__name__)

# what a layer may take on an mcu: target unless asked otherwise: the kernels TFLite Micro optimizes for
# microcontrollers (CMSIS-NN, ESP-NN) and its latency estimate's calibration are int8
MCU_PRECISIONS = ("int8",)


class ConstraintNotMetError(RunFailedError):
    """No candidate met the accuracy constraint; the result holds the best found and its miss."""


def optimize(model, data, out_dir, *, max_accuracy_drop: float = 1.0, objectives=("size",), target: str = "local",
             trials: int = 20, storage: str | None = None, study_name: str | None = None,
             passes=SEARCHABLE_PASSES, precisions=None, epochs: int = 1, sampler: str = "tpe", seed: int = 0,
             bench: BenchOptions | None = None, strategy=None, preprocess=None, metrics: dict | None = None,
             min_snr_db: float | None = None, progress=None, heartbeat: int | None = HEARTBEAT_S,
             stop_requested=None) -> dict:
    """Search compression recipes for ``model``; return the Pareto front and the pick (see the module docstring).

    Args:
        model: a ``keras.Model`` or a ``.keras``/``.h5`` file.
        data: a data spec (``builtin:digits``, a folder, an .npz) or a loaded Dataset (labeled).
        max_accuracy_drop: the constraint, in points below the source model's accuracy (a model verified output
            by output: the budget of its accuracy-like outputs; every output must hold its budget, and candidates
            are ranked by the share of it their worst output uses).
        objectives: any of ``size`` (raw bytes of the graph, as stored), ``gzip-size``, ``latency`` (measured p50 ms),
            ``energy`` (measured mJ per inference); the first one chooses the pick.
        target: where candidates are benchmarked: ``local``, ``ssh://...``, ``adb://...``, or ``mcu:PROFILE``
            (a microcontroller profile name or TOML file: measured in TFLite Micro, its SRAM and flash are
            constraints, latency is estimated, energy is not available).
        trials: total trials of the study (a resumed study runs only the missing ones).
        storage: an Optuna storage URL (``sqlite:///f.db``, ``postgresql://...``, ``mysql://...``)
            or ``journal:FILE``; default ``out_dir/study.journal``.
        study_name: default: derived from the model's hash, the objectives and the constraint.
        passes: training passes the search may apply (channel_prune, prune, cluster).
        precisions: precisions a layer may take (int8, int16x8, float16, float32); default: all of
            :data:`PRECISIONS`, :data:`MCU_PRECISIONS` for an ``mcu:`` target.
        epochs: fine-tuning epochs of each applied training pass.
        sampler: ``tpe`` (multi-objective TPE) or ``nsga2`` (NSGA-II).
        bench: how candidates are benchmarked (runs, warm-up, threads, energy meter, profile).
        strategy: a ``tf.distribute`` strategy the training passes run under (see docs/optimize.md).
        preprocess: how the model wants its pixels (a preset or ``{"mean", "std"}``; None: what the model
            says; see :mod:`edgesmith.preprocessing`).
        metrics: ``{output: "metric"}`` or ``{output: "metric:budget"}``, as :func:`edgesmith.convert` takes.
        min_snr_db: on unlabelled data, the lowest output SNR a candidate may have (default 20 dB).
        progress: optional ``progress(stage, done, total)`` callback (stage ``trial``).
        heartbeat: seconds between a running trial's heartbeats in a database ``storage`` (None: none); a
            trial silent for twice as long (its worker was killed) is marked failed and its recipe retried.
        stop_requested: optional callable, true once the caller was asked to stop (Ctrl-C): a trial that then
            fails stops the search with KeyboardInterrupt instead of counting as a failed recipe.
    """
    _check(objectives, sampler, trials, target)
    bench = bench or BenchOptions(energy="auto" if "energy" in objectives else "none")
    if "energy" in objectives and bench.energy == "none":
        raise UnknownOptionError("the energy objective needs an energy meter: pass --energy (e.g. auto, rapl, estimate)")
    out = Path(out_dir).resolve()
    measurer = measurer_for(target, out / "measurements.json", bench)  # a bad mcu: profile stops here
    out.mkdir(parents=True, exist_ok=True)
    url = storage or f"journal:{out / 'study.journal'}"
    backend = optuna_storage(url, heartbeat)  # a wrong URL or an unreachable server stops here, before any work
    loaded, data, reference = readable_source(model, data, preprocess, metrics)
    budget = Budget.for_data(max_accuracy_drop, data, min_snr_db)
    source = Source(loaded, source_sha256(model, loaded), source_stage(loaded, data, reference),
                    source_outputs(loaded, data))
    board = measurer.profile if isinstance(measurer, McuMeasurer) else None
    space = SearchSpace.for_model(loaded, passes, epochs, precisions or (MCU_PRECISIONS if board else PRECISIONS))
    measured = "+".join(OBJECTIVES[o] for o in objectives)  # the row keys: "size" changed from gzip to raw bytes
    limits = f"-mcu-{board['name']}" if board else ""  # other constraints: another study
    limits += f"-snr{budget.min_snr_db:g}" if budget.min_snr_db else ""
    limits += f"-{hashlib.sha256(repr(sorted(metrics.items())).encode()).hexdigest()[:8]}" if metrics else ""
    name = study_name or f"edgesmith-{source.sha256[:12]}-{measured}-drop{max_accuracy_drop:g}{limits}"
    study = open_study(backend, name, len(objectives), sampler, seed, max_accuracy_drop, trials, shown_storage(url))
    builder = CandidateBuilder(source, data, out, measurer, budget, strategy)
    builder.clean()
    started = time.perf_counter()
    try:
        if not study.trials:
            study.enqueue_trial(space.baseline(), skip_if_exists=True)  # two workers starting at once: one baseline
        ran = _run(study, space, builder, objectives, trials, progress, stop_requested or (lambda: False))
        wait_for_running(study, backend)  # the other workers' last trials: every worker then sums up the same
        result = summarize(study, out, objectives, max_accuracy_drop, reference)
    except _database_errors() as error:
        raise StorageLostError(f"lost the storage {shown_storage(url)}: {first_line(error)}; the study is "
                               "kept: rerun the same command to resume") from None
    result.update(wall_time_s=round(time.perf_counter() - started, 1), target=target,
                  study={"name": name, "storage": shown_storage(storage or str(out / "study.journal")),
                         "heartbeat_s": heartbeat if has_heartbeat(backend) else None},
                  worker={"id": worker_id(), "trials": ran})
    atomic_write_json(out / "optimize.json", result)
    return result


def _check(objectives, sampler, trials, target) -> None:
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown or not objectives or len(set(objectives)) != len(objectives):
        raise UnknownOptionError(f"objectives must be distinct names among {', '.join(OBJECTIVES)}; got {list(objectives)}")
    if "energy" in objectives and mcu_profile(target) is not None:
        raise UnknownOptionError(f"the energy objective cannot be measured on {target}: use size, gzip-size or latency "
                                 "(estimated)")
    check_choice("sampler", sampler, SAMPLERS)
    if trials < 1:
        raise UnknownOptionError(f"trials must be at least 1, got {trials}")


# -- the study ------------------------------------------------------------------------------


def open_study(storage, name: str, objectives: int, sampler: str, seed: int, max_accuracy_drop: float,
               trials: int, shown: str | None = None):
    """Create or load study ``name`` in ``storage`` (from :func:`optuna_storage`):
    ``objectives`` values plus the accuracy drop, all minimized, under :func:`violations`. ``shown``: the storage
    as messages name it."""
    import optuna

    optuna.logging.disable_default_handler()  # the library reports through logging, it does not print
    optuna.logging.enable_propagation()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # its failed-trial warnings carry tracebacks; ours do not

    def constraint(trial):
        return violations(trial.user_attrs["row"], max_accuracy_drop)

    if sampler == "nsga2":
        chosen = optuna.samplers.NSGAIISampler(seed=seed, constraints_func=constraint,
                                               population_size=max(4, min(50, trials // 3)))
    else:
        chosen = optuna.samplers.TPESampler(seed=seed, constraints_func=constraint, multivariate=True,
                                            n_startup_trials=max(2, min(10, trials // 3)))
    try:
        return optuna.create_study(storage=storage, study_name=name, sampler=chosen, load_if_exists=True,
                                   directions=["minimize"] * (objectives + 1))
    except ValueError as exc:  # a study of that name with other directions
        raise UnknownOptionError(f"study {name!r} in {shown} does not fit these objectives ({exc}); "
                                 "use another --study name or --out folder") from None


def violations(row: dict, max_accuracy_drop: float) -> list:
    """A candidate's constraint values, each met when <= 0 (Optuna's ``constraints_func`` convention): its accuracy
    drop over ``max_accuracy_drop``; on an ``mcu:`` target also the arena and the flash it needs (with the margin)
    over the profile's SRAM and flash, in bytes.

    >>> violations({"accuracy_drop_pt": 0.5}, 1.0)
    [-0.5]
    >>> violations({"accuracy_drop_pt": 0.5, "arena_needed_bytes": 9000, "arena_limit_bytes": 8192,
    ...             "flash_needed_bytes": 4000, "flash_limit_bytes": 65536}, 1.0)
    [-0.5, 808, -61536]
    """
    values = [fidelity_loss(row) - (max_accuracy_drop if row.get("budget_used") is None else 1.0)]
    if "arena_limit_bytes" in row:
        values += [row["arena_needed_bytes"] - row["arena_limit_bytes"],
                   row["flash_needed_bytes"] - row["flash_limit_bytes"]]
    return values


def memory_over(row: dict) -> float:
    """How far an ``mcu:`` candidate's arena or flash (with the margin) is over its limit, as a fraction of the
    limit (0: it fits, or no microcontroller).

    >>> memory_over({"arena_needed_bytes": 9216, "arena_limit_bytes": 8192,
    ...              "flash_needed_bytes": 4000, "flash_limit_bytes": 65536})
    0.125
    """
    if "arena_limit_bytes" not in row:
        return 0.0
    return max(0.0, row["arena_needed_bytes"] / row["arena_limit_bytes"] - 1,
               row["flash_needed_bytes"] / row["flash_limit_bytes"] - 1)


class StorageLostError(RunFailedError):
    """The study's database went away during the search; the study is kept."""


def _database_errors() -> tuple:
    try:
        import sqlalchemy
    except ImportError:  # journal storage only
        return ()
    return (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)


def worker_id() -> str:
    """This worker, as trials record it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _run(study, space, builder, objectives, trials, progress, stop_requested) -> int:
    """Run trials until the study holds ``trials`` counted ones; return how many this worker finished."""
    fail_stale_trials(study)  # a killed worker's trial fails and its retry is queued before counting what is missing
    remaining = trials - counted_trials(study)
    if remaining <= 0:
        return 0

    def objective(trial):
        recipe = space.suggest(trial)
        trial.set_user_attr("worker", worker_id())
        trial.set_user_attr("recipe", recipe.as_dict())
        try:
            row = builder.build(trial.number, recipe)
        except EdgesmithError as error:
            if stop_requested():  # Ctrl-C landed inside TensorFlow, which turned it into an error of its own
                raise KeyboardInterrupt from None
            trial.set_user_attr("error", str(error))
            log.warning("trial %d failed: %s", trial.number, error)
            raise
        trial.set_user_attr("row", row)
        return [_objective_value(row, o) for o in objectives] + [fidelity_loss(row)]

    done = [0]

    def report(study, trial):
        done[0] += 1
        if progress:
            progress("trial", done[0], remaining)
        if stop_requested():  # an interrupt TensorFlow swallowed whole
            raise KeyboardInterrupt
        if counted_trials(study) >= trials:
            study.stop()

    study.optimize(objective, n_trials=remaining, catch=(EdgesmithError,), callbacks=[report])
    return done[0]


def counted_trials(study) -> int:
    """The finished trials that count toward ``trials``: a trial failed because its worker was killed does not
    count once its recipe is queued again (its retry takes its place)."""
    from optuna.trial import TrialState

    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED))
    retried = {number for t in study.get_trials(deepcopy=False) for number in t.system_attrs.get("retry_history", ())}
    return sum(t.number not in retried for t in finished)


def _objective_value(row: dict, objective: str) -> float:
    value = row[OBJECTIVES[objective]]
    if value is None:
        raise MeasurementError(f"no {objective} figure for trial {row['trial']}: {row.get('energy_reason') or 'unknown'}")
    return float(value)


# -- one candidate ------------------------------------------------------------------------------


class CandidateBuilder:
    """Runs a sampled recipe through the pipeline core (training passes under ``strategy``) into a verified,
    measured .tflite in ``out/candidates/`` and its report row.

    A candidate is built in ``candidates/.trial-NNNN.HOST-PID.partial/`` and renamed to ``trial-NNNN/``
    when its report.json is written: a ``trial-NNNN`` folder is always complete."""

    def __init__(self, source: Source, data, out: Path, measurer: Measurer, budget: Budget, strategy=None):
        self.source, self.data, self.out, self.measurer, self.strategy = source, data, out, measurer, strategy
        self.budget = budget

    def clean(self) -> list:
        """Remove the partial candidates that workers of this host left when they were killed; return them."""
        host, removed = socket.gethostname(), []
        for folder in (self.out / "candidates").glob(".trial-*.partial"):
            owner = folder.name[:-len(".partial")].split(".", 2)[-1]  # HOST-PID
            name, _, pid = owner.rpartition("-")
            if name == host and pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        return removed

    def build(self, number: int, recipe: Recipe) -> dict:
        """Trial ``number``'s row: its .tflite's sizes, accuracy, MACs, what the measurer measured (latency and
        energy; arena and flash against their limits on an ``mcu:`` target), and the recipe."""
        final = self.out / "candidates" / f"trial-{number:04d}"
        folder = final.with_name(f".{final.name}.{socket.gethostname()}-{os.getpid()}.partial")
        shutil.rmtree(folder, ignore_errors=True)
        converted = run_recipe(self.source, recipe, self.data, folder, name=f"{self.source.model.name}-trial{number}",
                               keep_stages=False, strategy=self.strategy)
        report, graph = converted.report, converted.report.graph
        record_verdict(report.verification, *self.budget)  # each output's budget, for its share
        sha256 = hashlib.sha256(converted.tflite.content).hexdigest()
        measured = self.measurer.measure(report.tflite_path, sha256, folder)
        trial = TrialReport(
            trial=number, path=str(final / "model.tflite"), sha256=sha256, tflite_bytes=report.tflite_bytes,
            graph_bytes=graph.tflite_bytes, weights_bytes=graph.weights_bytes, gzip_bytes=graph.gzip_bytes,
            accuracy=report.verification.tflite_accuracy, accuracy_drop_pt=report.verification.accuracy_drop_pt,
            top1_agreement=report.verification.top1_agreement, macs=graph.macs,
            passes=[step.as_dict() for step in recipe.keras_passes], precisions=recipe.conversion.options["precisions"],
            budget_used=budget_used(report.verification, self.budget.min_snr_db),
            measured={k: v for k, v in measured.items() if k not in ("latency_mean_ms", "log")},
            log=measured["log"] and _kept_log(Path(measured["log"]), folder, final))
        atomic_write_json(folder / "report.json", trial.to_dict())
        row = trial.row()
        shutil.rmtree(final, ignore_errors=True)  # a stale folder of another study in this --out
        os.replace(folder, final)
        return row


def _kept_log(log: Path, folder: Path, final: Path) -> str:
    """Where a candidate's bench log is once it is complete; one measured before (cached) is copied into it."""
    if log.parent != folder:
        measured_before = _settled(log)
        if not measured_before.is_file():
            return str(measured_before)
        copy_log(measured_before, folder / log.name)
    return str(final / log.name)


def _settled(path: Path) -> Path:
    """Where ``path``, in a partial candidate folder, is once that candidate is complete (others: unchanged)."""
    parent = path.parent
    if parent.name.startswith(".trial-") and parent.name.endswith(".partial"):
        return parent.with_name(parent.name[1:].split(".")[0]) / path.name
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


# -- results --------------------------------------------------------------------------------------


def summarize(study, out: Path, objectives, max_accuracy_drop: float, reference: float) -> dict:
    """The front, the pick (or the best miss) and the trial counts; writes front/, model.tflite and the report."""
    rows, failed = _rows(study)
    keys = [OBJECTIVES[o] for o in objectives]
    feasible = [r for r in rows if max(violations(r, max_accuracy_drop)) <= 0]
    loss = "budget_used" if any(r.get("budget_used") is not None for r in rows) else "accuracy_drop_pt"
    front = pareto_front(feasible, keys + [loss])
    result = {"met": bool(feasible), "objectives": list(objectives), "max_accuracy_drop": max_accuracy_drop,
              "reference_accuracy": reference, "front": front, "pick": None, "best_effort": None, "miss_pt": None,
              "trials": {"complete": len(rows), "failed": len(failed), "failures": failed},
              "workers": sorted({r["worker"] for r in rows if r.get("worker")})}
    if feasible:
        pick = min(feasible, key=lambda r: ([r[k] for k in keys], r[loss], r["trial"]))
        if Path(pick["path"]).is_file():
            atomic_write_bytes(out / "model.tflite", Path(pick["path"]).read_bytes())
            result["pick"] = {**pick, "copied_to": str(out / "model.tflite")}
        else:  # built by a worker on another machine: it is there, at pick["path"]
            (out / "model.tflite").unlink(missing_ok=True)
            result["pick"] = {**pick, "copied_to": None}
    elif rows:
        best = min(rows, key=lambda r: (memory_over(r), r[loss]))  # the smallest, then the closest
        result["best_effort"] = best
        result["miss_pt"] = None if loss != "accuracy_drop_pt" else round(
            max(0.0, best["accuracy_drop_pt"] - max_accuracy_drop), 4)
    result.update(_write_front(front, out))
    return result


def _rows(study) -> tuple:
    from optuna.trial import TrialState

    rows, failed = [], []
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.COMPLETE and "row" in trial.user_attrs:
            rows.append({**trial.user_attrs["row"], "worker": trial.user_attrs.get("worker")})
        elif trial.state == TrialState.FAIL:
            stopped = f"worker {trial.user_attrs.get('worker', '?')} stopped mid-trial (killed, crashed or interrupted)"
            failed.append({"trial": trial.number, "error": trial.user_attrs.get("error", stopped)})
    return rows, failed


def pareto_front(rows: list, keys: list) -> list:
    """The rows no other row beats on every key (all minimized), sorted by the first key."""

    def dominates(a, b):
        return all(a[k] <= b[k] for k in keys) and any(a[k] < b[k] for k in keys)

    front = [r for r in rows if not any(dominates(other, r) for other in rows)]
    unique = {tuple(r[k] for k in keys) + (r["sha256"],): r for r in sorted(front, key=lambda r: r["trial"])}
    return sorted(unique.values(), key=lambda r: [r[k] for k in keys])


def _write_front(front: list, out: Path) -> dict:
    """Copy the front's models and logs to out/front/ and draw report.html and pareto.png from them."""
    folder = out / "front"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for row in front:
        model = Path(row["path"])
        if model.is_file():  # a worker on another machine keeps its files there
            atomic_write_bytes(folder / f"trial-{row['trial']:04d}.tflite", model.read_bytes())
            if row.get("log") and Path(row["log"]).is_file():
                copy_log(row["log"], folder / f"trial-{row['trial']:04d}.jsonl")
    if not any(folder.glob("*.jsonl")):
        return {"report_html": None, "pareto_png": None}
    from edgesmith.report import build_report, collect
    from edgesmith.report.plots import pareto

    html = build_report([folder], out / "report.html")
    atomic_write_bytes(out / "pareto.png", pareto(collect([folder]).variants))
    return {"report_html": str(html), "pareto_png": str(out / "pareto.png")}


def raise_if_missed(result: dict) -> None:
    """Raise :class:`ConstraintNotMetError` (exit 1) naming the best candidate and its miss."""
    if result["met"]:
        return
    best = result.get("best_effort")
    if best is None:
        raise ConstraintNotMetError(f"no trial completed ({result['trials']['failed']} failed); see optimize.json")
    if memory_over(best) > 0:
        raise ConstraintNotMetError(
            f"no candidate fits {best['mcu_profile']}: the best, trial {best['trial']}, needs "
            f"{best['arena_needed_bytes']:,} B of arena ({best['arena_limit_bytes']:,} B SRAM) and {best['flash_needed_bytes']:,} B of flash "
            f"({best['flash_limit_bytes']:,} B), a {best['mcu_margin']:.0%} margin included; see {best['path']}"
        )
    if best.get("budget_used") is not None:
        raise ConstraintNotMetError(f"no candidate holds every output's budget: the best, trial {best['trial']}, "
                                    f"uses {best['budget_used']:.0%} of its worst output's; see {best['path']}")
    raise ConstraintNotMetError(
        f"no candidate within {result['max_accuracy_drop']} pt: the best, trial {best['trial']}, dropped "
        f"{best['accuracy_drop_pt']:.2f} pt ({result['miss_pt']:.2f} pt over); see {best['path']}"
    )


def fidelity_loss(row: dict) -> float:
    """What a candidate loses against the source, minimized beside the objectives: its accuracy drop in points,
    or (a model verified output by output) the share of its budget its worst output uses.

    >>> fidelity_loss({"accuracy_drop_pt": 0.4}), fidelity_loss({"accuracy_drop_pt": None, "budget_used": 0.8})
    (0.4, 0.8)
    """
    used = row.get("budget_used")
    return row["accuracy_drop_pt"] if used is None else used
