"""Generated plans are byte-identical across processes and hash seeds; first calls that race compile once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from xcs import Operator, jit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DUMP = (
    "import sys; from xcs import dump; from examples.ensemble import Ensemble; "
    "sys.stdout.write(dump(Ensemble(3), {'query': 'hi', 'tags': {'a': 1}}))"
)


def test_plan_text_is_identical_across_hash_seeds(tmp_path):
    texts = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "XCS_CACHE_DIR": str(tmp_path / seed)}
        done = subprocess.run([sys.executable, "-c", DUMP], cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        texts.add(done.stdout)
    assert len(texts) == 1
    assert "# signature: {query: str, tags: {a: int}}" in texts.pop()


def test_racing_first_calls_capture_once():
    captures = []
    gate = threading.Barrier(8)

    class Slow(Operator):
        def forward(self, *, inputs):
            captures.append(threading.get_ident())
            return {"v": inputs["v"] * 2}

    @jit
    class Root(Operator):
        def __init__(self):
            self.slow = Slow()

        def forward(self, *, inputs):
            return self.slow(inputs=inputs)

    op = Root()
    results = []

    def call(value):
        gate.wait()
        results.append(op(inputs={"v": value}))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["v"] for r in results) == [2 * i for i in range(8)]
    from xcs.plans import PLANS

    keys = [k for k in PLANS._entries if k[0] == op._xcs_structure]
    assert len(keys) == 1 and len(PLANS.get(keys[0])) == 1  # one capture, one plan
    assert len(captures) == 8  # every call ran its operator exactly once
