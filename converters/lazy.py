"""Packages whose public names are imported on first use, so that importing the package (or one of its light
modules) loads neither Keras nor TensorFlow.

>>> import edgesmith.converters as converters
>>> converters.prune.__module__
'edgesmith.converters.prune'
"""

import importlib
import sys
import types


def lazy_exports(package: str, homes: dict) -> None:
    """Give the package ``package`` the names of ``homes`` (name -> the module defining it, e.g. ``".errors"``
    relative to the package), each imported on first use.

    A module named like a function it defines (``qat.py`` defines ``qat``) does not replace that function
    when it is imported, as the import system would otherwise do.
    """
    module = sys.modules[package]

    def __getattr__(name: str):
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name], package), name)
        setattr(module, name, value)
        return value

    module.__getattr__ = __getattr__
    module._lazy_homes = homes
    module.__class__ = _LazyPackage


class _LazyPackage(types.ModuleType):
    def __setattr__(self, name, value):
        if not (isinstance(value, types.ModuleType) and name in self.__dict__.get("_lazy_homes", ())):
            super().__setattr__(name, value)
