"""User statements a plan runs as written (``compiler.segments``): ``segment`` compiles a plan file's text
of one with its line numbers in the user's file and the user module's globals, so it runs as it did in
``forward`` and a traceback through it shows the user's file and lines.
"""

from __future__ import annotations

import importlib
import sys
import types


class Unbound:
    """The value of a name a statement run as written left unbound (a loop that ran zero times)."""

    def __repr__(self) -> str:
        return "UNBOUND"


UNBOUND = Unbound()


def bound(names: dict, wanted: tuple[str, ...]) -> tuple:
    """The values of ``wanted`` in a segment's ``locals()``, ``UNBOUND`` for a name it did not bind."""
    return tuple(names.get(name, UNBOUND) for name in wanted)


def segment(module: str, line: int, name: str, text: str) -> types.FunctionType:
    """The function ``name`` defined by ``text`` (whose first line is line ``line`` of ``module``'s
    file), with ``module``'s globals."""
    mod = sys.modules.get(module) or importlib.import_module(module)
    filename = getattr(mod, "__file__", None) or f"<{module}>"
    code = compile("\n" * (line - 1) + text, filename, "exec")
    namespace: dict = {"_xcs_bound": bound}  # the text's default argument; its globals are the module's own
    exec(code, vars(mod), namespace)  # noqa: S102 - the user's own statements
    return namespace[name]
