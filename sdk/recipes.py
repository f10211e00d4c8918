"""Recipes: named lists of passes with their options, as TOML files.

>>> from edgesmith.recipes import load_recipe
>>> recipe = load_recipe("int8-qat")
>>> [step.name for step in recipe.passes]
['qat', 'ptq']

A recipe file::

    name = "my-recipe"
    description = "what it is for"
    max_accuracy_drop = 1.0          # percentage points below the source model; optional
    preprocess = "tf"                # how the model wants its pixels (a preset, or {mean, std}); optional
    fallback = true                  # over budget: raise the worst layers' precision until it holds; optional

    [[passes]]
    pass = "prune"
    sparsity = 0.5

    [[passes]]
    pass = "ptq"
    mode = "int8"

A recipe ends with one pass that writes a .tflite (``ptq`` or ``mixed_precision``); without one,
``ptq`` with ``mode = "float32"`` is appended.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace
from pathlib import Path

from edgesmith.converters.errors import UnknownOptionError
from edgesmith.converters.registry import TFLITE_PASSES, check_options, get_pass
from edgesmith.preprocessing import preprocessing_from
from edgesmith.toml_files import builtin_names, locate_toml, read_toml

BUILTIN_DIR = Path(__file__).with_name("recipes")
RECIPE_KEYS = ("name", "description", "max_accuracy_drop", "preprocess", "fallback", "passes")
TIMED_EPOCHS = 100  # a training pass's epochs under a time budget: the budget, or early stopping, ends it first
FALLBACK_MODES = ("int8", "int16x8", "dynamic", "fp16", "float32")  # the ptq modes a fallback can start from


@dataclass(frozen=True)
class Step:
    """One pass of a recipe and the options it is called with."""

    name: str
    options: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"pass": self.name, **self.options}


@dataclass(frozen=True)
class Recipe:
    """A validated recipe: Keras passes, then one pass that produces the .tflite."""

    name: str
    passes: tuple
    description: str = ""
    max_accuracy_drop: float | None = None
    preprocess: str | dict | None = None  # how the model wants its pixels (edgesmith.preprocessing)
    fallback: bool = False  # over budget: raise the worst layers' precision (edgesmith.pipeline.fall_back)

    @property
    def keras_passes(self) -> tuple:
        return self.passes[:-1]

    @property
    def conversion(self) -> Step:
        return self.passes[-1]

    def as_dict(self) -> dict:
        """The recipe as data (stored in metadata and reports)."""
        return {"name": self.name, "description": self.description, "max_accuracy_drop": self.max_accuracy_drop,
                **({"preprocess": self.preprocess} if self.preprocess is not None else {}),
                **({"fallback": True} if self.fallback else {}), "passes": [step.as_dict() for step in self.passes]}


def builtin_recipes() -> list:
    """Names of the recipes shipped with edgesmith."""
    return builtin_names(BUILTIN_DIR)


def load_recipe(name_or_path) -> Recipe:
    """A built-in recipe by name, a recipe TOML file, or the recipe recorded in a .tflite edgesmith wrote
    (``edgesmith convert`` and ``edgesmith optimize`` store it in the metadata); unknown names list the built-ins."""
    path = Path(name_or_path)
    if path.suffix == ".tflite":
        return recorded_recipe(path)
    source = locate_toml(name_or_path, BUILTIN_DIR, UnknownOptionError, "recipe file {path} does not exist",
                         "unknown recipe {name!r}; built-in recipes: {names} (or give a .toml file)")
    table = read_toml(source, UnknownOptionError, "{path}: not valid TOML ({error})")
    return recipe_from_dict(table, default_name=source.stem)


def recorded_recipe(path: Path) -> Recipe:
    """The recipe in the metadata of an edgesmith .tflite, to replay it on the source model."""
    from edgesmith.runtime.errors import MetadataError
    from edgesmith.runtime.metadata import read_metadata

    if not path.is_file():
        raise UnknownOptionError(f"{path} does not exist")
    try:
        metadata = read_metadata(path)
    except MetadataError as exc:
        raise UnknownOptionError(str(exc)) from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("recipe"), dict):
        raise UnknownOptionError(f"{path} records no recipe (edgesmith convert and optimize write one)")
    return recipe_from_dict(metadata["recipe"], default_name=path.stem)


def recipe_from_dict(table: dict, default_name: str = "custom") -> Recipe:
    """Validate a recipe given as data (pass names and options are checked against the registry)."""
    unknown = sorted(set(table) - set(RECIPE_KEYS))
    if unknown:
        raise UnknownOptionError(f"recipe has unknown key(s) {', '.join(unknown)}; "
                                 f"valid keys: {', '.join(RECIPE_KEYS)}")
    steps = [_step(entry) for entry in table.get("passes", [])]
    converting = [i for i, step in enumerate(steps) if step.name in TFLITE_PASSES]
    if not converting:
        steps.append(Step("ptq", {"mode": "float32"}))
    elif converting != [len(steps) - 1]:
        raise UnknownOptionError(f"a recipe has one .tflite-producing pass ({', '.join(sorted(TFLITE_PASSES))}), "
                                 "and it comes last")
    drop = table.get("max_accuracy_drop")
    fallback = table.get("fallback", False)
    if not isinstance(fallback, bool):
        raise UnknownOptionError(f"fallback is true or false, not {fallback!r}")
    if fallback:
        check_fallback(steps)
    preprocess = table.get("preprocess")
    preprocessing_from(preprocess, origin="recipe")  # an unknown preset or bad mean/std fails here
    return Recipe(name=str(table.get("name", default_name)), passes=tuple(steps),
                  description=str(table.get("description", "")),
                  max_accuracy_drop=None if drop is None else float(drop), preprocess=preprocess, fallback=fallback)


def check_fallback(steps) -> None:
    """Refuse (one line) a recipe whose conversion the fallback cannot raise layer by layer: it re-quantizes the
    final Keras model with litert-quantizer, calibrated on the data, and writes float inputs and outputs."""
    if any(step.name == "qat" for step in steps):
        raise UnknownOptionError("fallback re-quantizes by calibration, which would discard the ranges qat learned; "
                                 "use it with post-training recipes (ptq or mixed_precision)")
    if steps and steps[-1].name == "ptq":
        mode, io = steps[-1].options.get("mode", "float32"), steps[-1].options.get("io", "float")
        if mode not in FALLBACK_MODES or io != "float":
            raise UnknownOptionError(f"fallback starts from ptq modes {', '.join(FALLBACK_MODES)} with io = float, "
                                     f"not mode={mode} io={io}")


def with_recovery_time(recipe: Recipe, seconds: float) -> Recipe:
    """``recipe`` with ``seconds`` of fine-tuning shared among its training passes (those taking a
    ``recovery_time`` option) in proportion to their epochs; their epochs rise to :data:`TIMED_EPOCHS`, so the
    time (or early stopping on held-out rows) ends each one.

    >>> [step.options.get("recovery_time") for step in with_recovery_time(load_recipe("fast-int8"), 600).passes]
    [257.1, 171.4, 171.4, None]
    """
    epochs = {index: step.options.get("epochs", _parameters(step.name)["epochs"].default)
              for index, step in enumerate(recipe.passes) if "recovery_time" in _parameters(step.name)}
    total = sum(epochs.values()) or 1
    steps = tuple(Step(step.name, {**step.options, "recovery_time": round(seconds * epochs[index] / total, 1),
                                   "epochs": max(epochs[index], TIMED_EPOCHS)})
                  if index in epochs else step for index, step in enumerate(recipe.passes))
    return replace(recipe, passes=steps)


def _parameters(pass_name: str) -> dict:
    return inspect.signature(get_pass(pass_name)).parameters


def _step(entry) -> Step:
    if not isinstance(entry, dict) or "pass" not in entry:
        raise UnknownOptionError('each [[passes]] entry needs pass = "NAME"')
    options = {key: value for key, value in entry.items() if key != "pass"}
    get_pass(entry["pass"])  # unknown pass names list the valid ones
    check_options(entry["pass"], options)
    return Step(entry["pass"], options)
