"""Input data never becomes plan code: keys, nested keys, kwargs names, value type names and operator
names holding control or line-break characters are written as literals or escaped comment text.

Each payload is a key that, pasted raw into a plan, would end the current line (or comment) and run
``__import__('builtins').XCS_PWNED.append(...)``. For every such character and every capture mode,
the plan must parse to the same AST shape as with a harmless character, contain no unescaped
character that ends a line, run nothing of the payload, and return what eager Python returns.
"""

from __future__ import annotations

import ast
import builtins

import pytest

from xcs.compiler.codegen import comment
from xcs.runtime.errors import XCSError
from xcs import Operator, dump, jit

LINE_BREAKS = ("\n", "\r", "\r\n", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
CONTROLS = tuple(chr(c) for c in range(0x20)) + ("\x7f",)
CHARACTERS = tuple(dict.fromkeys(CONTROLS + LINE_BREAKS))  # 0x00-0x1f, DEL, then \r\n and the Unicode ones
MODES = ("trace", "structural", "enhanced", "auto")


def payload(char: str) -> str:
    """A key that runs code when ``char`` ends a line of the plan (or of a comment in it)."""
    return f"k{char}__import__('builtins').XCS_PWNED.append(1){char}#"


class Echo(Operator):
    def forward(self, *, inputs):
        return {"v": inputs}


class ReadsKeys(Operator):
    """Reads every key of the inputs and of a nested mapping, and spreads the inputs as kwargs."""

    def __init__(self):
        self.echo = Echo()
        self.spread = Echo()
        self.last = Echo()

    def forward(self, *, inputs):
        top = {k: inputs[k] for k in inputs}
        nested = {k: inputs["n"][k] for k in inputs["n"]}
        first = self.echo(inputs={"top": top, "nested": nested})
        second = self.spread(**inputs["n"])  # the keys become keyword names
        return self.last(inputs={"first": first, "second": second, "keys": [k.upper() for k in inputs["n"]]})


def named(base: type, char: str) -> type:
    """A subclass of ``base`` whose ``__name__`` (NUL: CPython refuses it there) and ``__qualname__``
    carry the payload."""
    kind = type(payload("_" if char == "\x00" else char), (base,), {})
    kind.__qualname__ = payload(char)
    return kind


class Value:
    def __eq__(self, other):
        return type(self) is type(other)

    __hash__ = object.__hash__


def evil_type(char: str) -> type:
    """A value type whose name carries the payload (it reaches the signature in the plan's header)."""
    return named(Value, char)


def evil_operator(char: str) -> type:
    """An operator class whose name carries the payload (it reaches the header and ``Plan(name=...)``)."""
    return named(ReadsKeys, char)


def inputs_for(char: str) -> dict:
    key = payload(char)
    return {key: 1, "n": {key: 2, "plain": 3}, "t": evil_type(char)()}


def shape(text: str) -> str:
    """The plan's AST with every string and bytes constant blanked: what a key cannot change."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
            node.value = ""
    return ast.dump(tree)


@pytest.fixture(autouse=True)
def pwned():
    builtins.XCS_PWNED = []
    yield builtins.XCS_PWNED
    del builtins.XCS_PWNED


def compile_and_run(mode: str, char: str, operator: type = ReadsKeys) -> tuple[str, object, object]:
    data = inputs_for(char)
    eager = operator().forward(inputs=data)
    op = jit(mode=mode)(operator())
    result = op(inputs=data)
    return dump(op, data), result, eager


@pytest.fixture(scope="module")
def baselines():
    """The plan shape of each mode with a harmless character in place of the payload's."""
    return {}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("char", CHARACTERS, ids=[f"U+{ord(c[-1]):04X}" + ("crlf" if len(c) > 1 else "") for c in CHARACTERS])
def test_key_payload_is_data(mode, char, baselines, fresh_plans, pwned):
    if mode not in baselines:
        baselines[mode] = shape(compile_and_run(mode, "_")[0])
    text, result, eager = compile_and_run(mode, char)
    assert all(c.isprintable() or c == "\n" for c in text), "an unescaped control character reached the plan"
    assert shape(text) == baselines[mode]
    assert result == eager
    assert pwned == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("char", ("\n", "\r", "\x00", "\u2028", "\x85"), ids=["lf", "cr", "nul", "u2028", "nel"])
def test_operator_name_payload_is_data(mode, char, fresh_plans, pwned):
    text, result, eager = compile_and_run(mode, char, evil_operator(char))
    assert all(c.isprintable() or c == "\n" for c in text)
    assert result == eager
    assert pwned == []
    assert f"name={payload(char)!r}," in text  # the plan's name is a literal


def test_nul_key_runs_as_eager(fresh_plans):
    key = "a\x00b"

    @jit(mode="structural")
    class Nul(Operator):
        def forward(self, *, inputs):
            return {"v": inputs["a\x00b"] + 1, "n": inputs["n"]["a\x00b"]}

    data = {key: 1, "n": {key: 2}}
    try:
        assert Nul()(inputs=data) == {"v": 2, "n": 2}
    except SyntaxError as exc:  # pragma: no cover - the failure this test exists for
        pytest.fail(f"raw SyntaxError: {exc}")
    except XCSError:
        pass  # a clear refusal is allowed; a raw SyntaxError is not


@pytest.mark.parametrize("char", CHARACTERS)
def test_comment_never_ends_early(char):
    text = comment(f"before{char}after")
    assert text.isprintable() and text.startswith("before") and text.endswith("after")
    assert len(f"# {text}\n".splitlines()) == 1


def test_signature_texts_name_distinct_keys_distinctly():
    from xcs.compiler.signature import Signature

    nested, dotted = {"a": {"b": 1}}, {"a": {"b": 1}, "a.b": 1}
    assert Signature.of(nested).canonical != Signature.of(dotted).canonical
    assert Signature.of({"1": 1}).canonical != Signature.of({1: 1}).canonical
    assert Signature.of({"query": "q", "user-id": 1, "a b": 2, "x\ny": 3}).text == (
        "{query: str, user-id: int, 'a b': int, 'x\\ny': int}"
    )


@pytest.mark.parametrize("operand", [
    "Const(object())", "Const(float('nan'))", "Static('a\\nimport os')", "Static('a[len(x)]')",
    "Global('os\\nimport sys', 'path')", "Global('os', 'path.__class__.<locals>')",
])
def test_codegen_refuses_what_it_cannot_render(operand):
    from xcs.compiler import ir
    from xcs.compiler.codegen import Header, RenderError, generate

    value = eval(operand, vars(ir))
    graph = ir.Graph((ir.Input(), ir.Glue("g", "list", (value,)), ir.Output("output", ir.Ref("g"))))
    with pytest.raises(RenderError):
        generate(graph, Header("m:Op", "trace", "{}", "0"))
