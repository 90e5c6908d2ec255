"""Retrieval-augmented generation over a mutable document store that gains documents between calls."""

from __future__ import annotations

import logging

import numpy as np

from xcs import Operator

from sound.common import Cache, DocStore, FakeLLM, program

logger = logging.getLogger("corpus.rag")
SEED_DOCS = ["Mars is red because of iron oxide dust.", "The Nile flows north.", "Python is a language."]
QS = [{"question": q} for q in ("Why is Mars red?", "Which way does the Nile flow?", "What is Python?")]


def add_doc(op, i):
    op.store.add(f"New finding {i}: Mars has iron oxide and the Nile and Python too.")


# 1 ---------------------------------------------------------------------------------------------
class SimpleRAG(Operator):
    def __init__(self):
        self.store = DocStore(SEED_DOCS)
        self.llm = FakeLLM("rag", "echo")

    def forward(self, *, inputs):
        docs = self.store.search(inputs["question"], k=2)
        context = "\n".join(docs)
        return {"answer": self.llm(inputs={"prompt": f"Context:\n{context}\nQ: {inputs['question']}"})["text"],
                "sources": docs}


@program("rag_simple", "rag", QS, mutate=add_doc)
def simple_rag():
    return SimpleRAG()


# 2 ---------------------------------------------------------------------------------------------
class DocsListRAG(Operator):
    """The documents are a plain list the operator holds; scoring in forward."""

    def __init__(self):
        self.docs = list(SEED_DOCS)
        self.llm = FakeLLM("docslist", "echo")

    def forward(self, *, inputs):
        words = set(inputs["question"].lower().split())
        scored = sorted(self.docs, key=lambda d: -len(words & set(d.lower().split())))
        return {"answer": self.llm(inputs={"prompt": f"{scored[0]} :: {inputs['question']}"})["text"],
                "n_docs": len(self.docs)}


@program("rag_docs_list", "rag", QS, mutate=lambda op, i: op.docs.append(f"why is mars red which way python {i}"))
def docs_list_rag():
    return DocsListRAG()


# 3 ---------------------------------------------------------------------------------------------
class EmbeddingRAG(Operator):
    """numpy embeddings held in a dict; argsort ranking."""

    def __init__(self):
        self.index = {"docs": list(SEED_DOCS), "vecs": [self._embed(d) for d in SEED_DOCS]}
        self.llm = FakeLLM("embrag", "echo")

    @staticmethod
    def _embed(text):
        vec = np.zeros(8)
        for ch in text.lower():
            vec[ord(ch) % 8] += 1.0
        return vec / (np.linalg.norm(vec) or 1.0)

    def forward(self, *, inputs):
        q = self._embed(inputs["question"])
        sims = np.array([float(v @ q) for v in self.index["vecs"]])
        order = np.argsort(-sims)[:2]
        context = " ".join(self.index["docs"][i] for i in order)
        return {"answer": self.llm(inputs={"prompt": context + " || " + inputs["question"]})["text"],
                "top": int(order[0]), "mean_sim": round(float(np.mean(sims)), 6)}


def _add_vec(op, i):
    doc = f"zzzz qqqq {i}" * 3
    op.index["docs"].append(doc)
    op.index["vecs"].append(EmbeddingRAG._embed(doc))


@program("rag_numpy_argsort", "rag", QS, mutate=_add_vec)
def embedding_rag():
    return EmbeddingRAG()


# 4 ---------------------------------------------------------------------------------------------
class MultiQueryRAG(Operator):
    """Rewrite the question three ways (independent slow calls), retrieve for each, answer."""

    def __init__(self):
        self.rewriters = [FakeLLM(f"rw{i}", "echo", 0.03) for i in range(3)]
        self.store = DocStore(SEED_DOCS)
        self.answer = FakeLLM("mq_answer", "echo")

    def forward(self, *, inputs):
        variants = [r(inputs={"prompt": inputs["question"]})["text"] for r in self.rewriters]
        docs = []
        for v in [inputs["question"]] + variants:
            for d in self.store.search(v, k=1):
                if d not in docs:
                    docs.append(d)
        return {"answer": self.answer(inputs={"prompt": "\n".join(docs)})["text"], "docs": docs}


@program("rag_multi_query", "rag", QS, mutate=add_doc, slow=True)
def multi_query_rag():
    return MultiQueryRAG()


# 5 ---------------------------------------------------------------------------------------------
class CachedRAG(Operator):
    """A response cache consulted before the model."""

    def __init__(self):
        self.cache = Cache()
        self.store = DocStore(SEED_DOCS)
        self.llm = FakeLLM("cached", "echo")

    def forward(self, *, inputs):
        hit = self.cache.get(inputs["question"])
        if hit is not None:
            return {"answer": hit, "cached": True}
        answer = self.llm(inputs={"prompt": " ".join(self.store.search(inputs["question"]))})["text"]
        self.cache.put(inputs["question"], answer)
        return {"answer": answer, "cached": False}


@program("rag_response_cache", "rag", QS[:2] + QS[:1] + [QS[2]])
def cached_rag():
    return CachedRAG()


# 6 ---------------------------------------------------------------------------------------------
class ThresholdRAG(Operator):
    """Only answers from context when enough documents exist (len(store) read each call)."""

    def __init__(self):
        self.store = DocStore(SEED_DOCS[:1])
        self.llm = FakeLLM("threshold", "echo")
        self.min_docs = 2

    def forward(self, *, inputs):
        if len(self.store) < self.min_docs:
            return {"answer": "not enough context", "n": len(self.store)}
        return {"answer": self.llm(inputs={"prompt": str(self.store.search(inputs["question"]))})["text"],
                "n": len(self.store)}


@program("rag_len_threshold", "rag", QS, mutate=add_doc)
def threshold_rag():
    return ThresholdRAG()


# 7 ---------------------------------------------------------------------------------------------
class CitationRAG(Operator):
    """Numbered citations over docs, generator expression for the context."""

    def __init__(self):
        self.store = DocStore(SEED_DOCS)
        self.llm = FakeLLM("cite", "echo")

    def forward(self, *, inputs):
        docs = self.store.search(inputs["question"], k=3)
        context = "\n".join(f"[{i + 1}] {d}" for i, d in enumerate(docs))
        answer = self.llm(inputs={"prompt": f"{context}\nAnswer with citations: {inputs['question']}"})["text"]
        return {"answer": answer, "citations": list(range(1, len(docs) + 1))}


@program("rag_citations_genexpr", "rag", QS, mutate=add_doc)
def citation_rag():
    return CitationRAG()


# 8 ---------------------------------------------------------------------------------------------
class RerankRAG(Operator):
    """Score each retrieved doc with a slow reranker (map over a runtime list), keep the best."""

    def __init__(self):
        self.store = DocStore(SEED_DOCS)
        self.reranker = FakeLLM("rerank", "score", 0.02)
        self.llm = FakeLLM("rr_answer", "echo")

    def forward(self, *, inputs):
        docs = self.store.search(inputs["question"], k=3)
        scores = [int(self.reranker(inputs={"prompt": f"{inputs['question']} || {d}"})["text"]) for d in docs]
        best = docs[max(range(len(docs)), key=lambda i: scores[i])]
        return {"answer": self.llm(inputs={"prompt": best})["text"], "scores": scores}


@program("rag_rerank_map", "rag", QS, mutate=add_doc, slow=True)
def rerank_rag():
    return RerankRAG()


# 9 ---------------------------------------------------------------------------------------------
class LoggingRAG(Operator):
    def __init__(self):
        self.store = DocStore(SEED_DOCS)
        self.llm = FakeLLM("lograg", "echo")

    def forward(self, *, inputs):
        docs = self.store.search(inputs["question"], k=2)
        logger.info("retrieved %d docs for %r", len(docs), inputs["question"])
        answer = self.llm(inputs={"prompt": docs[0] + "\n" + inputs["question"]})["text"]
        logger.debug("answer=%s", answer)
        return {"answer": answer}


@program("rag_logging", "rag", QS, mutate=add_doc)
def logging_rag():
    return LoggingRAG()


# 10 --------------------------------------------------------------------------------------------
class HybridRAG(Operator):
    """Keyword and 'vector' retrieval in parallel (two slow retriever models), then fuse."""

    def __init__(self):
        self.keyword = FakeLLM("kw_retriever", "list", 0.03)
        self.vector = FakeLLM("vec_retriever", "list", 0.03)
        self.fuse = FakeLLM("fuse", "echo")

    def forward(self, *, inputs):
        a = self.keyword(inputs={"prompt": inputs["question"]})["text"].splitlines()
        b = self.vector(inputs={"prompt": inputs["question"]})["text"].splitlines()
        merged = sorted(set(a) | set(b))
        return {"answer": self.fuse(inputs={"prompt": "|".join(merged)})["text"], "k": len(merged)}


@program("rag_hybrid_parallel", "rag", QS, slow=True)
def hybrid_rag():
    return HybridRAG()
