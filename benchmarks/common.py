"""What the benchmark scripts share: a private plan-cache directory removed at exit, and the small
operators several workloads are built from (a trivial step, a chain of them, a sleeping step)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time

from xcs import Operator


def private_cache_dir(prefix: str) -> str:
    """A fresh temporary directory, set as ``XCS_CACHE_DIR`` unless one is set, removed at exit."""
    path = tempfile.mkdtemp(prefix=f"xcs-bench-{prefix}-")
    atexit.register(shutil.rmtree, path, True)
    os.environ.setdefault("XCS_CACHE_DIR", path)
    return path


class Inc(Operator):
    """A trivial step: ``v + 1``."""

    def forward(self, *, inputs):
        return {"v": inputs["v"] + 1}


class Chain(Operator):
    """``n`` trivial steps, each feeding the next; ``tag`` is a static attribute, so distinct tags are
    distinct structures (distinct cache keys)."""

    def __init__(self, n, tag=0):
        self.tag = tag
        self.ops = [Inc() for _ in range(n)]

    def forward(self, *, inputs):
        x = inputs
        for op in self.ops:
            x = op(inputs=x)
        return x


class Sleeper(Operator):
    """A step that waits ``seconds`` (an LLM or tool call, as far as scheduling is concerned)."""

    def __init__(self, name: str, seconds: float):
        self.name = name
        self.seconds = seconds

    def forward(self, *, inputs):
        time.sleep(self.seconds)
        return {"answer": f"{self.name}:{inputs['query']}"}
