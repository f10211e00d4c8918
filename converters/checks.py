"""What a pass checks before any work: its option values, and whether it can take the model.

A recipe's passes are checked when the recipe is loaded (options) and when the
model is loaded (the model), so a bad value or an architecture a pass cannot take
fails in one line before the first pass trains anything.

>>> def check_strength(strength=1.0):
...     if strength < 0:
...         raise ValueError("strength must be >= 0")
>>> @checked(options=check_strength)
... def my_pass(model, data, strength=1.0):
...     return model
>>> my_pass.check_options is check_strength
True
"""

from __future__ import annotations

import inspect

from .errors import UnknownOptionError


def checked(options=None, model=None):
    """Attach ``options(**values)`` and ``model(model, **values)`` checks to a pass function.

    Each check receives only the options its signature names (defaults filled in from the pass's own).
    """

    def attach(pass_function):
        pass_function.check_options = options
        pass_function.check_model = model
        return pass_function

    return attach


def check_choice(option: str, value, choices) -> None:
    """Raise :class:`UnknownOptionError` listing the valid ``choices`` if ``value`` is not one of them."""
    if value not in choices:
        raise UnknownOptionError(f"unknown {option} {value!r}; valid: {', '.join(choices)}")


def run_check(check, values: dict, *leading):
    """Call ``check(*leading, **values)`` with the values its signature names and return what it returns
    (None for no check).

    An option check that trips over a value of the wrong type (a string where a number belongs) is an
    :class:`UnknownOptionError` naming the values; a model check's own errors pass through unchanged.
    """
    if check is None:
        return None
    accepted = inspect.signature(check).parameters
    chosen = {key: value for key, value in values.items() if key in accepted}
    if leading:
        return check(*leading, **chosen)
    try:
        return check(**chosen)
    except (TypeError, ValueError) as exc:
        shown = ", ".join(f"{key}={values[key]!r}" for key in accepted if key in values)
        raise UnknownOptionError(f"invalid option value(s) {shown}: {exc}") from None
