"""One self-contained HTML report from benchmark logs and conversion reports.

>>> from edgesmith.report import build_report
>>> from edgesmith.runtime.bench import benchmark
>>> result = benchmark("model.tflite", runs=20, energy="none", log_path="logs/bench.jsonl")
>>> build_report(["logs/"], "report.html", profile="rpi5")  # also directories written by `edgesmith convert`
PosixPath('report.html')

The page holds a table per benchmark session, the latency CDF per variant, a
Pareto scatter of accuracy (or size) against latency with energy as colour,
the device table with "% of device peak" where a profile is known, and the
per-stage table of each ``report.json`` written by ``edgesmith convert``.
Plots are PNGs inlined as base64, so the file can be mailed or archived alone.
"""

from __future__ import annotations

from pathlib import Path

from edgesmith.runtime.errors import EdgesmithError
from edgesmith.runtime.atomic_write import atomic_write_bytes

from .collect import Collection, Variant, collect
from .html import percent_of_peak, render

__all__ = ["Collection", "Variant", "build_report", "collect", "percent_of_peak", "write_report"]


def build_report(sources, output, *, profile=None) -> Path:
    """Read ``sources`` (log files, report.json files or directories) and write the HTML to ``output``.

    Args:
        profile: a device profile name or file; sets the "% of peak" for every
            session (otherwise each log's own profile, when it names one).
    """
    return write_report(collect(sources), output, profile=profile)


def write_report(collection: Collection, output, *, profile=None) -> Path:
    """Render an already collected :class:`Collection` to ``output``."""
    from edgesmith.profiles import load_profile

    chosen = load_profile(profile) if profile else None
    output = Path(output)
    atomic_write_bytes(output, render(collection, chosen, _logged_profiles(collection, load_profile)).encode("utf-8"))
    return output


def _logged_profiles(collection: Collection, load_profile) -> dict:
    """The built-in profiles the logs name (unknown names are left out, not an error)."""
    found = {}
    for variant in collection.variants:
        name = variant.header["device"].get("profile")
        if name and name not in found:
            try:
                found[name] = load_profile(name)
            except EdgesmithError:
                pass
    return found
