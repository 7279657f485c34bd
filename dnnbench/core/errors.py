"""User-facing input errors.

Every bad value a user can type ends up as a `BadInput`: the CLI and the pytest front-end print its
message as one line and exit with code 2, without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class BadInput(ValueError):
    """One line naming the bad value and, where there is a list, the valid choices."""


def unknown_choice(what: str, value: object, choices: Iterable[object]) -> BadInput:
    """The standard message for a value that is not one of a fixed set of names."""
    listed = ", ".join(str(c) for c in choices)
    return BadInput(f"unknown {what} {value!r}; choose from: {listed}")
