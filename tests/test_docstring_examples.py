"""Every docstring example (``>>>``) in the edgesmith packages runs, and prints what it shows.

The modules are imported by their installed names (``edgesmith``, ``edgesmith.converters``,
``edgesmith.runtime`` and the sub-packages pyproject.toml lists), so an example's imports resolve
as they do for a user; ``pytest --doctest-modules`` would import ``sdk/data.py`` as ``sdk.data``, a
second copy of every class. Each docstring is one test, run by :mod:`doctest` (flags ``ELLIPSIS``
and ``NORMALIZE_WHITESPACE``) in a fresh scratch folder, the current directory, which holds the
files its examples name of these:

* ``model.tflite``: a small float image classifier, 16x16 RGB in, 4 classes out (made once per
  session by ``tflite_models`` in tests/conftest.py);
* ``digits.keras``: ``model`` below, saved; ``digits.tflite``: ``model`` as full int8 with its
  labels and preprocessing in the metadata; ``three.png``: a held-out handwritten 3, 64x64
  grayscale (demos/raspberrypi/samples/digit-3.png).

An example may also use, without defining them:

* ``data``: ``edgesmith.data.load_data("builtin:digits")``;
* ``model``: a Keras model trained a few seconds on ``data``, layers conv1 -> conv2 -> fc1 ->
  head (``tiny_model`` in tests/sdk/test_optimize_models.py).

A docstring that needs the trained model (it reads ``model`` before assigning it, or names
``digits.keras``, ``digits.tflite`` or ``three.png``) or builds a ``keras.applications`` model is
marked slow; the others are in the fast tier. An example that needs hardware this machine lacks
(a phone, a power sensor) carries ``# doctest: +SKIP``.
"""

from __future__ import annotations

import ast
import builtins
import doctest
import importlib
import pkgutil
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# Docstrings whose examples do not run yet, each with what is wrong: they are skipped, and `-ra`
# lists them at the end of every run. Fix the example, delete its line here, and the test runs it.
# A name that no longer has examples fails test_not_yet_doctested_names_are_current.
NOT_YET_DOCTESTED: dict = {}

# names the examples may use without defining them (see the module docstring)
TRAINED_NAMES = {"model"}
FAST_NAMES = {"data"}
TRAINED_FILES = ("digits.keras", "digits.tflite", "three.png")
APPLICATIONS = ("keras.applications", "build_student(")


def _packages() -> list:
    """The packages pyproject.toml installs (the package-dir mapping puts them in three folders)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.9 and 3.10
        import tomli as tomllib
    with open(REPO / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["tool"]["setuptools"]["packages"]


def _modules() -> list:
    names = []
    for package in _packages():
        names.append(package)
        for info in pkgutil.iter_modules(importlib.import_module(package).__path__, package + "."):
            if not info.ispkg and not info.name.endswith(".__main__"):  # __main__ runs the CLI on import
                names.append(info.name)
    return sorted(set(names))


def _docstrings() -> dict:
    """Docstring name (``edgesmith.runtime.model.Model.predict``) -> its :class:`doctest.DocTest`."""
    finder = doctest.DocTestFinder()
    found = {}
    for name in _modules():
        for test in finder.find(importlib.import_module(name), name):
            if test.examples:
                found[test.name] = test
    return found


def free_names(test: doctest.DocTest) -> set:
    """Names the examples read before any example assigns them (builtins and module globals aside)."""
    assigned, free = set(), set()
    for example in test.examples:
        try:
            tree = ast.parse(example.source)
        except SyntaxError:
            continue  # doctest reports it
        stored, loaded = set(), []
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                (stored.add(node.id) if isinstance(node.ctx, (ast.Store, ast.Del)) else loaded.append(node.id))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                stored.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                stored.add(node.name)
        free.update(name for name in loaded if name not in assigned and name not in stored)
        assigned |= stored
    return {name for name in free if name not in test.globs and not hasattr(builtins, name)}


def is_slow(test: doctest.DocTest) -> bool:
    """Needs the trained model, or builds a keras.applications model (the rules of the slow marker)."""
    source = "".join(example.source for example in test.examples)
    return needs_trained_model(test) or any(call in source for call in APPLICATIONS)


def needs_trained_model(test: doctest.DocTest) -> bool:
    source = "".join(example.source for example in test.examples)
    return bool(free_names(test) & TRAINED_NAMES) or any(name in source for name in TRAINED_FILES)


DOCSTRINGS = _docstrings()


@pytest.fixture(scope="session")
def trained_digits(tmp_path_factory):
    """``model`` and ``data`` of the module docstring, and the scratch files made from them."""
    from edgesmith.converters.export import export
    from edgesmith.converters.ptq import ptq
    from tests.sdk.test_optimize_models import digits, tiny_model

    data = digits()
    model = tiny_model(data)
    folder = tmp_path_factory.mktemp("doctest-digits")
    model.save(folder / "digits.keras")
    export(ptq(model, data, mode="int8"), data, folder / "digits.tflite")
    shutil.copyfile(REPO / "demos" / "raspberrypi" / "samples" / "digit-3.png", folder / "three.png")
    return {"model": model, "data": data, "files": [folder / name for name in TRAINED_FILES]}


def _params():
    for name, test in sorted(DOCSTRINGS.items()):
        if name in NOT_YET_DOCTESTED:  # listed by -ra in every run's summary, with what is wrong
            marks = [pytest.mark.skip(reason=f"NOT_YET_DOCTESTED[{name!r}]: {NOT_YET_DOCTESTED[name]}")]
        else:
            marks = [pytest.mark.slow] if is_slow(test) else []
        yield pytest.param(name, id=name, marks=marks)


@pytest.mark.parametrize("name", _params())
def test_docstring_examples(name, request, tmp_path, monkeypatch):
    test = DOCSTRINGS[name]
    globs = dict(test.globs)
    names = free_names(test)
    if names & FAST_NAMES:
        from edgesmith.data import load_data

        globs["data"] = load_data("builtin:digits")
    if needs_trained_model(test):
        trained = request.getfixturevalue("trained_digits")
        globs.update(model=trained["model"], data=trained["data"])
        for path in trained["files"]:
            shutil.copyfile(path, tmp_path / path.name)
    if "model.tflite" in "".join(example.source for example in test.examples):
        shutil.copyfile(request.getfixturevalue("tflite_models")["float"], tmp_path / "model.tflite")
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    result = runner.run(doctest.DocTest(test.examples, globs, test.name, test.filename, test.lineno, test.docstring),
                        out=report.append, clear_globs=True)
    assert result.failed == 0, "".join(report)


def test_examples_are_found_in_all_three_package_folders():
    folders = {Path(test.filename).resolve().relative_to(REPO).parts[0] for test in DOCSTRINGS.values()}
    assert folders == {"sdk", "converters", "runtime"}


def test_not_yet_doctested_names_are_current():
    stale = sorted(set(NOT_YET_DOCTESTED) - set(DOCSTRINGS))
    assert not stale, f"no docstring with examples is named {stale}: remove them from NOT_YET_DOCTESTED"
