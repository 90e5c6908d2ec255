"""First calls that race compile once. (Byte-identical plans across hash seeds: ``test_hashseed.py``.)"""

from __future__ import annotations

import threading

from xcs import Operator, jit


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
    from xcs.compiler.driver import PLANS

    keys = [k for k in PLANS._entries if k[0] == op._xcs_structure]
    assert len(keys) == 1 and len(PLANS.get(keys[0])) == 1  # one capture, one plan
    assert len(captures) == 8  # every call ran its operator exactly once
