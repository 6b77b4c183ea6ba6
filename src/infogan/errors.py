"""The one exception type for mistakes a user can fix (bad config, missing data, bad files), and
the checks that each config section uses to raise it."""

from __future__ import annotations

import reprlib
from typing import Any


class InfoGANError(Exception):
    """A problem with the user's input: the message says what was wrong and what to do."""


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, 60, 60


def short_repr(value: Any) -> str:
    """A short repr for error messages: a value from a hostile file can be huge (or, through YAML
    aliases, nested exponentially), so it is never printed whole."""
    return _SHORT.repr(value)


def require(condition: bool, key: str, message: str) -> None:
    """Raise `config: KEY MESSAGE` unless `condition` holds."""
    if not condition:
        raise InfoGANError(f"config: {key} {message}")


def require_choice(value: str, choices: tuple[str, ...], key: str) -> None:
    require(value in choices, key, f"is {short_repr(value)}; choose one of {', '.join(choices)}")
