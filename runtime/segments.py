"""User statements a plan runs natively (``compiler.segments``): defined with their module's globals.

A plan file carries the text of each such function; ``segment`` compiles it with the line numbers it
has in the user's file and the user module's globals, so it runs exactly as the statement did inside
``forward`` and a traceback through it shows the user's file and lines.
"""

from __future__ import annotations

import importlib
import sys
import types


def segment(module: str, line: int, name: str, text: str) -> types.FunctionType:
    """The function ``name`` defined by ``text`` (whose first line is line ``line`` of ``module``'s
    file), with ``module``'s globals."""
    mod = sys.modules.get(module) or importlib.import_module(module)
    filename = getattr(mod, "__file__", None) or f"<{module}>"
    code = compile("\n" * (line - 1) + text, filename, "exec")
    namespace: dict = {}
    exec(code, vars(mod), namespace)
    return namespace[name]
