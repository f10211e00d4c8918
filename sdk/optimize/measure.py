"""Measured latency and energy of candidates, locally or on a deploy target (arena and flash in TFLite Micro for
an ``mcu:`` target), cached by model hash.

>>> import hashlib
>>> from pathlib import Path
>>> meter = Measurer("out/measurements.json", target="local", settings=BenchOptions(runs=50, energy="none"))
>>> sha256 = hashlib.sha256(Path("model.tflite").read_bytes()).hexdigest()
>>> meter.measure("model.tflite", sha256, log_dir="out/bench")
{'latency_ms': ..., 'latency_mean_ms': ..., 'energy_mj': None, 'energy_estimated': False,
 'energy_reason': 'energy measurement disabled (--energy none)', 'log': 'out/bench/model.local.jsonl', 'cached': False}
>>> meter.measure("model.tflite", sha256, log_dir="out/bench")["cached"]   # same hash: not benchmarked again
True

The cache key is the SHA-256 of the model graph plus the benchmark settings
and the target, so the same model found twice (by two trials or two runs) is
benchmarked once. A target that cannot be reached raises
:class:`MeasurementError`; the search marks that trial failed and goes on.

An ``mcu:PROFILE`` target (a microcontroller profile name or TOML file) is measured by
:class:`McuMeasurer` instead: TFLite Micro runs the model and measures its arena and flash
(:func:`edgesmith.mcu.check_mcu`), against the profile's SRAM and flash with the usual 20 % margin;
its latency is the MACs x cycles-per-MAC estimate, flagged ``latency_estimated``:

>>> meter = measurer_for("mcu:stm32f746", "out/measurements.json")
>>> figures = meter.measure("model.tflite", sha256, log_dir="out/bench")
>>> figures["arena_needed_bytes"] <= figures["arena_limit_bytes"], figures["latency_estimated"], figures["log"]
(True, True, None)
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from edgesmith.deploy.target import BenchOptions
from edgesmith.deploy.urls import mcu_profile
from edgesmith.mcu import check_mcu, load_mcu_profile
from edgesmith.runtime.errors import EdgesmithError, RunFailedError
from edgesmith.runtime.atomic_write import atomic_write_json


class MeasurementError(RunFailedError):
    """A candidate could not be benchmarked (target unreachable, meter failed...)."""


class Measurer:
    """Benchmarks .tflite files on ``target`` (``local``, ``ssh://...``, ``adb://...``), with a JSON cache."""

    def __init__(self, cache_path, target: str = "local", settings: BenchOptions | None = None):
        self.cache_path = Path(cache_path)
        self.target = target
        self.settings = settings or BenchOptions(runs=50, warmup=5, energy="none")

    def key(self, sha256: str) -> str:
        return json.dumps({"sha256": sha256, "target": self.target, **asdict(self.settings)}, sort_keys=True)

    def measure(self, path, sha256: str, log_dir) -> dict:
        """Latency (p50 ms) and energy (mJ per inference, or None with a reason) of the model at ``path``."""
        key = self.key(sha256)
        cached = self._load().get(key)
        if cached is not None:
            return {**cached, "cached": True}
        result = self._measure(Path(path), Path(log_dir))
        self._store(key, result)
        return {**result, "cached": False}

    def _measure(self, path: Path, log_dir: Path) -> dict:
        log_dir.mkdir(parents=True, exist_ok=True)
        try:
            summary, log = self._bench(path, log_dir)
        except EdgesmithError as error:
            raise MeasurementError(f"benchmark on {self.target} failed: {error}") from None
        return {**_figures(summary), "log": str(log)}

    def _bench(self, path: Path, log_dir: Path) -> tuple:
        settings = self.settings
        if self.target == "local":
            from edgesmith.profiles import load_profile
            from edgesmith.runtime.bench import benchmark

            log = log_dir / f"{path.stem}.local.jsonl"
            log.unlink(missing_ok=True)
            profile = load_profile(settings.profile) if settings.profile else None
            result = benchmark(path, runs=settings.runs, warmup=settings.warmup, threads=settings.threads,
                               energy=settings.energy, profile=profile, log_path=log)
            return result["summary"], log
        from edgesmith.deploy import deploy

        result = deploy(path, self.target, out_dir=log_dir, options=settings)
        return result["summary"], Path(result["log"])

    def _load(self) -> dict:
        try:
            return json.loads(self.cache_path.read_text())
        except (OSError, ValueError):
            return {}

    def _store(self, key: str, result: dict) -> None:
        # re-read first: another worker may have added entries since
        entries = self._load()
        entries[key] = result
        atomic_write_json(self.cache_path, entries, indent=1, sort_keys=True)


class McuMeasurer(Measurer):
    """Measures .tflite files in TFLite Micro for an ``mcu:PROFILE`` target: arena and flash (as
    :func:`edgesmith.mcu.fit` defines them, with ``margin``) against the profile's limits, latency estimated."""

    def __init__(self, cache_path, target: str, margin: float = 0.2):
        super().__init__(cache_path, target)
        self.margin = margin
        self.profile = load_mcu_profile(mcu_profile(target))  # a bad profile fails here, before any trial

    def key(self, sha256: str) -> str:
        limits = {k: self.profile[k] for k in ("arena_ram_bytes", "flash_bytes", "clock_mhz")}
        return json.dumps({"sha256": sha256, "target": self.target, "margin": self.margin, **limits,
                           "cycles_per_mac": self.profile["timing"].cycles_per_mac}, sort_keys=True)

    def _measure(self, path: Path, log_dir: Path) -> dict:
        try:
            report = check_mcu(path, [mcu_profile(self.target)], margin=self.margin)
        except EdgesmithError as error:
            raise MeasurementError(f"TFLite Micro cannot run it for {self.target}: {error}") from None
        [row] = report["profiles"]
        ram, flash = row["ram"], row["flash"]
        return {"latency_ms": row["latency_estimate"]["ms"], "latency_estimated": True, "energy_mj": None,
                "energy_estimated": False, "energy_reason": "no energy figure for a microcontroller target",
                "mcu_profile": row["profile"], "mcu_margin": self.margin,
                "arena_bytes": ram["measured_bytes"], "arena_needed_bytes": ram["needed_bytes"],
                "arena_limit_bytes": ram["available_bytes"], "flash_bytes": flash["measured_bytes"],
                "flash_needed_bytes": flash["needed_bytes"], "flash_limit_bytes": flash["available_bytes"], "log": None}


def measurer_for(target: str, cache_path, settings: BenchOptions | None = None) -> Measurer:
    """The measurer of ``target``: :class:`McuMeasurer` for ``mcu:PROFILE``, else a benchmarking :class:`Measurer`."""
    if mcu_profile(target) is not None:
        return McuMeasurer(cache_path, target)
    return Measurer(cache_path, target, settings)


def _figures(summary: dict) -> dict:
    energy = summary.get("energy") or {}
    return {"latency_ms": summary["latency_ms"]["p50"], "latency_mean_ms": summary["latency_ms"]["mean"],
            "energy_mj": energy.get("mj_per_inference") if energy.get("available") else None,
            "energy_estimated": bool(energy.get("estimated")), "energy_reason": energy.get("reason")}


def copy_log(log, destination: Path) -> None:
    """Copy a benchmark log next to a front model (for the HTML report)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(log, destination)
