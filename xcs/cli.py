"""The ``xcs`` command (also ``python -m xcs``): ``xcs dump`` prints a plan (or its Mermaid picture),
``xcs run`` runs an operator eager and compiled and reports honest timings, ``xcs explain`` says how it
compiles, ``xcs cache ls|info|clear|prune`` inspects and maintains the disk plan cache.

A target is ``FILE.py:NAME`` where NAME is an Operator class (constructed with ``--init``), a
module-level operator instance, or a jitted ``*, inputs`` function. A mistake on the command line (a
bad target, ``--init`` or ``--input``, a constructor that fails) exits 2 with one line on stderr; an
error of the operator exits 1 with one line; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import os
import re
import statistics
import sys
import time
from typing import Any, Sequence

import xcs
from xcs.compiler.diagram import plural, shape
from xcs.compiler.disk_cache import Unsafe, parse_size
from xcs.runtime.errors import XCSError
from xcs.runtime.options import execution_options
from xcs import explain
from xcs.plans import JitConfig, JittedFunction, compiled, dump, mermaid
from xcs.operator import Operator, check_output, is_operator


class UsageError(Exception):
    """A mistake on the command line: ``xcs`` exits 2 with this one line."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (exit 2), pointing at ``--help``."""

    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def load_target(spec: str, init: Any = None) -> Any:
    """The operator (or jitted function) that ``FILE.py:NAME`` names; classes are built with ``init``
    (a list of positional or a dict of keyword arguments). ``UsageError`` says what was wrong."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path.endswith(".py") or not name:
        raise UsageError(f"target must look like FILE.py:NAME, got {spec!r}")
    if not os.path.isfile(path):
        raise UsageError(f"no such file: {path} (target {spec!r})")
    module = _import_file(path)
    target = getattr(module, name, None)
    if target is None:
        known = sorted(n for n, v in vars(module).items() if _is_target(v) and getattr(v, "__module__", module.__name__) == module.__name__)
        raise UsageError(f"{path} defines no {name!r}; its targets: {', '.join(known) or 'none'}")
    if isinstance(target, type) and issubclass(target, Operator):
        return _construct(target, name, init)
    if init is not None:
        raise UsageError(f"--init is only for Operator classes; {name} is a {type(target).__name__}")
    if isinstance(target, (Operator, JittedFunction)):
        return target
    raise UsageError(f"{name} is a {type(target).__name__}: expected an Operator class, an operator instance or a jitted function")


def _is_target(value: Any) -> bool:
    return isinstance(value, (Operator, JittedFunction)) or (isinstance(value, type) and issubclass(value, Operator) and value is not Operator)


def _construct(cls: type, name: str, init: Any) -> Any:
    if init is None:
        args, kwargs = [], {}
    elif isinstance(init, list):
        args, kwargs = init, {}
    elif isinstance(init, dict):
        args, kwargs = [], init
    else:
        raise UsageError(f"--init must be a JSON list (positional arguments) or object (keyword arguments), got {type(init).__name__}")
    try:
        return cls(*args, **kwargs)
    except Exception as exc:
        try:
            params = str(inspect.signature(cls.__init__)).replace("(self, ", "(").replace("(self)", "()")
        except (TypeError, ValueError):
            params = "(...)"
        given = "no --init" if init is None else f"--init {json.dumps(init)}"
        raise UsageError(
            f"{name}{params} cannot be built with {given}: {type(exc).__name__}: {exc}"
        ) from exc


def _import_file(path: str) -> Any:
    """Import the file ``path`` itself, never a module of the same name elsewhere (``operator.py`` is
    not the standard library's). Below the working directory it is imported under its dotted name
    (``examples/rag.py`` as ``examples.rag``) when that name finds this very file, so it can import its
    package's siblings; otherwise it is loaded from its path under a name no other module has."""
    full = os.path.abspath(path)
    cwd = os.getcwd()
    try:
        if full.startswith(cwd + os.sep):
            dotted = os.path.relpath(full, cwd)[:-3].replace(os.sep, ".")
            if all(part.isidentifier() for part in dotted.split(".")):
                if cwd not in sys.path:
                    sys.path.append(cwd)
                if _origin(dotted) == full:
                    return importlib.import_module(dotted)
        stem = os.path.splitext(os.path.basename(full))[0]
        name = stem if stem.isidentifier() and _origin(stem) in (None, full) else "xcs_target_" + re.sub(r"\W", "_", stem)
        if os.path.dirname(full) not in sys.path:
            sys.path.append(os.path.dirname(full))  # its own imports of sibling modules
        spec = importlib.util.spec_from_file_location(name, full)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    except Exception as exc:
        raise UsageError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc


def _origin(name: str) -> str | None:
    """The file the module ``name`` would be imported from (None: not found)."""
    module = sys.modules.get(name)
    if module is not None:
        file = getattr(module, "__file__", None)
        return os.path.abspath(file) if file else "<built-in>"
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    return os.path.abspath(spec.origin) if spec.origin and spec.has_location else "<built-in>"


def _json(text: str | None, flag: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{flag} is not valid JSON ({exc}): expected e.g. {flag} '{{\"query\": \"hi\"}}'") from None


def _inputs(args: argparse.Namespace) -> dict:
    value = _json(args.input, "--input")
    if not isinstance(value, dict):
        raise UsageError(f"--input must be a JSON object (the operator's inputs), got {type(value).__name__}")
    for key in args.array:  # numeric kernels are compiled for numpy arrays (docs/numba.md)
        if key not in value:
            raise UsageError(f"--array {key}: --input has no key {key!r}; expected one of {sorted(value)}")
        import numpy

        value[key] = numpy.asarray(value[key])
    return value


def _target(args: argparse.Namespace) -> tuple[Any, dict]:
    init = _json(args.init, "--init")
    inputs = _inputs(args)
    return load_target(args.target, init), inputs


def cmd_explain(args: argparse.Namespace) -> int:
    op, inputs = _target(args)
    sys.stdout.write(str(explain(op, inputs, run=args.run)))
    return 0


def cmd_dump(args: argparse.Namespace) -> int:
    op, inputs = _target(args)
    if args.mermaid:
        sys.stdout.write(mermaid(op, inputs))
        return 0
    if args.passes:
        entry = compiled(op, inputs)
        for applied in entry.applied or ():
            print(f"# pass {applied.name}: {applied.summary or 'no change'}")
        if not entry.applied:
            print("# no passes: the plan comes from the " + ("disk cache" if entry.origin == "disk" else "trace or structural strategy"))
    sys.stdout.write(dump(op, inputs))
    return 0


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:10.3f} ms"


def _timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _median(fn: Any, n: int) -> float:
    return statistics.median(_timed(fn)[1] for _ in range(n))


def endpoints(op: Any, depth: int = 0) -> list[str]:
    """The ``base_url`` of every client object an operator (or its sub-operators) holds: where its
    model calls go (the examples' embedded server listens on loopback)."""
    found: set[str] = set()
    if depth > 8:
        return []
    values = list(vars(op).values()) if hasattr(op, "__dict__") else []
    while values:
        value = values.pop()
        if is_operator(value):
            found.update(endpoints(value, depth + 1))
        elif isinstance(value, (list, tuple)):
            values.extend(value)
        elif isinstance(value, dict):
            values.extend(value.values())
        elif isinstance(getattr(value, "base_url", None), str):
            found.add(value.base_url)
    return sorted(found)


def report(op: Any, inputs: dict, calls: int = 20, scheduler: str = "auto") -> tuple[str, Any, Any]:
    """Run ``op`` on ``inputs`` eagerly and compiled: ``(report text, compiled result, eager result)``.

    The report gives the plan file and shape, the endpoints the operator calls, each first (cold) call,
    and the median of ``calls`` warm calls of each, side by side (what ``xcs run`` prints)."""
    config = getattr(op, "__xcs_jit__", None) or JitConfig()
    forward = config.forward_of(op)

    def eager() -> Any:
        return check_output(op, forward(inputs=inputs))

    def call() -> Any:
        return config.call(op, inputs)

    with execution_options(scheduler=scheduler):
        expected, eager_cold = _timed(eager)
        (result, entry), compiled_cold = _timed(lambda: config.run(op, inputs))
        eager_warm = _median(eager, calls)
        compiled_warm = _median(call, calls)
    plan = entry.plan
    how = {"disk": "loaded from the disk cache", "capture": "captured and compiled"}.get(entry.origin, entry.origin)
    lines = [f"plan file:     {getattr(plan, 'filename', '') or '(none: runs eagerly: ' + str(plan) + ')'}"]
    if hasattr(plan, "steps"):
        lines.append(f"plan:          {shape(plan)}")
    lines += [f"endpoint:      {url}" for url in endpoints(op)]
    lines += [
        f"eager cold:    {_ms(eager_cold)}  (first call)",
        f"compiled cold: {_ms(compiled_cold)}  (first call: {how})",
        f"eager warm:    {_ms(eager_warm)}  (median of {plural(calls, 'call')})",
        f"compiled warm: {_ms(compiled_warm)}  (median of {plural(calls, 'call')}, scheduler={scheduler})",
        f"speed-up:      {eager_warm / max(compiled_warm, 1e-9):10.2f} x   (warm medians: eager / compiled)",
    ]
    return "\n".join(lines) + "\n", result, expected


def cmd_run(args: argparse.Namespace) -> int:
    op, inputs = _target(args)
    text, result, expected = report(op, inputs, args.calls, args.scheduler)
    sys.stdout.write(text)
    print(json.dumps(result, indent=2, default=repr))
    if result != expected:
        print("xcs: compiled output differs from eager output", file=sys.stderr)
        return 1
    return 0


def _disk(args: argparse.Namespace) -> Any:
    from xcs.compiler.disk_cache import disk_cache

    return disk_cache(args.dir)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def cmd_cache_ls(args: argparse.Namespace) -> int:
    """One line per cached key: version, last use, size, plans, operator, signature."""
    cache = _disk(args)
    rows = []
    for info in reversed(cache.keys()):  # most recently used first
        index = info.index or {}
        entries = index.get("entries", [])
        rows.append({
            "version": info.version,
            "last_used": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.last_used)) if info.last_used else "-",
            "bytes": info.size,
            "plans": sum(1 for e in entries if e.get("kind") == "plan"),
            "eager": any(e.get("kind") == "eager" for e in entries),
            "operator": index.get("label") or index.get("key", {}).get("operator") or info.stem,
            "signature": index.get("signature_text", "?"),
            "python": index.get("key", {}).get("python", "?"),
            "structure": index.get("key", {}).get("structure", "?"),
            "file": os.path.join(cache.root, info.version, info.stem + ".json"),
            "valid": info.valid,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"xcs cache: no plans in {cache.root}")
        return 0
    for row in rows:
        what = f"{row['plans']} plan(s)" + (" + eager" if row["eager"] else "") if row["valid"] else "INVALID INDEX"
        print(
            f"{row['last_used']}  {_size(row['bytes']):>10}  py{row['python']}  {row['version']:<8} "
            f"{row['operator']}  {row['signature']}  structure {row['structure']}  [{what}]"
        )
    return 0


def cmd_cache_info(args: argparse.Namespace) -> int:
    """The cache directory, its status, totals and bound."""
    info = _disk(args).info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for name, value in info.items():
        if name in ("bytes", "max_bytes"):
            value = f"{value} ({_size(value)})"
        print(f"{name + ':':<19}{value}")
    return 0


def cmd_cache_clear(args: argparse.Namespace) -> int:
    """Remove every plan, index and code file (all ember-xcs versions)."""
    cache = _disk(args)
    if not os.path.isdir(cache.root):
        print(f"xcs cache: nothing to clear ({cache.root} does not exist)")
        return 0
    try:
        removed = cache.clear()
    except Unsafe as exc:
        print(f"xcs cache: {exc}: refused", file=sys.stderr)
        return 1
    print(f"xcs cache: removed {removed} file(s) from {cache.root}")
    return 0


def cmd_cache_prune(args: argparse.Namespace) -> int:
    """Drop other versions' plans, broken entries, orphans and stale temporary files; evict to the bound."""
    cache = _disk(args)
    if not os.path.isdir(cache.root):
        print(f"xcs cache: nothing to prune ({cache.root} does not exist)")
        return 0
    try:
        counts = cache.prune(args.max_bytes)
    except Unsafe as exc:
        print(f"xcs cache: {exc}: refused", file=sys.stderr)
        return 1
    summary = ", ".join(f"{name.replace('_', ' ')}: {count}" for name, count in counts.items())
    print(f"xcs cache: pruned {cache.root} ({summary}); {_size(cache.total_bytes())} left")
    return 0


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of calls, got {text!r}")
    return int(text)


def _size_arg(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_cache_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    helptext = "inspect and maintain the disk plan cache (XCS_CACHE_DIR)"
    cache = sub.add_parser("cache", help=helptext, description=helptext, parents=[common])
    actions = cache.add_subparsers(dest="action", required=True)
    for name, fn in (("ls", cmd_cache_ls), ("info", cmd_cache_info), ("clear", cmd_cache_clear), ("prune", cmd_cache_prune)):
        cmd = actions.add_parser(name, help=fn.__doc__.split("\n")[0], description=fn.__doc__, parents=[common])
        cmd.add_argument("--dir", default=None, help="the cache directory (default: XCS_CACHE_DIR or the user cache dir)")
        if name in ("ls", "info"):
            cmd.add_argument("--json", action="store_true", help="print JSON")
        if name == "prune":
            cmd.add_argument(
                "--max-bytes", type=_size_arg, default=None,
                help="evict down to this size: bytes, or with K, M or G (default: XCS_CACHE_MAX_BYTES)",
            )
        cmd.set_defaults(fn=fn)


def parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    main_parser = Parser(prog="xcs", description=__doc__.split("\n")[0], parents=[common])
    main_parser.add_argument("--version", action="version", version=f"xcs (ember-xcs) {xcs.__version__}")
    sub = main_parser.add_subparsers(dest="command", required=True)
    for name, helptext, fn in (
        ("dump", "print the generated plan of TARGET for the signature of --input", cmd_dump),
        ("run", "run TARGET eagerly and compiled; print the plan, cold calls and warm medians", cmd_run),
        ("explain", "how TARGET compiles for --input: strategy, graph breaks, passes, graph summary", cmd_explain),
    ):
        cmd = sub.add_parser(name, help=helptext, description=helptext, parents=[common])
        cmd.add_argument("target", help="FILE.py:NAME (an Operator class or instance, or a jitted function)")
        cmd.add_argument("--input", required=True, help="the inputs, a JSON object")
        cmd.add_argument(
            "--init", default=None,
            help="constructor arguments of an Operator class: a JSON list (positional) or object (keywords)",
        )
        cmd.add_argument(
            "--array", action="append", default=[], metavar="KEY",
            help="pass input KEY as a numpy array (numpy.asarray of its JSON value); repeatable",
        )
        if name == "run":
            cmd.add_argument("--scheduler", default="auto", help="scheduler for the compiled calls (default: auto)")
            cmd.add_argument("--calls", type=_count, default=20, help="warm calls measured, eager and compiled (default: 20)")
        if name == "dump":
            cmd.add_argument("--passes", action="store_true", help="first list the optimisation passes and their effect")
            cmd.add_argument("--mermaid", action="store_true", help="print the plan as a Mermaid flowchart instead")
        if name == "explain":
            cmd.add_argument("--run", action="store_true", help="trace by running the call when no static strategy can")
        cmd.set_defaults(fn=fn)
    _add_cache_parser(sub, common)
    return main_parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        return args.fn(args)
    except UsageError as exc:
        if debug:
            raise
        print(f"xcs: {exc}", file=sys.stderr)
        return 2
    except XCSError as exc:
        if debug:
            raise
        print(f"xcs: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        if debug:
            raise
        print(f"xcs: {type(exc).__name__}: {_one_line(exc)} (--debug shows the traceback)", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
