"""What a plan runs for the opcodes of a ``match`` statement, exactly as the interpreter runs them.

A compiled ``match`` is a chain of branches (``compiler.matching``) whose conditions and captured
values are glue over these functions (``compiler.glue``: ``match_mapping``, ``match_sequence``,
``match_keys``, ``match_class``, ``match_rest``, ``unpack``). Each does what its opcode does, with the
same exceptions and messages: the mapping and sequence tests read the type flags the interpreter reads
(``str``, ``bytes`` and ``bytearray`` are not sequences), ``match_keys`` looks keys up with
``subject.get(key, <missing>)``, and ``match_class`` and ``unpack`` run the very opcode, in a function
compiled once per shape (``case cls(a, b, x=c)``, ``a, *b, c = subject``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

MAPPING_FLAG, SEQUENCE_FLAG = 1 << 6, 1 << 5  # Py_TPFLAGS_MAPPING, Py_TPFLAGS_SEQUENCE
_MISSING = object()


def is_mapping(subject: Any) -> bool:
    """MATCH_MAPPING: whether a mapping pattern may match ``subject``."""
    return bool(type(subject).__flags__ & MAPPING_FLAG)


def is_sequence(subject: Any) -> bool:
    """MATCH_SEQUENCE: whether a sequence pattern may match ``subject``."""
    return bool(type(subject).__flags__ & SEQUENCE_FLAG)


def match_keys(subject: Any, keys: tuple) -> tuple | None:
    """MATCH_KEYS: the values of ``keys`` in the mapping ``subject``, or None when one is missing."""
    if not keys:
        return ()
    get = subject.get
    seen: set = set()
    found = []
    for key in keys:
        if key in seen:
            raise ValueError(f"mapping pattern checks duplicate key ({key!r})")
        seen.add(key)
        value = get(key, _MISSING)
        if value is _MISSING:
            return None
        found.append(value)
    return tuple(found)


def match_rest(subject: Any, keys: tuple) -> dict:
    """A mapping pattern's ``**rest``: a copy of ``subject`` without the pattern's keys."""
    rest = {**subject}
    for key in keys:
        del rest[key]
    return rest


def match_class(subject: Any, cls: Any, count: int, names: tuple[str, ...]) -> tuple | None:
    """MATCH_CLASS: ``subject``'s attributes for ``count`` positional sub-patterns and the keyword
    ``names`` of ``case cls(...)``, or None when it does not match."""
    return _class_matcher(count, names)(subject, cls)


def unpack(subject: Any, before: int, after: int) -> tuple:
    """UNPACK_EX: ``a, *b, c = subject`` with ``before`` and ``after`` names around the starred one."""
    return _unpacker(before, after)(subject)


@lru_cache(maxsize=256)
def _class_matcher(count: int, names: tuple[str, ...]) -> Callable[[Any, Any], tuple | None]:
    subs = [f"_{i}" for i in range(count)] + [f"{name}=_{count + i}" for i, name in enumerate(names)]
    captured = "".join(f"_{i}, " for i in range(count + len(names)))
    return _define("attributes", (
        "def attributes(subject, cls):\n"
        "    match subject:\n"
        f"        case cls({', '.join(subs)}):\n"
        f"            return ({captured})\n"
        "    return None\n"
    ))


@lru_cache(maxsize=256)
def _unpacker(before: int, after: int) -> Callable[[Any], tuple]:
    names = [f"_{i}" for i in range(before)] + ["*_m"] + [f"_{before + i}" for i in range(after)]
    values = [f"_{i}" for i in range(before)] + ["_m"] + [f"_{before + i}" for i in range(after)]
    return _define("unpack", f"def unpack(subject):\n    {', '.join(names)}, = subject\n    return ({', '.join(values)},)\n")


def _define(name: str, text: str) -> Callable:
    namespace: dict[str, Any] = {}
    exec(compile(text, f"<match: {name}>", "exec"), namespace)  # noqa: S102 - text built from counts and identifiers
    return namespace[name]
