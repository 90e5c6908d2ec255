"""The LLM examples against the embedded OpenAI-compatible server: plans equal their snapshots,
compiled runs equal eager runs, and the chat client's failures are clear ``LLMError``s.

Every server here listens on an ephemeral loopback port and is stopped by the test that started it.
"""

from __future__ import annotations

import os
import warnings

import httpx
import pytest

from examples.batch_eval import ArithmeticQA, BatchEval, evaluate, load_dataset
from examples.llm import (
    AuthenticationError,
    ChatClient,
    ChatModel,
    EmbeddedServer,
    EndpointTimeoutError,
    EndpointUnreachableError,
    LLMError,
    MalformedResponseError,
    MissingAPIKeyError,
    RateLimitError,
    ServerError,
    close_http_client,
    default_client,
    default_server,
    stop_default_server,
)
from examples.llm.sim import respond
from examples.llm_ensemble import LLMEnsemble
from examples.numeric_rerank import RerankedAnswer
from examples.rag import RetrievalQA
from examples.tool_pipeline import ACTIVITY, TravelBriefing
from examples.verify_revise import GatedSelfCheck, SelfCheckedAnswer
from xcs import GraphBreakWarning, XCSError, cache_info, dump, execution_options, explain, jit
from xcs.operator import check_output

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEDULERS = ["sequential", "topological", "wave", "parallel"]
LLM_ENV = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL", "OPENAI_MODELS")

# example name -> (build the operator, inputs for the snapshot, more inputs of the same signature)
EXAMPLES = {
    "llm_ensemble": (
        lambda: LLMEnsemble(3),
        {"question": "Why is the sky blue?"},
        [{"question": "What makes a rainbow?"}, {"question": ""}],
    ),
    "rag": (
        lambda: RetrievalQA(top_k=3),
        {"question": "Why is Mars red?"},
        [{"question": "Which planet has the most moons?"}, {"question": "What causes tides?"}, {"question": "Who won?"}],
    ),
    "verify_revise": (
        SelfCheckedAnswer,
        {"question": "How do volcanoes form?"},
        [{"question": "Why do we have tides?"}, {"question": "What is photosynthesis?"}],
    ),
    "verify_revise_gated": (
        GatedSelfCheck,
        {"question": "How do volcanoes form?"},
        [{"question": "Why do we have tides?"}, {"question": "What is photosynthesis?"}],
    ),
    "tool_pipeline": (
        lambda: TravelBriefing(tool_latency=0.05),
        {"city": "Lisbon", "budget": 500.0, "currency": "USD"},
        [{"city": "Kyoto", "budget": 120.5, "currency": "EUR"}, {"city": "Atlantis", "budget": 1.0, "currency": "GBP"}],
    ),
    "batch_eval": (
        lambda: BatchEval("sim-medium", batch_size=4),
        {"question": ["What is 6 * 7?", "What is 82 - 82?"], "answer": ["42", "0"]},
        [
            {"question": ["What is 9 * 74?", "What is 52 - 8?", "What is 1 + 1?"], "answer": ["666", "44", "2"]},
            {"question": ["What is 30 * 7?"], "answer": ["210"]},
        ],
    ),
    "batch_eval_item": (
        lambda: ArithmeticQA("sim-medium"),
        {"question": "What is 6 * 7?", "answer": "42"},
        [{"question": "What is 82 - 82?", "answer": "0"}, {"question": "What is 9 * 74?", "answer": "666"}],
    ),
    "numeric_rerank": (
        lambda: RerankedAnswer(4),
        {"question": "Why does Saturn have rings?"},
        [{"question": "How long does sunlight take to reach Earth?"}, {"question": "zzz"}],
    ),
}


@pytest.fixture(scope="module", autouse=True)
def llm_server():
    """One embedded server (no latency, no failures) for the module; the OPENAI_* variables point at it."""
    saved = {name: os.environ.pop(name, None) for name in LLM_ENV}
    with EmbeddedServer() as server:
        os.environ["OPENAI_BASE_URL"] = server.url
        try:
            yield server
        finally:
            for name in LLM_ENV:
                os.environ.pop(name, None)
                if saved[name] is not None:
                    os.environ[name] = saved[name]
            close_http_client()


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def eager(op, inputs):
    return check_output(op, type(op).forward(op, inputs=inputs))


# ---------------------------------------------------------------------- plans and runs
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_plan_snapshot(name, plan_snapshot):
    build, inputs, _ = EXAMPLES[name]
    assert dump(build(), inputs) == plan_snapshot


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_compiled_equals_eager(name, scheduler):
    build, first, more = EXAMPLES[name]
    op = build()
    with execution_options(scheduler=scheduler):
        for inputs in [first, *more]:
            assert op(inputs=inputs) == eager(op, inputs)


def test_the_ensemble_judge_sees_every_member():
    result = LLMEnsemble(3)(inputs={"question": "Why is the sky blue?"})
    assert len(result["candidates"]) == 3
    assert result["answer"].startswith("Synthesis of 3 answers: ")
    assert result["answer"].split(": ", 1)[1] in result["candidates"]


def test_rag_reads_the_retrieved_documents():
    result = RetrievalQA(top_k=3)(inputs={"question": "Why is Mars red?"})
    assert result["sources"][0] == "Mars"
    assert len(result["notes"]) == 3
    assert "iron oxide" in result["notes"][0] and "iron oxide" in result["answer"]


def test_rag_fans_out_over_however_many_documents_were_retrieved(fresh_plans, llm_server):
    """One plan serves 3, 1 and 0 retrieved documents: a map region, not a recompile per length."""
    op = RetrievalQA(top_k=3)
    counts = []
    for question in ("Why is Mars red?", "What causes tides?", "Who won?"):
        before = llm_server.requests
        result = op(inputs={"question": question})
        counts.append((len(result["sources"]), llm_server.requests - before))
        assert result == eager(op, {"question": question})
    assert counts == [(3, 4), (1, 2), (0, 1)]  # one reader call per document, then the synthesiser
    info = cache_info(op)
    assert len(info.signatures) == 1 and info.captures + info.disk_loads == 1


@pytest.mark.parametrize("build", [SelfCheckedAnswer, GatedSelfCheck])
def test_revision_runs_only_when_the_verifier_rejects(build, llm_server):
    op = build()
    op(inputs={"question": "warm-up"})
    before = llm_server.requests
    approved = op(inputs={"question": "Why do we have tides?"})
    assert approved["verdict"] == "APPROVE" and not approved["revised"]
    assert approved["answer"] == approved["draft"]
    assert llm_server.requests - before == 2  # answer, verify: no revision call
    before = llm_server.requests
    rejected = op(inputs={"question": "What is photosynthesis?"})
    assert rejected["verdict"].startswith("REJECT") and rejected["revised"]
    assert rejected["answer"].startswith("Revised: ")
    assert llm_server.requests - before == 3


def test_the_branch_on_the_verdict_costs_one_statement_for_the_trace_strategy():
    compiled, gated = SelfCheckedAnswer(), GatedSelfCheck()
    traced = jit(SelfCheckedAnswer(), mode="trace")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for question in ("Why do we have tides?", "What is photosynthesis?", "How do volcanoes form?"):
            result = compiled(inputs={"question": question})
            assert traced(inputs={"question": question}) == result == gated(inputs={"question": question})
    assert [w for w in caught if issubclass(w.category, GraphBreakWarning)] == []  # a plan runs
    explained = explain(jit(SelfCheckedAnswer(), mode="trace"), {"question": "Why do we have tides?"}, run=True)
    assert [b.code for b in explained.opaque] == ["branch-on-output"]  # the decision runs as written
    assert explained.opaque[0].loc.file == "examples/verify_revise.py"


def test_independent_tool_calls_overlap():
    op = TravelBriefing(tool_latency=0.05)
    inputs = {"city": "Lisbon", "budget": 500.0, "currency": "USD"}
    op(inputs=inputs)
    ACTIVITY.clear()
    with execution_options(scheduler="parallel"):
        result = op(inputs=inputs)
    spans = {tool: (start, end) for tool, start, end in ACTIVITY}
    assert set(spans) == {"WeatherTool", "CurrencyTool", "SearchTool"}
    weather, currency = spans["WeatherTool"], spans["CurrencyTool"]
    assert max(weather[0], currency[0]) < min(weather[1], currency[1]), spans  # they ran at the same time
    assert result["facts"][1] == "500.00 USD is about 460.00 EUR"
    assert result["briefing"].startswith("Summary: ")


def test_batch_evaluation_reuses_one_element_plan(fresh_plans):
    items = load_dataset()
    assert len(items) == 24
    report = evaluate("sim-medium", items)
    assert (report["correct"], report["total"]) == (21, 24)
    assert report["accuracy"] == pytest.approx(21 / 24)
    item = ArithmeticQA("sim-medium")
    assert report["verdicts"] == [eager(item, i)["correct"] for i in items]
    assert [p for p, ok in zip(report["predicted"], report["verdicts"]) if not ok] == ["2", "47", "213"]
    info = cache_info(BatchEval)
    assert info.captures + info.disk_loads == 1  # the element's steps are compiled into BatchEval's plan
    assert cache_info(ArithmeticQA).signatures == ()  # ... as a map region: no element plan of its own
    text = dump(BatchEval(), {"question": ["What is 6 * 7?"], "answer": ["42"]})
    assert "ops.items.fn.solve(inputs={'prompt': f\"Question: {element['question']}\"})" in text


def test_numeric_scores_rank_the_candidates():
    result = RerankedAnswer(4)(inputs={"question": "Why does Saturn have rings?"})
    scores, ranking = result["scores"], result["ranking"]
    assert len(scores) == 4 and sorted(ranking) == [0, 1, 2, 3]
    assert [scores[i] for i in ranking] == sorted(scores, reverse=True)
    assert "rings" in result["candidates"][ranking[0]]
    assert result["answer"].endswith(result["candidates"][ranking[0]].strip()) or "rings" in result["answer"]


@pytest.mark.parametrize(
    "module", ["llm_ensemble", "rag", "verify_revise", "tool_pipeline", "batch_eval", "numeric_rerank"]
)
def test_main_runs(module, capsys):
    __import__(f"examples.{module}", fromlist=["main"]).main()
    assert capsys.readouterr().out.strip()


def test_xcs_run_on_an_llm_example(capsys):
    from xcs.cli import main

    assert main(["run", "examples/rag.py:RetrievalQA", "--input", '{"question": "Why is Mars red?"}', "--calls", "2"]) == 0
    out = capsys.readouterr().out
    assert "plan file:" in out and "eager warm:" in out and "compiled warm:" in out and "iron oxide" in out


# ---------------------------------------------------------------------- the client's failures
PROMPT = "Question: What is 2 + 2?"


def expected(prompt: str, model: str = "sim-small") -> dict:
    """What the embedded server answers (its model may get arithmetic wrong on purpose)."""
    return {"text": respond(model, [{"role": "user", "content": prompt}])}


def chat(server: EmbeddedServer, *, name: str = "probe", **client_options) -> dict:
    client = ChatClient(server.url, **client_options)
    return ChatModel("sim-small", name=name, client=client)(inputs={"prompt": PROMPT})


def check_error(info, kind, server_url: str, status: int | None, name: str = "probe") -> None:
    error = info.value
    assert type(error) is kind and isinstance(error, LLMError) and isinstance(error, XCSError)
    assert error.status == status
    assert error.operator == f"ChatModel {name!r} (model 'sim-small')"
    assert error.endpoint == f"{server_url}/chat/completions"
    assert f"ChatModel {name!r}" in str(error) and error.endpoint in str(error)


def test_the_embedded_server_speaks_openai():
    with EmbeddedServer() as server:
        response = httpx.post(
            f"{server.url}/chat/completions",
            json={"model": "sim-large", "messages": [{"role": "user", "content": "Question: What is 40 + 2?"}]},
        )
        body = response.json()
        assert response.status_code == 200 and body["object"] == "chat.completion"
        assert body["choices"][0]["message"] == {"role": "assistant", "content": "The answer is 42."}
        assert body["model"] == "sim-large" and body["usage"]["total_tokens"] > 0
        assert [m["id"] for m in httpx.get(f"{server.url}/models").json()["data"]] == [
            "sim-small", "sim-medium", "sim-large"
        ]
        bad = httpx.post(f"{server.url}/chat/completions", content=b"not json")
        assert bad.status_code == 400 and "bad request body" in bad.json()["error"]["message"]
    assert not server.running


def test_answers_are_deterministic():
    with EmbeddedServer() as first, EmbeddedServer() as second:
        assert first.url != second.url
        assert chat(first) == chat(second) == expected(PROMPT)
        assert expected(PROMPT)["text"].startswith("The answer is ")


@pytest.mark.parametrize(
    "mode, kind, status, words",
    [
        ("429", RateLimitError, 429, "HTTP 429 rate limited"),
        ("500", ServerError, 500, "HTTP 500 server error"),
        ("malformed", MalformedResponseError, 200, "not a chat completion"),
    ],
)
def test_injected_failures(mode, kind, status, words):
    with EmbeddedServer(failure_rate=1.0, failure_modes=[mode]) as server:
        with pytest.raises(kind) as info:
            chat(server, max_retries=0)
        check_error(info, kind, server.url, status)
        assert words in str(info.value)
        assert server.requests == 1


def test_429_and_500_are_retried_then_reported():
    with EmbeddedServer(failure_rate=1.0, failure_modes=["429", "500"]) as server:
        with pytest.raises(ServerError) as info:  # 429, 500, 429, 500: the last answer is reported
            chat(server, max_retries=3, backoff=0.0)
        assert server.requests == 4 and "after 4 attempts" in str(info.value)


def test_a_failure_rate_is_absorbed_by_retries():
    with EmbeddedServer(failure_rate=0.3, failure_modes=["429", "500"], seed=1) as server:
        client = ChatClient(server.url, max_retries=6, backoff=0.0)
        model = ChatModel("sim-small", name="probe", client=client)
        prompts = [f"Question: What is {i} + 1?" for i in range(12)]
        assert [model(inputs={"prompt": p}) for p in prompts] == [expected(p) for p in prompts]
        assert server.failures > 0 and server.requests == 12 + server.failures


def test_missing_and_wrong_api_keys():
    with EmbeddedServer(api_key="sk-test") as server:
        with pytest.raises(MissingAPIKeyError) as info:
            chat(server, api_key=None)
        check_error(info, MissingAPIKeyError, server.url, 401)
        assert "OPENAI_API_KEY" in str(info.value)
        with pytest.raises(AuthenticationError) as info:
            chat(server, api_key="sk-wrong")
        check_error(info, AuthenticationError, server.url, 401)
        assert chat(server, api_key="sk-test") == expected(PROMPT)


def test_a_hosted_endpoint_without_a_key_fails_before_sending():
    client = ChatClient("https://api.openai.com/v1", api_key=None)
    with pytest.raises(MissingAPIKeyError) as info:
        ChatModel("gpt-4o-mini", name="writer", client=client)(inputs={"prompt": "hi"})
    assert "writer" in str(info.value) and "https://api.openai.com/v1/chat/completions" in str(info.value)


def test_an_unreachable_endpoint():
    server = EmbeddedServer().start()
    url = server.url
    server.stop()
    with pytest.raises(EndpointUnreachableError) as info:
        chat(server_stub(url))
    check_error(info, EndpointUnreachableError, url, None)
    assert "unreachable" in str(info.value)


def test_a_slow_endpoint_times_out():
    with EmbeddedServer(latency=0.5) as server:
        with pytest.raises(EndpointTimeoutError) as info:
            chat(server, timeout=0.1)
        check_error(info, EndpointTimeoutError, server.url, None)


def test_a_failing_model_inside_a_plan_names_the_step_and_the_model(monkeypatch):
    with EmbeddedServer(failure_rate=1.0, failure_modes=["500"]) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        op = LLMEnsemble(2)
        for _ in range(2):  # the capturing call and a call of the cached plan
            with pytest.raises(XCSError) as info:
                op(inputs={"question": "hi"})
            chain, error = [], info.value
            while error is not None:
                chain.append(error)
                error = error.__cause__
            llm = [e for e in chain if isinstance(e, ServerError)]
            assert llm, chain
            assert "ChatModel 'member" in str(info.value) and server.url in str(info.value)


def test_the_default_endpoint_is_an_embedded_server(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL")
    stop_default_server()
    try:
        client = default_client()
        assert client.base_url == default_server().url and client.base_url.startswith("http://127.0.0.1:")
        assert default_client() is client
        answer = ChatModel("sim-small", name="probe")(inputs={"prompt": PROMPT})
        assert answer == expected(PROMPT)
    finally:
        stop_default_server()


def test_bad_server_settings():
    with pytest.raises(ValueError, match="failure_modes"):
        EmbeddedServer(failure_modes=["teapot"])
    with pytest.raises(ValueError, match="failure_rate"):
        EmbeddedServer(failure_rate=2.0)
    with pytest.raises(RuntimeError, match="not running"):
        EmbeddedServer().url


class server_stub:
    """Something with the ``url`` of a server that is no longer there."""

    def __init__(self, url: str):
        self.url = url
