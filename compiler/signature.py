"""The input signature: ``Signature``, what a plan is specialised on besides the operator's structure.

A signature is the input mapping's keys in order, the nesting of its mappings and the type of every
leaf (arrays: type, dtype, ndim, and for numpy arrays the memory layout); never a value or an object identity. ``Signature`` is the tuple form
(hashable, the cache key's second part) with its readable ``text`` (plan headers, messages), its
``flat`` form (one canonical type text per key path), its ``canonical`` text (what the disk key
digests) and ``diff`` (how two signatures differ, for recompile warnings and cache-miss reasons).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cached_property
from typing import Any, Hashable

from xcs.compiler.ir import canonical_repr

LEAF_TYPES = (str, int, float, bool, type(None), bytes)
MAX_SIGNATURE_DEPTH = 32


class Signature(tuple):
    """``((key, leaf), ...)`` in input order; a leaf is a type, ``(type, dtype, ndim)`` for an array
    (``(type, dtype, ndim, layout)`` for a numpy array: ``"C"``, ``"F"`` or ``"A"`` contiguity, with
    ``" readonly"`` when it is not writeable: a numeric kernel is compiled for exactly that),
    or ``(mapping type, ((key, leaf), ...))`` for a nested mapping. Equal inputs' signatures are equal
    tuples, so a signature is a dictionary key as cheap as a plain tuple."""

    @classmethod
    def of(cls, inputs: Mapping[str, Any]) -> Signature:
        """The signature of ``inputs``. Nesting is followed ``MAX_SIGNATURE_DEPTH`` mappings deep: a
        mapping deeper than that, or one that contains itself (``d["self"] = d``), is summarised as its
        type, so the plan is not specialised on what is below it (a plan reads it at run time, as eager
        does)."""
        # a list: faster than a generator; a scalar's leaf (``_leaf``'s first case) without a call
        return cls([(key, kind if (kind := type(value)) in LEAF_TYPES else _leaf(value)) for key, value in inputs.items()])

    @property
    def text(self) -> str:
        """``{query: str, options: {k: int}}``: the readable form used in plan headers and messages. A
        key that is not a plain word, and a type name that is not a dotted identifier, is written as its
        ``repr`` (``{'a b': str, 'x\\ny': int}``): the text is one line and says which key it means."""
        return _text(self)

    @cached_property
    def flat(self) -> dict[str, str]:
        """``{"query": "str", "options": "dict", "options.k": "int"}``: one canonical text per leaf.

        The one treatment of scalars: ``bool``, ``int``, ``float``, ``str``, ``bytes`` and ``None`` are
        distinct leaf types (``True`` is not an ``int`` here, ``1`` is not a ``float``), subclasses are
        their own types, and values never appear. Arrays are ``type[dtype, ndim=N]``, numpy arrays
        ``numpy.ndarray[float64, ndim=1, layout=C]``. A key that is not a
        plain word is its ``repr`` (``"'a.b'"``, ``"1"`` for the int key), so paths of distinct
        signatures differ. Do not change the returned dict: it is computed once per signature."""
        return _flat(self, "")

    @property
    def canonical(self) -> str:
        """The signature as stable text (no ids, no hash-seed order): what the disk key digests."""
        return json.dumps(list(self.flat.items()), separators=(",", ":"))

    def diff(self, old: Signature | Mapping[str, str]) -> list[str]:
        """How this signature differs from ``old`` (a signature, or the ``flat`` form of one read back
        from the disk cache): ``["b: int -> float", "+c: str", "-d: int"]``."""
        new = self.flat
        if isinstance(old, Signature):
            old = old.flat
        changes = [f"{k}: {old[k]} -> {new[k]}" for k in new if k in old and old[k] != new[k]]
        changes += [f"+{k}: {new[k]}" for k in new if k not in old]
        changes += [f"-{k}: {old[k]}" for k in old if k not in new]
        return changes


def _leaf(value: Any, depth: int = 1, above: tuple = ()) -> Hashable:
    kind = type(value)
    if kind in LEAF_TYPES:
        return kind
    if kind is dict or isinstance(value, Mapping):
        if depth >= MAX_SIGNATURE_DEPTH:
            return kind
        for seen in above:
            if seen is value:
                return kind
        above += (value,)
        depth += 1
        return (kind, tuple((key, _leaf(item, depth, above)) for key, item in value.items()))
    return _array(value, kind)


_DTYPE_NAMES: dict[Any, str] = {}  # numpy dtype -> its text (``str(dtype)`` costs 2.5 us on numpy 2)


def _array(value: Any, kind: type) -> Hashable:
    """``(type, dtype, ndim)`` for an array-like value (one with ``dtype`` and ``shape``), plus the
    layout for a numpy array, else its type. A value whose ``dtype`` or ``shape`` cannot be read (a
    property that raises) is a plain object."""
    try:
        dtype = getattr(value, "dtype", None)
        if dtype is None or not hasattr(value, "shape"):
            return kind
        if kind.__module__ != "numpy" or kind.__name__ != "ndarray":
            return (kind, str(dtype), len(value.shape))
        name = _DTYPE_NAMES.get(dtype)
        if name is None:
            name = str(dtype)
            if dtype.isbuiltin == 1:  # numpy's own native dtypes: few, and their text is their type
                _DTYPE_NAMES[dtype] = name
        flags = value.flags
        layout = "C" if flags.c_contiguous else "F" if flags.f_contiguous else "A"
        return (kind, name, value.ndim, layout if flags.writeable else layout + " readonly")
    except Exception:
        return kind


def _text(sig: tuple) -> str:
    def leaf(value: Any) -> str:
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], tuple):
            return _text(value[1])
        if isinstance(value, tuple):
            return f"{_name_text(value[0].__name__)}[{_array_text(value)}]"
        return _name_text(value.__name__)

    return "{" + ", ".join(f"{_key_text(key)}: {leaf(value)}" for key, value in sig) + "}"


def _flat(sig: tuple, prefix: str) -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, leaf in sig:
        path = prefix + _key_text(key)
        if isinstance(leaf, tuple) and len(leaf) == 2 and isinstance(leaf[1], tuple):
            flat[path] = _type_name(leaf[0])
            flat.update(_flat(leaf[1], path + "."))
        elif isinstance(leaf, tuple):
            flat[path] = f"{_type_name(leaf[0])}[{_array_text(leaf)}]"
        else:
            flat[path] = _type_name(leaf)
    return flat


def _array_text(leaf: tuple) -> str:
    layout = f", layout={leaf[3].replace(' ', ', ')}" if len(leaf) > 3 else ""
    return f"{_name_text(leaf[1])}, ndim={leaf[2]}{layout}"


_PLAIN_KEY = re.compile(r"[^\W\d]\w*(?:-\w+)*")  # a word (``query``, ``max_tokens``, ``user-id``)
_DOTTED = re.compile(r"[^\W\d]\w*(?:\.[^\W\d]\w*)*")


def _key_text(key: Any) -> str:
    """A key as signature texts show it: plain words as they are, anything else as its ``repr``, so no
    two keys (``"1"`` and ``1``, ``"a.b"`` and ``a`` -> ``b``) read alike and no key breaks the line."""
    return key if isinstance(key, str) and _PLAIN_KEY.fullmatch(key) else canonical_repr(key)


def _name_text(name: Any) -> str:
    return name if isinstance(name, str) and _DOTTED.fullmatch(name) else canonical_repr(name)


def _type_name(kind: type) -> str:
    if kind is type(None):
        return "None"
    if kind.__module__ == "builtins":
        return _name_text(kind.__qualname__)
    return _name_text(f"{kind.__module__}.{kind.__qualname__}")
