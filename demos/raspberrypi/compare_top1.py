"""Compare two ``classify.py --json`` outputs: the same top-1 for every image, labels from the model.

Used by check-arm64.sh to compare the arm64 run (under qemu-user) with the x86
one. Prints one line per image and exits 1 on any difference::

    python compare_top1.py x86.jsonl arm64.jsonl --backend tflite_runtime
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def read_output(path) -> tuple:
    """``({image name: top-1 result}, summary)`` from a ``classify.py --json`` output."""
    results, summary = {}, None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["type"] == "result":
            results[Path(record["source"]).name] = record["top_k"][0]
        elif record["type"] == "summary":
            summary = record
    if summary is None:
        raise SystemExit(f"{path}: no summary line; the run did not finish")
    return results, summary


def problems(reference: tuple, candidate: tuple, backend: str | None, machine: str | None) -> list:
    """Every way ``candidate`` differs from ``reference`` (empty when they agree)."""
    (expected, _), (got, summary) = reference, candidate
    found = []
    if backend and summary["backend"] != backend:
        found.append(f"ran on {summary['backend']}, expected {backend}")
    if machine and summary["machine"] != machine:
        found.append(f"ran on a {summary['machine']} machine, expected {machine}")
    if summary["labels"] != "model":
        found.append("labels were not read from the model's metadata")
    if set(expected) != set(got):
        found.append(f"different images: {sorted(set(expected) ^ set(got))}")
    for name in sorted(set(expected) & set(got)):
        if expected[name]["label"] != got[name]["label"]:
            found.append(f"{name}: top-1 {got[name]['label']!r}, x86 says {expected[name]['label']!r}")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", help="the x86 output")
    parser.add_argument("candidate", help="the output to check")
    parser.add_argument("--backend", help="the interpreter the candidate must have used")
    parser.add_argument("--machine", help="the architecture it must have run on, e.g. aarch64")
    args = parser.parse_args(argv)
    reference, candidate = read_output(args.reference), read_output(args.candidate)
    score_gaps = []
    for name, top1 in sorted(candidate[0].items()):
        expected = reference[0].get(name, {"label": None, "score": float("nan")})
        mark = "ok" if expected["label"] == top1["label"] else "MISMATCH"
        score_gaps.append(abs(expected["score"] - top1["score"]))
        print(f"  {name:<22} x86 {expected['label']!s:>6} ({expected['score']:.3f})   "
              f"candidate {top1['label']:>6} ({top1['score']:.3f})  {mark}")
    found = problems(reference, candidate, args.backend, args.machine)
    for problem in found:
        print(f"  FAIL: {problem}")
    summary = candidate[1]
    verdict = "same top-1 as x86" if not found else "DIFFERENT"
    print(f"  {len(candidate[0])} images, {summary['backend']} on {summary['machine']}: {verdict} "
          f"(largest top-1 score difference {max(score_gaps, default=0.0):.4f})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
