"""The ``xcs`` command: ``xcs dump`` prints a plan, ``xcs run`` runs an operator eager and compiled,
``xcs cache ls|info|clear|prune`` inspects and maintains the disk plan cache.

A target is ``FILE.py:NAME`` where NAME is an Operator class (constructed with ``--init``), a
module-level operator instance, or a jitted ``*, inputs`` function.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import time
from typing import Any, Sequence

from xcs.compiler.disk_cache import Unsafe
from xcs.runtime.errors import XCSError
from xcs.runtime.options import execution_options
from xcs import explain
from xcs.plans import JitConfig, JittedFunction, compiled, dump
from xcs.operator import Operator, check_output


def load_target(spec: str, init: Any = None) -> Any:
    """The operator (or jitted function) that ``FILE.py:NAME`` names; classes are built with ``init``."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path.endswith(".py") or not name:
        raise SystemExit(f"xcs: target must look like FILE.py:NAME, got {spec!r}")
    if not os.path.isfile(path):
        raise SystemExit(f"xcs: no such file: {path}")
    module = _import_file(path)
    try:
        target = getattr(module, name)
    except AttributeError:
        raise SystemExit(f"xcs: {path} defines no {name!r}") from None
    if isinstance(target, type) and issubclass(target, Operator):
        args, kwargs = ([], init) if isinstance(init, dict) else (list(init or []), {})
        return target(*args, **kwargs)
    if init is not None:
        raise SystemExit(f"xcs: --init is only for Operator classes; {name} is a {type(target).__name__}")
    if isinstance(target, (Operator, JittedFunction)):
        return target
    raise SystemExit(f"xcs: {name} is not an Operator class, an operator instance or a jitted function")


def _import_file(path: str) -> Any:
    """Import ``path`` under its dotted name relative to the working directory when it lies below it,
    so that plans can import the module by that same name."""
    full = os.path.abspath(path)
    cwd = os.getcwd()
    if full.startswith(cwd + os.sep):
        dotted = os.path.relpath(full, cwd)[:-3].replace(os.sep, ".")
        if all(part.isidentifier() for part in dotted.split(".")):
            if cwd not in sys.path:
                sys.path.insert(0, cwd)
            return importlib.import_module(dotted)
    name = os.path.splitext(os.path.basename(full))[0]
    spec = importlib.util.spec_from_file_location(name, full)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _json(text: str, flag: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"xcs: {flag} is not valid JSON: {exc}") from None


def _inputs(args: argparse.Namespace) -> dict:
    value = _json(args.input, "--input")
    if not isinstance(value, dict):
        raise SystemExit(f"xcs: --input must be a JSON object, got {type(value).__name__}")
    for key in args.array:  # numeric kernels are compiled for numpy arrays (docs/numba.md)
        if key not in value:
            raise SystemExit(f"xcs: --array {key}: --input has no key {key!r}")
        import numpy

        value[key] = numpy.asarray(value[key])
    return value


def cmd_explain(args: argparse.Namespace) -> int:
    op = load_target(args.target, args.init)
    sys.stdout.write(str(explain(op, _inputs(args), run=args.run)))
    return 0


def cmd_dump(args: argparse.Namespace) -> int:
    op = load_target(args.target, args.init)
    if args.passes:
        entry = compiled(op, _inputs(args))
        for applied in entry.applied or ():
            print(f"# pass {applied.name}: {applied.summary or 'no change'}")
        if not entry.applied:
            print("# no passes: the plan comes from the " + ("disk cache" if entry.origin == "disk" else "trace or structural strategy"))
    sys.stdout.write(dump(op, _inputs(args)))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    op = load_target(args.target, args.init)
    inputs = _inputs(args)
    start = time.perf_counter()
    eager = check_output(op, JitConfig().forward_of(op)(inputs=inputs))
    eager_s = time.perf_counter() - start
    start = time.perf_counter()
    entry = compiled(op, inputs) if getattr(op, "__xcs_jit__", None) else JitConfig().run(op, inputs)[1]
    capture_s = time.perf_counter() - start
    with execution_options(scheduler=args.scheduler):
        config = op.__xcs_jit__ or JitConfig()
        start = time.perf_counter()
        result = config.call(op, inputs)
        compiled_s = time.perf_counter() - start
    print(f"plan file:     {getattr(entry.plan, 'filename', '(none: runs eagerly)')}")
    print(f"eager:         {eager_s * 1e3:9.2f} ms")
    how = "loaded from the disk cache" if getattr(entry, "origin", "") == "disk" else "captured"
    print(f"capture+plan:  {capture_s * 1e3:9.2f} ms  (first call: {how})")
    print(f"compiled:      {compiled_s * 1e3:9.2f} ms  (warm call, scheduler={args.scheduler})")
    print(json.dumps(result, indent=2, default=repr))
    if result != eager:
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


def _add_cache_parser(sub: Any) -> None:
    helptext = "inspect and maintain the disk plan cache (XCS_CACHE_DIR)"
    cache = sub.add_parser("cache", help=helptext, description=helptext)
    actions = cache.add_subparsers(dest="action", required=True)
    for name, fn in (("ls", cmd_cache_ls), ("info", cmd_cache_info), ("clear", cmd_cache_clear), ("prune", cmd_cache_prune)):
        cmd = actions.add_parser(name, help=fn.__doc__.split("\n")[0], description=fn.__doc__)
        cmd.add_argument("--dir", default=None, help="the cache directory (default: XCS_CACHE_DIR or the user cache dir)")
        if name in ("ls", "info"):
            cmd.add_argument("--json", action="store_true", help="print JSON")
        if name == "prune":
            cmd.add_argument(
                "--max-bytes", type=int, default=None, help="evict down to this size (default: XCS_CACHE_MAX_BYTES)"
            )
        cmd.set_defaults(fn=fn)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xcs", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext, fn in (
        ("dump", "print the generated plan of TARGET for the signature of --input", cmd_dump),
        ("run", "run TARGET eagerly and compiled; print the plan file and both wall times", cmd_run),
        ("explain", "how TARGET compiles for --input: strategy, graph breaks, passes, graph summary", cmd_explain),
    ):
        cmd = sub.add_parser(name, help=helptext, description=helptext)
        cmd.add_argument("target", help="FILE.py:NAME (an Operator class or instance, or a jitted function)")
        cmd.add_argument("--input", required=True, help="the inputs, a JSON object")
        cmd.add_argument(
            "--init", type=lambda t: _json(t, "--init"), default=None,
            help="constructor arguments of an Operator class: a JSON list (positional) or object (keywords)",
        )
        cmd.add_argument(
            "--array", action="append", default=[], metavar="KEY",
            help="pass input KEY as a numpy array (numpy.asarray of its JSON value); repeatable",
        )
        if name == "run":
            cmd.add_argument("--scheduler", default="auto", help="scheduler for the compiled call (default: auto)")
        if name == "dump":
            cmd.add_argument("--passes", action="store_true", help="first list the optimisation passes and their effect")
        if name == "explain":
            cmd.add_argument("--run", action="store_true", help="trace by running the call when no static strategy can")
        cmd.set_defaults(fn=fn)
    _add_cache_parser(sub)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except XCSError as exc:
        print(f"xcs: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
