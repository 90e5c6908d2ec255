"""The compiler's extension points: custom capture strategies (the ``Strategy`` protocol) and custom
graph transformations (passes), each in a registry of its own.

- A strategy is an object with a ``name`` and ``capture(op, inputs, builtin) -> Graph | None``.
  ``register_strategy(s)`` makes ``jit(mode=s.name)`` use it: ``capture`` returns the IR graph of the
  call (``compiler.ir``), or None when it declines (the signature then runs eagerly, with the
  ``strategy-declined`` graph break). ``builtin(mode)`` returns a built-in strategy's graph for the same
  call ("enhanced", "structural" or "trace"; None when it breaks), capturing without running anything,
  so a strategy can choose among the built-in ones or refine their graphs.
- A pass is a function ``Graph -> Graph`` (or ``Graph -> (Graph, summary)``). ``register_pass(name,
  fn)`` runs it after the built-in passes of the ``enhanced`` strategy, in registration order; it must
  keep the graph's meaning (``lint`` checks its structure).

Both are part of what a plan is compiled from: the registered strategy of a mode and the registered
passes enter the structure hash (``extras``), so a plan cached before a registration is not reused
after it. ``xcs dump --passes`` and ``xcs explain`` list custom passes beside the built-in ones; a
custom strategy's name is the plan header's ``strategy``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol, runtime_checkable

from xcs.compiler.ir import Graph
from xcs.compiler.errors import JitError

BUILTIN_MODES = ("auto", "enhanced", "structural", "trace")


@runtime_checkable
class Strategy(Protocol):
    """A custom capture strategy: ``jit(mode=<name>)`` captures with it once registered."""

    name: str

    def capture(
        self, op: Any, inputs: Mapping[str, Any], builtin: Callable[[str], Graph | None]
    ) -> Graph | None: ...


STRATEGIES: dict[str, Strategy] = {}
PASSES: dict[str, Callable[[Graph], Any]] = {}


def register_strategy(strategy: Strategy) -> Strategy:
    """Make ``jit(mode=strategy.name)`` capture with ``strategy``; returns it (usable as a decorator of
    an instance). A built-in mode's name, or a name already registered, is a ``JitError``."""
    if not isinstance(strategy, Strategy) or not isinstance(strategy.name, str) or not strategy.name.isidentifier():
        raise JitError(
            "register_strategy expects an object with a name (an identifier) and a method "
            f"capture(op, inputs, builtin); got {strategy!r}"
        )
    if strategy.name in BUILTIN_MODES or strategy.name in STRATEGIES:
        raise JitError(f"a strategy named {strategy.name!r} exists already; valid modes: {', '.join(modes())}")
    STRATEGIES[strategy.name] = strategy
    return strategy


def register_pass(name: str, fn: Callable[[Graph], Any]) -> Callable[[Graph], Any]:
    """Run ``fn`` (``Graph -> Graph`` or ``Graph -> (Graph, summary)``) after the built-in passes of
    the ``enhanced`` strategy, under ``name``; returns ``fn``. A name in use is a ``JitError``."""
    if not isinstance(name, str) or not name.isidentifier() or not callable(fn):
        raise JitError(f"register_pass expects a name (an identifier) and a function Graph -> Graph; got {name!r}, {fn!r}")
    if name in PASSES:
        raise JitError(f"a pass named {name!r} exists already")
    PASSES[name] = fn
    return fn


def modes() -> tuple[str, ...]:
    """Every valid ``jit`` mode: the built-in ones, then the registered strategies'."""
    return (*BUILTIN_MODES, *STRATEGIES)


def extras(mode: str) -> tuple:
    """What, besides the operator, a plan of ``mode`` is compiled from: the mode's registered strategy
    (its class's ``capture``) and the registered passes (their functions), for the structure hash.
    Empty without registrations."""
    strategy = STRATEGIES.get(mode)
    found: tuple = tuple((name, fn) for name, fn in PASSES.items())
    if strategy is not None:
        found += ((strategy.name, type(strategy).capture),)
    return found


def run_custom_passes(graph: Graph) -> tuple[Graph, list[tuple[str, str]]]:
    """Apply the registered passes in order: the graph and ``(name, summary)`` per pass."""
    applied = []
    for name, fn in PASSES.items():
        result = fn(graph)
        new, summary = result if isinstance(result, tuple) else (result, "")
        if not isinstance(new, Graph):
            raise JitError(f"pass {name!r} returned {type(new).__name__}, not a Graph")
        applied.append((name, summary or ("changed the graph" if new != graph else "")))
        graph = new
    return graph, applied
