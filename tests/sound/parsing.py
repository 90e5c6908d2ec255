"""Structured-output parsing: json.loads with fallbacks, regex extraction, textwrap.dedent prompts."""

from __future__ import annotations

import json
import re
import textwrap

from xcs import Operator

from sound.common import FakeLLM, program

Q = [{"query": q} for q in ("extract 1", "extract 2", "extract 3", "extract 4", "extract 5")]
FENCE = re.compile(r"```json\s*(\{.*?\})\s*```", re.S)
NUMBER = re.compile(r"#(\d+)")


# 1
class JsonAnswer(Operator):
    def __init__(self):
        self.llm = FakeLLM("jsonl", "json")

    def forward(self, *, inputs):
        raw = self.llm(inputs={"prompt": inputs["query"]})["text"]
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            m = FENCE.search(raw)
            data = json.loads(m.group(1)) if m else {"answer": None, "confidence": 0.0}
        return {"answer": data["answer"], "confidence": data["confidence"]}


@program("parse_json_fallback", "parsing", Q)
def json_answer():
    return JsonAnswer()


# 2
class StrictJson(Operator):
    """No fallback: malformed output raises (the same exception type is expected)."""

    def __init__(self):
        self.llm = FakeLLM("strictjson", "json")

    def forward(self, *, inputs):
        data = json.loads(self.llm(inputs={"prompt": inputs["query"]})["text"])
        return {"answer": data["answer"], "tags": data["tags"]}


@program("parse_json_strict_raises", "parsing", Q)
def strict_json():
    return StrictJson()


# 3
class DedentPrompt(Operator):
    def __init__(self):
        self.llm = FakeLLM("dedent", "echo")

    def forward(self, *, inputs):
        prompt = textwrap.dedent(f"""
            You are an extraction system.
            Input: {inputs['query']}
            Output the entities.
        """).strip()
        return {"answer": self.llm(inputs={"prompt": prompt})["text"]}


@program("parse_textwrap_dedent", "parsing", Q[:3])
def dedent_prompt():
    return DedentPrompt()


# 4
class RegexNumber(Operator):
    def __init__(self):
        self.llm = FakeLLM("regexnum", "echo")

    def forward(self, *, inputs):
        text = self.llm(inputs={"prompt": inputs["query"]})["text"]
        m = NUMBER.search(text)
        value = int(m.group(1)) if m else -1
        return {"value": value, "even": value % 2 == 0}


@program("parse_compiled_regex", "parsing", Q[:3])
def regex_number():
    return RegexNumber()


# 5
class ListParser(Operator):
    def __init__(self):
        self.llm = FakeLLM("bullets", "list")

    def forward(self, *, inputs):
        text = self.llm(inputs={"prompt": inputs["query"]})["text"]
        items = [line[2:] for line in text.splitlines() if line.startswith("- ")]
        return {"items": items, "count": len(items)}


@program("parse_bullet_list", "parsing", Q[:3])
def list_parser():
    return ListParser()


# 6
class SchemaValidated(Operator):
    """Validates against a schema dict held by the operator (a required field is added later)."""

    def __init__(self):
        self.llm = FakeLLM("schema", "json")
        self.schema = {"required": ["answer"]}

    def forward(self, *, inputs):
        raw = self.llm(inputs={"prompt": inputs["query"]})["text"]
        try:
            data = json.loads(raw)
        except ValueError:
            return {"ok": False, "missing": ["<unparseable>"]}
        missing = [k for k in self.schema["required"] if k not in data]
        return {"ok": not missing, "missing": missing}


def _require_more(op, i):
    op.schema["required"].append(["confidence", "source", "tags"][i % 3])


@program("parse_schema_required", "parsing", Q[:4], mutate=_require_more)
def schema_validated():
    return SchemaValidated()


# 7
class ReSubClean(Operator):
    def __init__(self):
        self.llm = FakeLLM("cleaner", "echo")

    def forward(self, *, inputs):
        cleaned = re.sub(r"\s+", " ", inputs["query"]).strip().lower()
        text = self.llm(inputs={"prompt": cleaned})["text"]
        return {"text": re.sub(r"#\d+", "#N", text), "raw": text}


@program("parse_re_sub", "parsing", [{"query": "  Hello   World "}, {"query": "A\tB"}, {"query": "x"}])
def re_sub_clean():
    return ReSubClean()


# 8
class KeyValueParser(Operator):
    """Parses ``key: value`` lines out of a ReAct-style reply (dict comprehension over lines)."""

    def __init__(self):
        self.llm = FakeLLM("kv", "react")

    def forward(self, *, inputs):
        text = self.llm(inputs={"prompt": inputs["query"]})["text"]
        fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in text.splitlines() if ":" in line)}
        return {"fields": fields}


@program("parse_kv_lines", "parsing", Q[:3])
def key_value_parser():
    return KeyValueParser()


# 9
class MultiFormat(Operator):
    """Two slow extraction calls (json and list) in parallel, merged."""

    def __init__(self):
        self.j = FakeLLM("mf_json", "json", 0.03)
        self.l = FakeLLM("mf_list", "list", 0.03)

    def forward(self, *, inputs):
        raw = self.j(inputs={"prompt": inputs["query"]})["text"]
        items = self.l(inputs={"prompt": inputs["query"]})["text"].splitlines()
        start, end = raw.find("{"), raw.rfind("}")
        data = json.loads(raw[start:end + 1]) if start >= 0 else {}
        return {"answer": data.get("answer"), "items": items}


@program("parse_multi_format_parallel", "parsing", Q[:3], slow=True)
def multi_format():
    return MultiFormat()


# 10
class TemplateRegistry(Operator):
    """Prompt templates in a dict of dedented strings, edited between calls."""

    def __init__(self):
        self.templates = {"extract": textwrap.dedent("""\
            Extract entities from:
            {text}
        """)}
        self.llm = FakeLLM("registry", "echo")

    def forward(self, *, inputs):
        prompt = self.templates["extract"].format(text=inputs["query"])
        return {"answer": self.llm(inputs={"prompt": prompt})["text"]}


def _edit(op, i):
    op.templates["extract"] = f"v{i}: list the entities in\n{{text}}\n"


@program("parse_template_dict", "parsing", Q[:3], mutate=_edit)
def template_registry():
    return TemplateRegistry()
