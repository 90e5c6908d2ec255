"""The ``xcs`` command: ``xcs dump`` prints a plan, ``xcs run`` runs an operator eager and compiled.

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

from runtime.errors import XCSError
from runtime.options import execution_options
from xcs.jit import JitConfig, JittedFunction, compiled, dump, forward_of
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


def _inputs(text: str) -> dict:
    value = _json(text, "--input")
    if not isinstance(value, dict):
        raise SystemExit(f"xcs: --input must be a JSON object, got {type(value).__name__}")
    return value


def cmd_dump(args: argparse.Namespace) -> int:
    op = load_target(args.target, args.init)
    sys.stdout.write(dump(op, _inputs(args.input)))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    op = load_target(args.target, args.init)
    inputs = _inputs(args.input)
    start = time.perf_counter()
    eager = check_output(op, forward_of(op)(inputs=inputs))
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
    print(f"capture+plan:  {capture_s * 1e3:9.2f} ms  (first call)")
    print(f"compiled:      {compiled_s * 1e3:9.2f} ms  (warm call, scheduler={args.scheduler})")
    print(json.dumps(result, indent=2, default=repr))
    if result != eager:
        print("xcs: compiled output differs from eager output", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xcs", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext, fn in (
        ("dump", "print the generated plan of TARGET for the signature of --input", cmd_dump),
        ("run", "run TARGET eagerly and compiled; print the plan file and both wall times", cmd_run),
    ):
        cmd = sub.add_parser(name, help=helptext, description=helptext)
        cmd.add_argument("target", help="FILE.py:NAME (an Operator class or instance, or a jitted function)")
        cmd.add_argument("--input", required=True, help="the inputs, a JSON object")
        cmd.add_argument(
            "--init", type=lambda t: _json(t, "--init"), default=None,
            help="constructor arguments of an Operator class: a JSON list (positional) or object (keywords)",
        )
        if name == "run":
            cmd.add_argument("--scheduler", default="auto", help="scheduler for the compiled call (default: auto)")
        cmd.set_defaults(fn=fn)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except XCSError as exc:
        print(f"xcs: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
