"""Property test: random well-formed operator programs compile to plans equal to eager execution.

Hypothesis builds the *source text* of an ``Operator`` whose ``forward`` is a random dataflow of
sub-operator calls and glue (subscripts, dict/list building, f-strings, arithmetic, conditionals on
inputs and on operator outputs, comprehensions over static lists, map regions over input and output
lists, branches inside map regions, tuple unpacking, augmented assignment). Each program is written to
a module file (so source and bytecode exist, as for user code), imported, and run eagerly and under
``jit`` with ``structural``, ``enhanced`` and ``trace`` on several random inputs of one signature:
outputs and leaf-operator calls must match. The static strategies must compile every generated
program (nothing here is a graph break) into one plan for the signature.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import warnings

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from xcs.compiler.cache import Key
from xcs.compiler.signature import Signature
from corpus import run_counted
from xcs import GraphBreakWarning, jit
from xcs.compiler.driver import PLANS, clear_caches

MODULES = itertools.count()
WORDS = st.text(alphabet="abcxyz ", min_size=0, max_size=8)
INPUTS = st.fixed_dictionaries({
    "q": WORDS,
    "n": st.integers(min_value=-5, max_value=25),
    "docs": st.lists(st.text(alphabet="abcde", min_size=0, max_size=5), max_size=4),
    "flag": st.booleans(),
})

HEADER = '''\
from corpus import Add, Echo, Upper, Wrap
from corpus_static import Retriever
from xcs import Operator


def helper(text, times=2):
    return f"{text}#" * times


class Generated(Operator):
    """A generated program."""

    def __init__(self):
        self.e0 = Echo("g-e0")
        self.e1 = Echo("g-e1")
        self.up = Upper("g-up")
        self.wrap = Wrap("g-wrap", "(", ")")
        self.add = Add("g-add", 3)
        self.ret = Retriever("g-ret")
        self.members = [Echo("g-m0"), Echo("g-m1")]
        self.styles = ["x", "yy", "zzz"]
        self.k = 4

    def forward(self, *, inputs):
'''


class Source:
    """Builds the body of ``forward`` from draws: typed variables (str, int, list of str) and lines."""

    def __init__(self, draw):
        self.draw = draw
        self.lines: list[str] = []
        self.vars: dict[str, list[str]] = {"str": [], "int": [], "list": []}
        self.count = 0

    def fresh(self, kind: str) -> str:
        self.count += 1
        return f"v{self.count}"

    def pick(self, options):
        return self.draw(st.sampled_from(options))

    # ------------------------------------------------------------------ expressions
    def str_atom(self) -> str:
        return self.pick(["inputs['q']", "'lit'", "self.styles[1]", *self.vars["str"]])

    def int_atom(self) -> str:
        return self.pick(["inputs['n']", "2", "self.k", "len(inputs['docs'])", *self.vars["int"]])

    def list_atom(self) -> str:
        return self.pick(["inputs['docs']", "self.styles", *self.vars["list"]])

    def cond(self) -> str:
        return self.pick([
            f"{self.int_atom()} > {self.draw(st.integers(0, 12))}",
            "inputs['flag']",
            f"{self.str_atom()} == 'lit'",
            f"not {self.str_atom()}",
            f"{self.str_atom()}.startswith('a')",
            f"len({self.list_atom()}) > 1",
            f"({self.int_atom()} > 3 and {self.str_atom()} != 'lit')",
        ])

    def str_expr(self) -> str:
        a, b = self.str_atom(), self.str_atom()
        return self.pick([
            a, f"{a} + {b}", f'f"{{{a}}}-{{{self.int_atom()}}}"', f"{a}.upper()", f"{a}[:3]",
            f"({a} if {self.cond()} else {b})", f"({a} or {b})", f"helper({a})",
            f"' '.join({self.list_atom()})", f"{a}.strip()",
        ])

    def int_expr(self) -> str:
        a, b = self.int_atom(), self.int_atom()
        return self.pick([
            a, f"{a} + {b}", f"{a} * 3", f"{a} % 7", f"-{a}", f"len({self.str_atom()})",
            f"({a} if {self.cond()} else {b})", f"max({a}, {b})", f"{a} // 2",
        ])

    # ------------------------------------------------------------------ statements
    def emit(self, *lines: str) -> None:
        self.lines += lines

    def bind(self, kind: str, expr: str) -> str:
        name = self.fresh(kind)
        self.emit(f"{name} = {expr}")
        self.vars[kind].append(name)
        return name

    def statement(self) -> None:
        kind = self.pick([
            "echo", "upper", "wrap", "add", "glue_str", "glue_int", "if_else", "if_no_else", "ternary_call",
            "map_input", "map_output", "map_branch", "append_loop", "static_comp", "members", "dict",
            "unpack", "augment", "consume", "early_return",
        ])
        s = self.str_expr
        if kind == "echo":
            self.bind("str", f'self.{self.pick(["e0", "e1"])}(query={s()})["answer"]')
        elif kind == "upper":
            self.bind("str", f'self.up(text={s()})["text"]')
        elif kind == "wrap":
            self.bind("str", f'self.wrap(inputs={{"text": {s()}}})["text"]')
        elif kind == "add":
            self.bind("int", f'self.add(x={self.int_expr()})["y"]')
        elif kind == "glue_str":
            self.bind("str", s())
        elif kind == "glue_int":
            self.bind("int", self.int_expr())
        elif kind == "if_else":  # both sides assign; one side may call an operator
            name = self.fresh("str")
            self.emit(
                f"if {self.cond()}:", f'    {name} = self.up(text={s()})["text"]',
                "else:", f"    {name} = {s()}",
            )
            self.vars["str"].append(name)
        elif kind == "if_no_else":
            name = self.bind("str", s())
            self.emit(f"if {self.cond()}:", f'    {name} = self.wrap(text={name})["text"]')
        elif kind == "ternary_call":
            self.bind("str", f'self.e0(query={s()})["answer"] if {self.cond()} else self.up(text={s()})["text"]')
        elif kind == "map_input":
            self.bind("list", f'[self.e1(query=d + {s()})["answer"] for d in inputs["docs"]]')
        elif kind == "map_output":
            r = self.fresh("ret")
            self.emit(f"{r} = self.ret(query={s()})")
            self.bind("list", f'[self.wrap(text=self.up(text=d)["text"])["text"] for d in {r}["docs"]]')
        elif kind == "map_branch":
            self.bind("list", f'[self.up(text=d)["text"] if len(d) > 2 else d + {s()} for d in inputs["docs"]]')
        elif kind == "append_loop":
            name = self.fresh("list")
            self.emit(f"{name} = []", 'for d in inputs["docs"]:', f'    {name}.append(self.e0(query=f"{{d}}/{{{self.str_atom()}}}")["answer"])')
            self.vars["list"].append(name)
        elif kind == "static_comp":
            self.bind("list", f'[f"{{style}}:{{{self.str_atom()}}}" for style in self.styles if style != "yy"]')
        elif kind == "members":
            self.bind("list", f'[m(query={s()})["answer"] for m in self.members]')
        elif kind == "dict":
            d = self.fresh("dict")
            self.emit(f'{d} = {{"s": {s()}, "i": {self.int_expr()}, "l": [{s()}]}}')
            self.bind("str", f'{d}["s"] + {d}["l"][0]')
            self.bind("int", f'{d}["i"]')
        elif kind == "unpack":
            a, b = self.fresh("str"), self.fresh("int")
            self.emit(f"{a}, {b} = {s()}, {self.int_expr()}")
            self.vars["str"].append(a)
            self.vars["int"].append(b)
        elif kind == "augment":
            name = self.bind("int", self.int_expr())
            self.emit(f"{name} += {self.int_atom()}", f"{name} *= 2")
        elif kind == "early_return":  # the statements after it belong to the other side
            self.emit(f"if {self.cond()}:", f"    return {self.result()}")
        else:
            self.bind("str", f'" | ".join({self.list_atom()})')
            self.bind("int", f"len({self.list_atom()})")

    def result(self) -> str:
        names = [n for kind in ("str", "int", "list") for n in self.vars[kind]]
        return "{" + ", ".join(f'"{n}": {n}' for n in names) + "}"

    def module(self) -> str:
        for _ in range(self.draw(st.integers(min_value=1, max_value=7))):
            self.statement()
        body = [*self.lines, f"return {self.result()}"]
        return HEADER + "".join(f"        {line}\n" for line in body)


@st.composite
def programs(draw):
    return Source(draw).module()


def load(source: str, directory):
    """Write ``source`` as a new module under ``directory`` and import it."""
    name = f"xcs_generated_{next(MODULES)}"
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # plans refer to module-level names by import
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("generated")
    yield path
    for name in [n for n in sys.modules if n.startswith("xcs_generated_")]:
        del sys.modules[name]


@settings(
    max_examples=40, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(source=programs(), inputs=st.lists(INPUTS, min_size=3, max_size=4))
def test_generated_programs_equal_eager(module_dir, source, inputs):
    note(source)
    module = load(source, module_dir)
    eager = module.Generated()
    expected = [run_counted(eager, i) for i in inputs]
    for mode in ("structural", "enhanced", "trace"):
        clear_caches()
        jitted = jit(module.Generated(), mode=mode)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore" if mode == "trace" else "error", GraphBreakWarning)
            for i, want in zip(inputs, expected):
                assert run_counted(jitted, i) == want, (mode, i)
        if mode != "trace":  # one plan, compiled by the static strategy, serves every input
            (entry,) = PLANS.get(Key.of(jitted.__xcs_jit__.structure(jitted), Signature.of(inputs[0])))
            assert entry.plan.guard is None and f"strategy: {mode}" in entry.source
    clear_caches()
