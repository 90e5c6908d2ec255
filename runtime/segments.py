"""User statements a plan runs natively (``compiler.segments``): defined with their module's globals;
``defined`` reads a variable a statement may have left unbound.

A plan file carries the text of each such function; ``segment`` compiles it with the line numbers it
has in the user's file and the user module's globals, so it runs exactly as the statement did inside
``forward`` and a traceback through it shows the user's file and lines.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class Unbound:
    """The value of a name a statement run as written left unbound (a loop that ran zero times)."""

    def __repr__(self) -> str:
        return "UNBOUND"


UNBOUND = Unbound()


def bound(names: dict, wanted: tuple[str, ...]) -> tuple:
    """The values of ``wanted`` in a segment's ``locals()``, ``UNBOUND`` for a name it did not bind."""
    return tuple(names.get(name, UNBOUND) for name in wanted)


def defined(value: Any, name: str) -> Any:
    """``value``, the value a statement (a loop, an ``if`` without ``else``, a ``try``) left in the local
    variable ``name``; when it left it unbound (``UNBOUND``), reading it raises (``unbound``)."""
    if value is UNBOUND:
        unbound(name)
    return value


def unbound(name: str) -> None:
    """Raise the ``UnboundLocalError`` Python raises reading the unbound local variable ``name``, with
    this interpreter's own message."""
    if not name.isidentifier():
        raise UnboundLocalError(name)
    namespace: dict = {}
    exec(f"def read():\n    {name}\n    {name} = None\n", namespace)  # noqa: S102 - an identifier only
    namespace["read"]()


def segment(module: str, line: int, name: str, text: str) -> types.FunctionType:
    """The function ``name`` defined by ``text`` (whose first line is line ``line`` of ``module``'s
    file), with ``module``'s globals."""
    mod = sys.modules.get(module) or importlib.import_module(module)
    filename = getattr(mod, "__file__", None) or f"<{module}>"
    code = compile("\n" * (line - 1) + text, filename, "exec")
    namespace: dict = {"_xcs_bound": bound}  # the text's default argument; its globals are the module's own
    exec(code, vars(mod), namespace)  # noqa: S102 - the user's own statements
    return namespace[name]
