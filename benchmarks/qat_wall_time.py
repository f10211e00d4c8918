"""int8-qat on a small CNN: the wall time and TFLite conversions of `edgesmith convert`, one commit against another.

Both sides run the same command on the same trained model and data, in alternating rounds within one run (so
that machine noise hits both alike), each in a fresh process with its own code: the old commit is unpacked with
``git archive`` and both are laid out as an ``edgesmith`` package on PYTHONPATH (the working tree for "new"). A
process counts its own ``TFLiteConverter.convert`` calls.

Run:  TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/qat_wall_time.py --old f407499 [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {"converters": "converters", "runtime": "runtime"}  # as pyproject's package-dir: sdk/ is the top

def counting_conversions(patch=setattr) -> list:
    """Count every TFLite conversion from now on (``patch(cls, "convert", wrapper)``; a test passes
    ``monkeypatch.setattr``): returns the list each conversion appends its converter's class name to."""
    from tensorflow.lite.python import lite

    conversions, depth = [], [0]

    def counting(original):
        def convert(self, *args, **kwargs):  # a conversion calls its bases' convert: count the outermost call
            if depth[0] == 0:
                conversions.append(type(self).__name__)
            depth[0] += 1
            try:
                return original(self, *args, **kwargs)
            finally:
                depth[0] -= 1
        return convert

    for cls in [getattr(lite, name) for name in dir(lite)]:
        if isinstance(cls, type) and "convert" in vars(cls) and cls.__name__.startswith("TFLite"):
            patch(cls, "convert", counting(vars(cls)["convert"]))
    return conversions


# Run in the measured process: count conversions (with this file's counter), then the CLI's own main.
RUNNER = f"""
import json, sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from qat_wall_time import counting_conversions
conversions = counting_conversions()
import time
import edgesmith.pipeline  # TensorFlow and Keras: the same import on both sides, timed apart
from edgesmith.cli import main
started = time.perf_counter()
try:
    main(sys.argv[2:])
finally:
    work = time.perf_counter() - started
    open(sys.argv[1], "w").write(json.dumps({{"conversions": len(conversions), "work_seconds": work}}))
"""


def package_farm(tree: Path, folder: Path) -> Path:
    """``folder`` holding an ``edgesmith`` package laid out from ``tree`` as pyproject's package-dir does."""
    package = folder / "edgesmith"
    package.mkdir(parents=True)
    for entry in (tree / "sdk").iterdir():
        (package / entry.name).symlink_to(entry)
    for name, source in PACKAGE_DIRS.items():
        (package / name).symlink_to(tree / source)
    return folder


def old_tree(revision: str, folder: Path) -> Path:
    """The project at ``revision``, unpacked into ``folder``."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def train_model(path: Path, epochs: int) -> None:
    """The demo's small CNN trained on builtin:digits, saved to ``path`` (in a child: its memory is its own)."""
    code = ("import sys; from edgesmith.data import load_data; from edgesmith.demo import train_small_cnn; "
            f"train_small_cnn(load_data('builtin:digits'), epochs={epochs}).save(sys.argv[1])")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)


def run_once(farm: Path, model: Path, out: Path, scratch: Path) -> dict:
    """Seconds and conversions of one `edgesmith convert --recipe int8-qat` with the code in ``farm``."""
    counts = scratch / "counts.json"
    runner = scratch / "runner.py"
    runner.write_text(RUNNER)
    env = {**os.environ, "PYTHONPATH": str(farm), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, str(runner), str(counts), "convert", str(model), "--recipe", "int8-qat",
               "--data", "builtin:digits", "--out", str(out), "--json"]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{farm}: convert failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return {"seconds": seconds, **json.loads(counts.read_text())}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="f407499", help="the commit to compare against (default: before issue 24)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20, help="epochs the source CNN is trained for")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="qat-wall-") as folder:
        scratch = Path(folder)
        model = scratch / "digits.keras"
        train_model(model, args.epochs)
        farms = {"old": package_farm(old_tree(args.old, scratch / "old-tree"), scratch / "old"),
                 "new": package_farm(ROOT, scratch / "new")}
        runs = {side: [] for side in farms}
        for round_ in range(args.rounds):
            for side, farm in farms.items():
                runs[side].append(run_once(farm, model, scratch / f"out-{side}-{round_}", scratch))
                done = runs[side][-1]
                print(f"round {round_ + 1} {side}: {done['seconds']:.1f} s ({done['work_seconds']:.1f} s after "
                      f"the TensorFlow import), {done['conversions']} conversions", flush=True)
    medians = {key: {side: statistics.median(run[key] for run in rows) for side, rows in runs.items()}
               for key in ("seconds", "work_seconds")}
    result = {"old": args.old, "rounds": args.rounds, "median_s": medians["seconds"],
              "ratio": medians["seconds"]["new"] / medians["seconds"]["old"],
              "work_ratio": medians["work_seconds"]["new"] / medians["work_seconds"]["old"],
              "conversions": {side: rows[0]["conversions"] for side, rows in runs.items()}}
    print(f"int8-qat wall time: old {medians['seconds']['old']:.1f} s, new {medians['seconds']['new']:.1f} s, "
          f"new/old {result['ratio']:.2f}; after the TensorFlow import: old {medians['work_seconds']['old']:.1f} s, "
          f"new {medians['work_seconds']['new']:.1f} s, new/old {result['work_ratio']:.2f}; TFLite conversions "
          f"per run: old {result['conversions']['old']}, new {result['conversions']['new']}")
    return result


if __name__ == "__main__":
    main()
