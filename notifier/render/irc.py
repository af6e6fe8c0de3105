"""IRC formatting for templates: mIRC colour and bold codes that content cannot forge.

In the IRC templates, every ``{{ ... }}`` value passes through
:func:`finalize`, which removes all control characters from it. Only the
filters below emit formatting codes, and their output is marked
:class:`IrcCode` so that it passes unchanged::

    {{ message.app|bold }} {{ message.summary }} {{ message.link|colour("blue") }}

Joining a code to other text inside one expression (``{{ a|bold ~ b }}``)
gives a plain string again, whose codes are then removed: put each
formatted piece in its own ``{{ }}``.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Undefined

from .text import irc_data

BOLD = "\x02"
COLOUR = "\x03"
_EMPTY = BOLD + BOLD

#: the 16 mIRC colours
COLOURS = {
    "white": 0, "black": 1, "blue": 2, "green": 3, "red": 4, "brown": 5, "purple": 6,
    "orange": 7, "yellow": 8, "lightgreen": 9, "cyan": 10, "lightcyan": 11,
    "lightblue": 12, "pink": 13, "grey": 14, "gray": 14, "lightgrey": 15, "lightgray": 15,
}


class IrcCode(str):
    """Text made by a formatting filter: its codes are the template's, not the content's."""

    __slots__ = ()


def _text(value: Any) -> str:
    if isinstance(value, IrcCode):
        return value  # nested filters: {{ x|colour("red")|bold }}
    if isinstance(value, Undefined):
        str(value)  # a StrictUndefined raises here, naming what is missing
    return irc_data("" if value is None else str(value))


def finalize(value: Any) -> Any:
    """Strip control characters from every value a template prints, except :class:`IrcCode`."""
    if isinstance(value, IrcCode) or isinstance(value, Undefined):
        return value
    if value is None:
        return ""
    return irc_data(str(value))


def bold(value: Any) -> IrcCode:
    """``value`` in bold."""
    text = _text(value)
    return IrcCode(f"{BOLD}{text}{BOLD}") if text else IrcCode("")


def colour(value: Any, name: str | int) -> IrcCode:
    """``value`` in the mIRC colour ``name`` (``"red"``, ``"blue"``, ... or 0 to 15)."""
    if isinstance(name, int) and not isinstance(name, bool) and 0 <= name <= 15:
        number = name
    elif isinstance(name, str) and name.lower() in COLOURS:
        number = COLOURS[name.lower()]
    else:
        raise ValueError(f"unknown IRC colour {name!r}; use 0-15 or one of "
                         f"{', '.join(sorted(COLOURS))}")
    text = _text(value)
    if not text:
        return IrcCode("")
    # Clients read digits (and ",digits") right after a colour code as part of
    # it. The text may start with a comma, and whatever follows the closing code
    # may start with a digit: an empty bold toggle keeps both as they are.
    guard = _EMPTY if text[0] == "," else ""
    return IrcCode(f"{COLOUR}{number:02d}{guard}{text}{COLOUR}{_EMPTY}")


FILTERS = {"bold": bold, "colour": colour, "color": colour}
