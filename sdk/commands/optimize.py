"""``edgesmith optimize``: search compression recipes under an accuracy constraint, on measured figures."""

from __future__ import annotations

import sys
from collections import Counter

import click

from edgesmith.commands import interrupt
from edgesmith.commands.data_options import budget_options, check_inputs, preprocessing_options
from edgesmith.commands.progress import Progress, quiet_option, show_result
from edgesmith.converters.precisions import ALL_PRECISIONS, PRECISIONS
from edgesmith.optimize.space import OBJECTIVES, SAMPLERS, SEARCHABLE_PASSES
from edgesmith.optimize.storage import HEARTBEAT_S, shown_storage


def _names(choices):
    def check(ctx, param, value):
        if value is None:
            return None
        names = tuple(v.strip() for v in value.split(",") if v.strip() and v.strip() != "none")
        unknown = [n for n in names if n not in choices]
        if unknown:
            raise click.BadParameter(f"unknown {', '.join(unknown)}; choose from {', '.join(choices)} (comma-separated)")
        return names

    return check


@click.command("optimize")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", "data_spec", required=True, metavar="SPEC",
              help="builtin:digits|mnist|..., an image folder (class sub-folders, or images alone: unlabelled), or "
                   "an .npz file (targets per output as convert reads them).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder (candidates, front, model.tflite, report.html, the study).")
@click.option("--max-accuracy-drop", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Constraint: accuracy points the pick may lose against MODEL.")
@click.option("--objective", "objectives", multiple=True, type=click.Choice(tuple(OBJECTIVES)), default=("size",),
              show_default=True, help="Minimize this (repeat for several; the first chooses the pick).")
@click.option("--target", default="local", show_default=True, metavar="URL",
              help="Where candidates are benchmarked: local, ssh://[user@]host[:port][/dir] or adb://SERIAL; or "
                   "mcu:PROFILE (a microcontroller profile or TOML file): each candidate runs in TFLite Micro, its "
                   "arena and flash (with a 20% margin) must fit the profile's SRAM and flash, latency is estimated.")
@click.option("--trials", type=click.IntRange(min=1), default=20, show_default=True,
              help="Total trials of the study (a resumed study runs only the missing ones).")
@click.option("--storage", default=None, metavar="URL",
              help="Optuna storage shared by workers: sqlite:///FILE, postgresql://..., mysql://... or journal:FILE "
                   "(default: OUT/study.journal).")
@click.option("--study", "study_name", default=None, help="Study name (default: from the model hash and objectives).")
@click.option("--heartbeat", type=click.IntRange(min=0), default=HEARTBEAT_S, show_default=True, metavar="SECONDS",
              help="With a database --storage: running trials beat this often; a trial silent for twice as long "
                   "(its worker was killed) is marked failed and its recipe retried. 0: no heartbeat.")
@click.option("--passes", default=",".join(SEARCHABLE_PASSES), show_default=True, callback=_names(SEARCHABLE_PASSES),
              help="Training passes the search may apply, comma-separated, or none.")
@click.option("--precisions", default=None, callback=_names(ALL_PRECISIONS),
              help=f"Precisions a layer may take, comma-separated.  [default: {','.join(PRECISIONS)}; int8 with "
                   "--target mcu:PROFILE]")
@click.option("--epochs", type=click.IntRange(min=0), default=1, show_default=True,
              help="Fine-tuning epochs of each applied training pass.")
@click.option("--sampler", type=click.Choice(SAMPLERS), default="tpe", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--runs", type=click.IntRange(min=1), default=50, show_default=True, help="Benchmark runs per candidate.")
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Interpreter threads of the benchmark.")
@click.option("--energy", default=None, metavar="METER",
              help="Energy meter (auto|rapl|hwmon|pi5|battery|csv:FILE|estimate); default auto with --objective "
                   "energy, else none.")
@click.option("--profile", default=None, help="Device profile (for --energy estimate and the report).")
@click.option("--json", "as_json", is_flag=True, help="Print optimize.json instead of the table.")
@budget_options
@preprocessing_options
@quiet_option
def command(model, data_spec, out_dir, max_accuracy_drop, objectives, target, trials, storage, study_name, heartbeat,
            passes, precisions, epochs, sampler, seed, runs, warmup, threads, energy, profile, as_json, min_snr_db,
            metrics, preprocess, quiet):
    """Search how to compress MODEL (.keras or .h5): training passes, per-layer ratios and
    per-layer precisions, each candidate verified on the data and benchmarked on the target.
    Writes the Pareto front of deployable .tflite files to OUT/front/, the pick (the best
    within --max-accuracy-drop) to OUT/model.tflite, OUT/report.html with the Pareto plot,
    and OUT/optimize.json. Exits 1 when no candidate meets the constraint; rerunning after
    Ctrl-C resumes the study. Workers on many machines share one study with the same
    --storage postgresql://... and --study (see docs/optimize.md)."""
    check_inputs(model, data_spec)
    from edgesmith.deploy.target import BenchOptions
    from edgesmith.optimize.search import optimize, raise_if_missed

    bench = BenchOptions(runs=runs, warmup=warmup, threads=threads, profile=profile,
                         energy=energy or ("auto" if "energy" in objectives else "none"))
    bars = Progress(enabled=not (as_json or quiet), unit="trial")
    try:
        result = optimize(model, data_spec, out_dir, max_accuracy_drop=max_accuracy_drop, objectives=objectives,
                          target=target, trials=trials, storage=storage, study_name=study_name, passes=passes,
                          precisions=precisions, epochs=epochs, sampler=sampler, seed=seed, bench=bench,
                          preprocess=preprocess, metrics=metrics, min_snr_db=min_snr_db, progress=bars,
                          heartbeat=heartbeat or None,
                          stop_requested=interrupt.pressed)
    except BaseException:
        bars.close()
        if not interrupt.pressed():
            raise
        click.echo(f"interrupted: the study is kept in {shown_storage(storage or out_dir)}; rerun the same command "
                   "to resume",
                   err=True)
        sys.exit(interrupt.EXIT_CODE)
    bars.close()
    show_result(result, as_json, format_result)
    raise_if_missed(result)


def format_result(result: dict) -> str:
    """The front as a table, then the pick (or the best miss) and the trial counts."""
    from edgesmith.report.text import format_table

    picked = (result["pick"] or {}).get("trial")
    rows = [_printable(row, row["trial"] == picked) for row in result["front"]]
    lines = [f"Pareto front ({len(rows)} of {result['trials']['complete']} complete trials, "
             f"{result['trials']['failed']} failed; wall time {result['wall_time_s']} s):", format_table(rows)]
    if result["pick"]:
        pick = result["pick"]
        where = pick["copied_to"] or f"{pick['path']} on worker {pick['worker']}"
        board = f", arena {pick['arena_bytes']:,} B, flash {pick['flash_bytes']:,} B" if "arena_bytes" in pick else ""
        lines.append(f"pick: trial {pick['trial']} -> {where} ({pick['graph_bytes']:,} B graph, "
                     f"{pick['gzip_bytes']:,} B gzip, {_latency(pick)} ms{board}, "
                     f"{_loss(pick)})")
    if result["report_html"]:
        lines.append(f"report: {result['report_html']}")
    return "\n".join(lines)


def _printable(row: dict, picked: bool) -> dict:
    board = {"arena": f"{row['arena_bytes']:,}", "flash": f"{row['flash_bytes']:,}"} if "arena_bytes" in row else {}
    return {
        "trial": f"{row['trial']}{' *' if picked else ''}",
        "bytes": f"{row['graph_bytes']:,}",
        "weights": "-" if row.get("weights_bytes") is None else f"{row['weights_bytes']:,}",
        "gzip": f"{row['gzip_bytes']:,}",
        **board,
        "latency ms": _latency(row),
        "mJ": "-" if row.get("energy_mj") is None else f"{row['energy_mj']:.4g}",
        "accuracy": "-" if row.get("accuracy") is None else f"{100 * row['accuracy']:.2f}%",
        **({"drop pt": f"{row['accuracy_drop_pt']:.2f}"} if row.get("budget_used") is None else
           {"budget used": f"{row['budget_used']:.0%}"}),
        "passes": " ".join(_pass_text(step) for step in row["passes"]) or "-",
        "precisions": _precision_text(row["precisions"]),
    }


def _loss(row: dict) -> str:
    """What the candidate loses: its accuracy drop, or the share of its budget its worst output uses."""
    if row.get("budget_used") is not None:
        return f"{row['budget_used']:.0%} of budget"
    return f"drop {row['accuracy_drop_pt']:.2f} pt"


def _latency(row: dict) -> str:
    """The row's latency; ``~`` marks an estimate (MACs x cycles per MAC on a microcontroller)."""
    return f"{'~' if row.get('latency_estimated') else ''}{row['latency_ms']:.4g}"


def _pass_text(step: dict) -> str:
    if step["pass"] == "channel_prune":
        return "channels(" + ",".join(f"{k}:{v:g}" for k, v in step["ratios"].items()) + ")"
    if step["pass"] == "prune":
        return f"prune({step['sparsity']:g})"
    return f"cluster({step['clusters']})"


def _precision_text(precisions: dict) -> str:
    return " ".join(f"{name}x{count}" for name, count in Counter(precisions.values()).items())
