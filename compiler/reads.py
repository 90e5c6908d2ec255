"""Input reads a plan makes that its signature does not guarantee, checked before any step runs.

``input_reads`` finds, in a plan's text, the constant key paths its ``run`` reads from the inputs on
every call (``inputs["doc"]["title"]``, ``inputs["items"][5]``) below what the signature fixes;
``check_reads`` raises the named input error of the first one a call's inputs cannot satisfy, as eager
Python would have raised it, before anything runs.
"""

from __future__ import annotations

import ast
from typing import Any, Mapping

from xcs.runtime.errors import InputIndexError, InputKeyError, OperatorInputError


def input_reads(source: str, sig: tuple) -> tuple:
    """The constant key paths (``("doc", "title")``, ``("items", 5)``) the plan's ``run`` reads from its
    inputs on every call, before its first branch or loop, that ``sig`` does not guarantee: a read
    below a leaf of the signature (an index into an input list, a key of a value typed ``str``, a
    mapping deeper than the signature follows). ``check_reads`` checks them before any step runs."""
    try:
        module = ast.parse(source)
    except (SyntaxError, ValueError):
        return ()
    run = next((n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "run"), None)
    if run is None or not run.args.args or run.args.args[-1].arg != "inputs":
        return ()
    found: list[tuple] = []
    for stmt in run.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr, ast.Return)):
            if stmt.value is not None:
                _reads(stmt.value, found)
            if isinstance(stmt, ast.Return):
                break
        else:  # a branch, loop, try or with: what follows it may not run
            for part in (getattr(stmt, "test", None), getattr(stmt, "iter", None)):
                if part is not None:
                    _reads(part, found)
            break
    reads = []
    for path in found:
        if path not in reads and not _fixed(sig, path):
            reads.append(path)
    return tuple(reads)


def _reads(node: ast.AST, found: list) -> None:
    """The input paths ``node`` reads whenever it is evaluated (short-circuited parts left out)."""
    if isinstance(node, ast.Subscript):
        path = _input_path(node)
        if path is not None:
            found.append(path)
            return
    if isinstance(node, ast.BoolOp):
        return _reads(node.values[0], found)
    if isinstance(node, ast.IfExp):
        return _reads(node.test, found)
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return _reads(node.generators[0].iter, found)
    if isinstance(node, ast.Lambda):
        return None
    for child in ast.iter_child_nodes(node):
        _reads(child, found)


def _input_path(node: ast.AST) -> tuple | None:
    keys = []
    while isinstance(node, ast.Subscript):
        index = node.slice
        if isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.USub) and isinstance(index.operand, ast.Constant):
            index = ast.Constant(-index.operand.value)
        if not isinstance(index, ast.Constant) or isinstance(index.value, (slice, type(Ellipsis))):
            return None
        keys.append(index.value)
        node = node.value
    if not (isinstance(node, ast.Name) and node.id == "inputs"):
        return None
    return tuple(reversed(keys))


def _fixed(sig: tuple, path: tuple) -> bool:
    """Whether every input with signature ``sig`` has ``path`` (its mappings' keys are in the signature)."""
    level = sig
    for depth, key in enumerate(path):
        leaf = next((value for name, value in level if name == key and type(name) is type(key)), None)
        if leaf is None:
            return False
        if depth == len(path) - 1:
            return True
        if not (isinstance(leaf, tuple) and len(leaf) == 2 and isinstance(leaf[1], tuple)):
            return False  # a leaf: what is below it is not in the signature
        level = leaf[1]
    return True


def check_reads(operator: str, reads: tuple, inputs: Mapping[str, Any]) -> None:
    """Raise the error of the first of ``reads`` (``input_reads``) that ``inputs`` cannot satisfy,
    naming its key path and the operator, before any step runs."""
    for path in reads:
        value = inputs
        try:
            for key in path:
                value = value[key]
        except Exception:
            error = input_read_error(operator, inputs, path)
            if error is not None:
                raise error from None


def input_read_error(operator: str, inputs: Any, path: tuple) -> OperatorInputError | None:
    """The error reading ``path`` (``("doc", "title")``) from ``inputs`` raises, naming the key path and
    the operator, or None when the read succeeds (or fails in user code: a raising ``__getitem__``).

    A missing key is an ``InputKeyError`` (a ``KeyError``), an index past the end of a list or tuple an
    ``InputIndexError`` (an ``IndexError``), a read from a value that cannot be indexed by the key (a
    ``str`` where a mapping is read) an ``OperatorInputError`` (a ``TypeError``): the types the read
    raises eagerly, so ``except`` clauses behave alike with and without ``jit``."""
    value, text = inputs, "inputs"
    for depth, key in enumerate(path):
        where, text = text, f"{text}[{key!r}]"
        read = tuple(path[: depth + 1])
        if isinstance(value, Mapping):
            try:
                present = key in value
            except Exception:
                return None
            if not present and not hasattr(type(value), "__missing__"):  # a defaultdict reads any key
                have = _keys_text(value)
                if depth == 0:
                    return InputKeyError(f"{operator}: missing input key {key!r} (inputs have: {have})", read)
                return InputKeyError(f"{operator}: missing input key {text} ({where} has: {have})", read)
        elif type(value) in (list, tuple) and type(key) is int:
            if not -len(value) <= key < len(value):
                return InputIndexError(
                    f"{operator}: input index out of range: {text} ({where} has {len(value)} items)", read
                )
        try:
            value = value[key]
        except TypeError:
            return OperatorInputError(
                f"{operator}: cannot read {text}: {where} is a {type(value).__name__}, not a mapping"
            )
        except Exception:
            return None
    return None


def _keys_text(mapping: Mapping, limit: int = 20) -> str:
    keys = []
    for key in mapping:
        if len(keys) == limit:
            return ", ".join(keys) + f", ... ({len(mapping)} keys)"
        try:
            keys.append(repr(key))
        except Exception:  # a key whose __repr__ raises
            keys.append(f"<{type(key).__name__}>")
    return ", ".join(keys) or "no keys"
