"""Held state that operators share: which leaf operator calls a plan must order.

Operators are frozen, the objects they hold are not, and two operators may hold the same one: a
conversation memory that one sub-operator writes and another (or ``forward`` itself) reads, a usage
meter every call charges. ``Holdings`` walks the operator tree once per capture and records, for every
mutable object reachable through attributes (containers and plain objects, a few levels deep), which
operators hold it. A leaf operator that holds an object another operator also holds is:

- a *writer* when its ``forward`` may change held state (``writes``): the capture makes its call an
  effect, ordered in program order with every other effect and state read (``effects.order``);
- a *reader* otherwise: its call reads state, so it runs between the effects around it.

Leaves that share nothing, or share only objects none of them changes (one client object behind many
calls), still overlap freely.

Mutable class attributes count as held by every instance that reaches them (``class_state``): a cache
in a class body that all instances fill, a registry another class's methods read by the class's name.
Module globals count too (``globals_held``): an operator holds the mutable module-level containers
and library objects its methods name, and those named by the module-level functions they call (``MAX_CALLS`` levels). A global
is ordered when an operator holding it changes it and one reads it (or the jitted operator itself
names it): a leaf appending to a module-level history that another leaf reads is an effect, its reader
a state read; leaves sharing a module-level cache (each reads and fills it) are effects. Operators
that change a global only blindly (``USAGE["n"] += k``, ``LOG.append(x)``: a usage meter or event
log every call charges) are not ordered with each other, nor are operators that only read one:
eager's order of those changes is not kept (hold such state as an attribute to order it). Not covered: a module-level instance of the user's own class, rebinding a
global (``global n; n += 1``), state reached through another module's attribute (``state.CACHE``) or
through a library's functions.

``writes`` reads source with the standard library's ``ast``: an assignment to, or deletion of, an
attribute or item of something ``self`` holds; a mutating method called on it (``append``,
``update``, ...); a method of a user-defined class called on it, followed into that method (a few
levels); a held mutable object passed to a function other than a known-pure builtin. Methods of
library classes change state when their name says so (``add_texts``, ``set``, ``reset``, ...). No
source: it may write. Identities (``id``) are used while walking only; what the structure hash sees
is paths (``shared_paths``).
"""

from __future__ import annotations

import ast
import builtins
import inspect
import sys
import textwrap
import types
from functools import lru_cache
from typing import Any, Callable

from xcs.compiler.signature import LEAF_TYPES

MAX_DEPTH = 4  # attribute/container levels followed below an operator
MAX_ITEMS = 64  # items of one container followed
MAX_CALLS = 3  # levels of methods followed by ``writes``
MUTATORS = frozenset(
    "append extend insert pop popitem remove clear update setdefault add discard sort reverse appendleft "
    "extendleft rotate put put_nowait write writelines __setitem__ __delitem__ __iadd__".split()
)
WRITE_PREFIXES = (
    "add", "append", "extend", "insert", "update", "set", "put", "push", "write", "save", "store", "delete",
    "remove", "pop", "clear", "reset", "register", "upsert", "record", "charge", "incr", "commit", "flush",
)
PURE_BUILTINS = frozenset(
    "len str repr int float bool list tuple dict set frozenset sorted min max sum any all isinstance "
    "enumerate zip reversed iter format print hash id type".split()
)
_OPAQUE = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType, type)


class Holdings:
    """Who holds what under ``root``; ``role(op)`` says how a call of the leaf ``op`` is ordered."""

    def __init__(self, root: Any, is_operator: Callable[[Any], bool], library: Callable[[str], bool] = lambda filename: False):
        self.is_operator, self.library = is_operator, library
        self.owners: dict[int, set[int]] = {}  # object -> the operators holding it
        self.paths: dict[int, str] = {}  # object or operator -> the first path it was reached by
        self.held: dict[int, list[Any]] = {}  # operator -> the objects it holds (below it, not below sub-operators)
        self.operators: dict[int, Any] = {}
        self.root = id(root)
        self.from_globals: dict[int, tuple[set[int], set[int]]] = {}  # a global -> (ops changing, ops reading it)
        self._keep: list[Any] = []  # every object walked stays alive while its id is a key here
        self._operator(root, "self")

    def _operator(self, op: Any, path: str) -> None:
        if id(op) in self.operators:
            return
        self.operators[id(op)] = op
        self.paths[id(op)] = path
        self.held[id(op)] = []
        for name, attr in tuple(getattr(op, "__dict__", {}).items()):
            if not name.startswith(("_xcs", "__xcs")):
                self._value(attr, f"{path}.{name}", op, 0)
        for name, value in class_state(type(op), self.library):  # ordered like attributes
            self._value(value, name, op, 0)
        for name, value, changes, reads in globals_held(type(op), self.library):
            uses = self.from_globals.setdefault(id(value), (set(), set()))
            for who, used in zip(uses, (changes, reads)):
                who.update((id(op),) if used else ())
            self._value(value, name, op, 0, uses)

    def _value(self, value: Any, path: str, owner: Any, depth: int, uses: Any = None) -> None:
        """Walk ``value`` held by ``owner``; ``uses``: it is (inside) a module global, which these
        operators change and read."""
        if self.is_operator(value):
            self._operator(value, path)
            return
        if _is_value(value) or depth > MAX_DEPTH:
            return
        key = id(value)
        if uses is not None:
            self.from_globals.setdefault(key, uses)
        holders = self.owners.setdefault(key, set())
        if not holders:
            self._keep.append(value)
            self.paths[key] = path
        if id(owner) in holders:
            return
        holders.add(id(owner))
        self.held[id(owner)].append(value)
        if isinstance(value, dict):
            items = [(repr(k), v) for k, v in list(value.items())[:MAX_ITEMS]]
        elif isinstance(value, (list, tuple, set, frozenset)):
            items = [(str(i), v) for i, v in enumerate(list(value)[:MAX_ITEMS])]
        else:
            items = [(f".{k}", v) for k, v in list(getattr(value, "__dict__", {}).items())[:MAX_ITEMS]]
        for label, item in items:
            self._value(item, f"{path}[{label}]" if not label.startswith(".") else path + label, owner, depth + 1, uses)

    def role(self, op: Any) -> str:
        """``"writes"``, ``"reads"`` or ``""`` (shares nothing that needs an order): how a call of the
        leaf ``op`` is ordered."""
        shared = [v for v in self.held.get(id(op), ()) if len(self.owners[id(v)]) > 1 and self._ordered(v)]
        if not shared:
            return ""
        changes_global = any(id(op) in self.from_globals.get(id(v), ((),))[0] for v in shared)
        return "writes" if changes_global or writes(op, "forward", self.library) else "reads"

    def _ordered(self, value: Any) -> bool:
        """Held through an attribute; or a global that an operator holding it changes and one (or the
        jitted operator itself) reads."""
        uses = self.from_globals.get(id(value))
        return uses is None or bool(uses[0]) and (bool(uses[1]) or self.root in self.owners[id(value)])

    def shared_paths(self) -> list[str]:
        """``"self.writer~self.memory"`` per operator holding a shared object (by the object's first
        path): what the structure hash adds, so a plan is never reused for a tree shared differently."""
        out = []
        for key, op in self.operators.items():
            for value in self.held[key]:
                if len(self.owners[id(value)]) > 1 and self._ordered(value):
                    out.append(f"{self.paths[key]}~{self.paths[id(value)]}")
        return out


# ---------------------------------------------------------------------- module globals
def _user_function(value: Any, library: Callable[[str], bool]) -> bool:
    """A function of the user's code (not the standard library's, a package's or ember-xcs's own)."""
    return (isinstance(value, types.FunctionType) and not library(value.__code__.co_filename)
            and not (value.__module__ or "").startswith("xcs."))


@lru_cache(maxsize=4096)
def _names(code: types.CodeType) -> tuple[str, ...]:
    """The global (and attribute) names ``code`` and the code nested in it use."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.update(_names(const))
    return tuple(sorted(names))


def _functions(cls: type, library: Callable[[str], bool]) -> list[tuple[types.FunctionType, list[tuple[str, Any]]]]:
    """The user-code methods of ``cls`` and the module-level user functions they call (``MAX_CALLS``
    levels), each with the ``(name, value)`` of the other module globals it names."""
    out = []
    todo = [(getattr(f, "__func__", f), 0) for klass in cls.__mro__ for f in vars(klass).values()]
    seen: set[Any] = set()
    while todo:
        func, depth = todo.pop()
        if not _user_function(func, library) or func.__code__ in seen:
            continue
        seen.add(func.__code__)
        scope, local, named = func.__globals__, set(func.__code__.co_varnames), []
        for name in _names(func.__code__):
            value = scope.get(name, _UNKNOWN)
            if name in local or value is _UNKNOWN:
                continue
            if _user_function(value, library):
                todo += [(value, depth + 1)] if depth + 1 < MAX_CALLS else []
            else:
                named.append((name, value))
        out.append((func, named))
    return out


def globals_held(cls: type, library: Callable[[str], bool]) -> list[tuple[str, Any, bool, bool]]:
    """``("module.NAME", object, changes, reads)`` per mutable module global that the user-code methods
    of ``cls`` name, directly or through the module-level functions they call, in name order: whether
    one of those functions may change it, and whether one reads it (``_uses``). Containers and library
    objects only: an instance of the user's own class (a recorder whose methods log and look up) is
    judged as one object, too coarse to tell its fields apart, so it is left out."""
    found: dict[str, list[Any]] = {}
    for func, named in _functions(cls, library):
        for name, value in named:
            if not _is_value(value) and not _user_class(type(value), library):
                entry = found.setdefault(f"{func.__module__}.{name}", [value, False, False])
                changes, reads = _uses(func, name, value, library)
                entry[1], entry[2] = entry[1] or changes, entry[2] or reads
    return [(path, *entry) for path, entry in sorted(found.items(), key=lambda item: item[0])]


def class_state(cls: type, library: Callable[[str], bool]) -> list[tuple[str, Any]]:
    """``("module.Class.attr", object)`` per mutable class attribute an instance of ``cls`` reaches:
    those of its own user-code classes (``self.cache`` where ``cache = {}`` is in the class body), and
    those its methods name on another user class (``Registry.tools``), in path order."""
    found: dict[str, Any] = {}
    for klass in cls.__mro__:
        if _user_class(klass, library):
            for name, value in _class_attributes(klass):
                found.setdefault(f"{klass.__module__}.{klass.__qualname__}.{name}", value)
    for func, named in _functions(cls, library):
        names = set(_names(func.__code__))
        for _, value in named:
            if _user_class(value, library):
                for name, attr in _class_attributes(value):
                    if name in names:
                        found.setdefault(f"{value.__module__}.{value.__qualname__}.{name}", attr)
    return sorted(found.items(), key=lambda item: item[0])


def _user_class(value: Any, library: Callable[[str], bool]) -> bool:
    if not isinstance(value, type) or (value.__module__ or "").startswith(("xcs.", "builtins")):
        return False
    file = getattr(sys.modules.get(value.__module__), "__file__", None)
    return bool(file) and not library(file)


def _class_attributes(klass: type) -> list[tuple[str, Any]]:
    """The mutable values a class body binds (not its methods, properties or descriptors)."""
    return [(name, value) for name, value in vars(klass).items()
            if not name.startswith("__") and not _is_value(value)
            and not isinstance(value, (staticmethod, classmethod, property, types.MemberDescriptorType,
                                       types.GetSetDescriptorType))]


def _uses(func: types.FunctionType, name: str, value: Any, library: Callable[[str], bool]) -> tuple[bool, bool]:
    """Whether ``func`` may change the global ``name`` (bound to ``value``), and whether it reads it:
    any use but a blind change (an item or attribute assigned, augmented or deleted, a mutating method
    whose result is dropped: ``USAGE["n"] += 1``, ``LOG.append(x)``, an item computed from itself:
    ``COUNTS[k] = COUNTS.get(k, 0) + 1``). No source: it may do both."""
    tree = _function_ast(func.__code__)
    if tree is None:
        return True, True
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def blind(node: ast.AST) -> bool:
        up = parents.get(node)
        if isinstance(up, (ast.Subscript, ast.Attribute)) and up.value is node:
            if isinstance(up.ctx, (ast.Store, ast.Del)):
                return True
            call = parents.get(up)
            return (isinstance(up, ast.Attribute) and up.attr in MUTATORS and isinstance(call, ast.Call)
                    and call.func is up and isinstance(parents.get(call), ast.Expr)) or counted(node)
        return False

    def counted(node: ast.AST) -> bool:
        """``COUNTS[k] = COUNTS.get(k, 0) + 1``: a read that only computes the item it stores (a counter)."""
        while node in parents and not isinstance(node, ast.stmt):
            node = parents[node]
        return isinstance(node, ast.Assign) and all(
            isinstance(t, (ast.Subscript, ast.Attribute)) and isinstance(t.value, ast.Name) and t.value.id == name
            for t in node.targets)

    uses = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == name]
    return _Scan(value, name, library, 1).run(tree), any(not blind(n) for n in uses)


# ---------------------------------------------------------------------- may a method write?
def writes(obj: Any, method: str, library: Callable[[str], bool], depth: int = 0) -> bool:
    """Whether calling ``obj.method(...)`` may change an object ``obj`` holds (or ``obj`` itself)."""
    func = inspect.getattr_static(type(obj), method, None)
    if isinstance(func, (staticmethod, classmethod)):
        func = func.__func__
    if not isinstance(func, types.FunctionType):  # a builtin type's method: list.append, dict.get ...
        return method in MUTATORS or (func is None and method.startswith(WRITE_PREFIXES))
    if depth and library(func.__code__.co_filename):  # a library object's method (an operator's own is read)
        return method in MUTATORS or method.startswith(WRITE_PREFIXES)
    if depth >= MAX_CALLS:
        return True
    tree = _function_ast(func.__code__)
    if tree is None or not tree.args.args:
        return True
    return _Scan(obj, tree.args.args[0].arg, library, depth).run(tree)


@lru_cache(maxsize=1024)
def _function_ast(code: types.CodeType) -> ast.FunctionDef | None:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(code)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    fn = tree.body[0] if tree.body else None
    return fn if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


class _Scan:
    """Searches one method's body for a change to what ``self`` (named ``name``) holds."""

    def __init__(self, obj: Any, name: str, library: Callable[[str], bool], depth: int):
        self.library, self.depth = library, depth
        self.roots: dict[str, tuple[Any, tuple[str, ...]]] = {name: (obj, ())}  # name -> (base, chain)
        self.found = False

    def chain(self, node: ast.AST) -> tuple[Any, tuple[str, ...]] | None:
        """``self.a.b`` -> ``(self's object, ("a", "b"))``; an item read ends the chain's known part
        (``"[]"``); None: not held state."""
        parts: list[str] = []
        while True:
            if isinstance(node, ast.Attribute):
                parts.append(node.attr)
                node = node.value
            elif isinstance(node, ast.Subscript):
                parts.append("[]")
                node = node.value
            elif isinstance(node, ast.Name) and node.id in self.roots:
                base, chain = self.roots[node.id]
                return base, chain + tuple(reversed(parts))
            else:
                return None

    @staticmethod
    def target(base: Any, chain: tuple[str, ...]) -> Any:
        value = base
        for part in chain:
            value = _UNKNOWN if part == "[]" else getattr(value, part, _UNKNOWN)
            if value is _UNKNOWN:
                return _UNKNOWN
        return value

    def run(self, fn: ast.AST) -> bool:
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                held = self.chain(node.value)
                if held is not None:  # ``memory = self.memory``: an alias of held state
                    self.roots[node.targets[0].id] = held
        for node in ast.walk(fn):
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
                targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                if any(isinstance(t, (ast.Attribute, ast.Subscript)) and self.chain(t) is not None for t in targets):
                    self.found = True
            elif isinstance(node, ast.Call):
                self.call(node)
        return self.found

    def follow(self, obj: Any, method: str) -> None:
        self.found = self.found or writes(obj, method, self.library, self.depth + 1)

    def call(self, node: ast.Call) -> None:
        func = node.func
        callee = self.chain(func)
        held = self.target(*callee) if callee is not None else _UNKNOWN
        if held is not _UNKNOWN and callable(getattr(held, "forward", None)):  # ``self.sub(inputs=...)``
            return self.follow(held, "forward")
        if isinstance(func, ast.Attribute):
            receiver = self.chain(func.value)
            if receiver is not None:
                held = self.target(*receiver)
                if held is _UNKNOWN:
                    self.found = self.found or func.attr in MUTATORS or func.attr.startswith(WRITE_PREFIXES)
                elif not _is_value(held):
                    self.follow(held, func.attr)
                return None
        if isinstance(func, ast.Name) and func.id in PURE_BUILTINS and hasattr(builtins, func.id):
            return None
        for arg in (*node.args, *(k.value for k in node.keywords)):  # held state handed to a function
            inner = arg.value if isinstance(arg, ast.Starred) else arg
            held_arg = self.chain(inner)
            if held_arg is not None and not self.settings(self.target(*held_arg)):
                self.found = True
        return None

    def settings(self, value: Any) -> bool:
        """Whether ``value`` handed to a function stays as it is: a literal, a function, a class, a
        module, or an instance of a library's class (a timeout, a retry policy: settings, not state)."""
        if value is _UNKNOWN:
            return False
        if _is_value(value):
            return True
        module = sys.modules.get(type(value).__module__)
        file = getattr(module, "__file__", None)
        return bool(file) and self.library(file)


def _is_value(value: Any) -> bool:
    """A literal, or something no call can change (a function, a class, a module)."""
    return value is not _UNKNOWN and (
        type(value) in LEAF_TYPES or isinstance(value, _OPAQUE)
        or (type(value) in (tuple, frozenset) and all(type(v) in LEAF_TYPES for v in value))
    )


_UNKNOWN = object()
