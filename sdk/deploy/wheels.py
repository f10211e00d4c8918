"""Wheels for a target that has no internet: edgesmith itself, and its runtime dependencies.

edgesmith's wheel is built from this source tree (``pip wheel --no-deps``) in a
scratch copy, so the tree stays clean, and cached by the hash of its sources.
The dependencies (numpy, pillow, click, flatbuffers and a LiteRT interpreter,
never TensorFlow) are downloaded on this host with ``pip download`` for the
target's CPU and Python, then copied over.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import edgesmith
from edgesmith.runtime.errors import EdgesmithError

SOURCE_DIRS = ("sdk", "runtime", "converters")
SOURCE_SUFFIXES = {".py", ".toml"}


def cache_root() -> Path:
    """Where built and downloaded wheels are kept (``$EDGESMITH_CACHE`` or ~/.cache/edgesmith)."""
    return Path(os.environ.get("EDGESMITH_CACHE", Path.home() / ".cache" / "edgesmith"))


def project_root() -> Path:
    """The source tree edgesmith is imported from (needed to build its wheel)."""
    root = Path(edgesmith.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise EdgesmithError("edgesmith is not running from its source tree; pass --wheel with an edgesmith wheel")
    return root


def _source_files(root: Path) -> list:
    files = [root / "pyproject.toml"]
    for folder in SOURCE_DIRS:
        files += sorted(p for p in (root / folder).rglob("*") if p.suffix in SOURCE_SUFFIXES and "__pycache__" not in p.parts)
    return files


def source_hash(root: Path) -> str:
    """SHA-256 of edgesmith's sources: a changed file means a new wheel."""
    digest = hashlib.sha256()
    for path in _source_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def edgesmith_wheel() -> Path:
    """A wheel of this source tree, built once per source version."""
    root = project_root()
    folder = cache_root() / "wheels" / source_hash(root)[:16]
    existing = sorted(folder.glob("edgesmith-*.whl"))
    if existing:
        return existing[0]
    with tempfile.TemporaryDirectory(prefix="edgesmith-wheel-") as scratch:
        copy = Path(scratch) / "src"
        copy.mkdir()
        for path in _source_files(root):
            target = copy / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        (copy / "README.md").write_text("edgesmith\n")
        built = Path(scratch) / "dist"
        command = ["wheel", "--no-deps", "-w", str(built), str(copy)]
        try:  # offline, with this environment's setuptools and wheel
            _pip([*command, "--no-build-isolation", "--no-index"], "build edgesmith's wheel")
        except EdgesmithError:  # this environment lacks the build backend: let pip fetch it
            _pip(command, "build edgesmith's wheel")
        wheel = next(built.glob("edgesmith-*.whl"))
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(wheel, folder / wheel.name)
        return folder / wheel.name


def runtime_requirements(machine: str, python: tuple = (3, 11)) -> list:
    """What a target with this CPU and Python needs to run ``edgesmith bench`` (never TensorFlow): the
    distribution's own base dependencies (pyproject's ``dependencies``), markers evaluated for the target.

    >>> [r for r in runtime_requirements("armv7l") if r.startswith(("numpy", "tflite", "ai-edge"))]
    ['numpy<2,>=1.23', 'tflite-runtime>=2.14']
    """
    target = {"platform_machine": "armv7l" if machine == "armv6l" else machine, "python_version": python[:2],
              "extra": ""}
    needed = []
    for line in importlib.metadata.requires("edgesmith") or []:
        requirement, _, marker = line.partition(";")
        if all(_holds(clause, target) for clause in marker.split(" and ") if clause.strip()):
            needed.append(requirement.strip())
    return needed


def _holds(clause: str, target: dict) -> bool:
    """One marker clause (``platform_machine == "armv7l"``, ``python_version < "3.11"``, ``extra == "x"``)."""
    name, operator, value = re.fullmatch(r"\s*(\w+)\s*(==|!=|<|>=)\s*[\"'](.*)[\"']\s*", clause).groups()
    actual = target[name]
    if name == "python_version":
        value = tuple(int(part) for part in value.split("."))
    return {"==": actual == value, "!=": actual != value, "<": actual < value, ">=": actual >= value}[operator]


def platform_tags(machine: str, glibc: str) -> list:
    """pip ``--platform`` values a Linux target with this CPU and glibc accepts."""
    major, minor = (int(x) for x in (glibc or "2.17").split(".")[:2])
    tags = [f"manylinux_{major}_{m}_{machine}" for m in range(minor, 16, -1)]
    return tags + [f"manylinux2014_{machine}", f"linux_{machine}"]


def wheelhouse(machine: str, python: tuple, glibc: str) -> Path:
    """Download (once) the runtime dependencies for a Linux target into a cached folder."""
    key = f"{machine}-cp{python[0]}{python[1]}-glibc{glibc or 'unknown'}"
    folder = cache_root() / "wheelhouse" / key
    if (folder / ".complete").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    args = ["download", "--only-binary=:all:", "--python-version", f"{python[0]}.{python[1]}",
            "--implementation", "cp", "-d", str(folder)]
    for tag in platform_tags(machine, glibc):
        args += ["--platform", tag]
    _pip(args + runtime_requirements(machine, python), f"download the runtime wheels for {key}")
    (folder / ".complete").write_text("")
    return folder


def _pip(args: list, what: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise EdgesmithError(f"could not {what}: {last}")
