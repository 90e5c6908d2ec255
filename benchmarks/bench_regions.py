"""Region figures of ember-xcs (issue 13, Figures): what the capture compiles of the constructs people
write, and what a loop costs.

1. **Programs compiled without an opaque step** (target >= 95%): the realistic region corpus of
   ``tests/sound/regions_style.py`` (generator expressions, filters, lambdas, routers, with blocks,
   effects under conditions, merged outputs, critique/revise loops) compiled by ``jit(mode="auto")``:
   the count of programs whose plans hold no statement run as written (``runtime.segments``). The
   same count over the ``match`` corpus of ``tests/sound/match_style.py`` and over the whole soundness
   corpus of ``tests/sound`` is printed after it.
2. **Wrong outputs** (target 0): programs whose compiled run differs from eager in any observable way
   (``sound.harness.differences``: output, exception type, LLM/tool calls, effects, prints, logs,
   state), under every scheduler.
3. **Critique/revise loop** (target <= 1.05x): a draft, then three rounds of judge and revise, each
   call a 50 ms sleep: eager's sequential time and the compiled plan's, side by side; once with a
   static bound (unrolled into branches) and once with the bound an input (a loop region).

Nothing asserts. Run ``python benchmarks/bench_regions.py [--smoke]`` from the repository root
(``--smoke``: one scheduler, one repetition of the loop).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
os.environ["XCS_DISK_CACHE"] = "0"

from sound import harness  # noqa: E402
from sound.common import TIMING  # noqa: E402
from xcs import Operator, execution_options, jit  # noqa: E402
from xcs.compiler.driver import PLANS, clear_caches  # noqa: E402
from xcs.compiler.entries import Eager  # noqa: E402
from xcs.compiler.ir import Call, walk  # noqa: E402

CALL = 0.05


def opaque_statements() -> list[str]:
    """The statements run as written (and whole-call eager entries) in the plans cached now."""
    found = []
    for entries in PLANS._entries.values():
        for entry in entries:
            if type(entry.plan) is Eager:
                found.append(f"whole call eager: {entry.plan}"[:120])
            elif entry.graph is not None:
                found += [f"{n.loc}  {n.loc.text}" for n in walk(entry.graph.nodes) if isinstance(n, Call) and n.source]
    return found


def corpus_figures(programs: list, schedulers: tuple[str, ...]) -> tuple[int, list[str], list[str]]:
    """(programs with no opaque step, programs with a wrong output, lines to print)."""
    clean, wrong, lines = 0, [], []
    for program in programs:
        TIMING.scale = 0.0
        eager = harness.run(program)
        opaque: list[str] = []
        for scheduler in schedulers:
            clear_caches()
            compiled = harness.run(program, "auto", scheduler)
            opaque = opaque or opaque_statements()
            diffs = harness.differences(eager, compiled)
            if diffs and program.name not in wrong:
                wrong.append(program.name)
                lines.append(f"  WRONG   {program.name} ({scheduler}): {diffs[0][:160]}")
        if opaque:
            lines.append(f"  OPAQUE  {program.name}: {opaque[0][:150]}")
        else:
            clean += 1
    return clean, wrong, lines


class Slow(Operator):
    """A 50 ms model call; the judge never approves, so the loop runs its three rounds."""

    def __init__(self, verdict: str = ""):
        self.verdict = verdict

    def forward(self, *, inputs):
        time.sleep(CALL)
        return {"text": self.verdict or inputs["prompt"] + "+"}


class CritiqueRevise(Operator):
    def __init__(self, rounds: int = 3):
        self.draft, self.judge, self.revise = Slow(), Slow("no"), Slow()
        self.rounds = rounds

    def forward(self, *, inputs):
        draft = self.draft(inputs={"prompt": inputs["question"]})["text"]
        rounds = 0
        while rounds < self.rounds and self.judge(inputs={"prompt": draft})["text"] != "yes":
            draft = self.revise(inputs={"prompt": draft})["text"]
            rounds += 1
        return {"answer": draft, "rounds": rounds}


class CritiqueLoop(Operator):
    """The same rounds with the bound an input: a loop region (``while`` on runtime values)."""

    def __init__(self):
        self.draft, self.judge, self.revise = Slow(), Slow("no"), Slow()

    def forward(self, *, inputs):
        draft = self.draft(inputs={"prompt": inputs["question"]})["text"]
        rounds = 0
        while rounds < inputs["rounds"] and self.judge(inputs={"prompt": draft})["text"] != "yes":
            draft = self.revise(inputs={"prompt": draft})["text"]
            rounds += 1
        return {"answer": draft, "rounds": rounds}


def loop_figure(repeats: int, kind: type = CritiqueRevise) -> tuple[float, float, list[str]]:
    eager, compiled = kind(), jit(kind(), mode="auto")
    inputs = {"question": "q", "rounds": 3}
    with execution_options(scheduler="auto"):
        assert compiled(inputs=inputs) == eager(inputs=inputs)  # compile once, outside the timing
        times_e, times_c = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            eager(inputs=inputs)
            times_e.append(time.perf_counter() - start)
            start = time.perf_counter()
            compiled(inputs=inputs)
            times_c.append(time.perf_counter() - start)
    return statistics.median(times_e), statistics.median(times_c), opaque_statements()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="one scheduler, one repetition of the loop")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    schedulers = ("auto",) if args.smoke else harness.SCHEDULERS
    programs = harness.programs()
    regions = [p for p in programs if p.module == "regions_style"]
    print(f"region corpus: {len(regions)} programs (tests/sound/regions_style.py), jit(mode='auto'), "
          f"schedulers {', '.join(schedulers)}")
    clean, wrong, lines = corpus_figures(regions, schedulers)
    print("\n".join(lines))
    matches = [p for p in programs if p.module == "match_style"]
    print(f"match corpus: {len(matches)} programs (tests/sound/match_style.py)")
    match_clean, match_wrong, match_lines = corpus_figures(matches, schedulers)
    print("\n".join(match_lines))
    others = [p for p in programs if p.module not in ("regions_style", "match_style")]
    if args.smoke:
        others = others[:10]
    all_clean, all_wrong, _ = corpus_figures(others, ("auto",))
    all_clean, all_wrong = all_clean + match_clean, all_wrong + match_wrong
    others += matches
    clear_caches()
    e, c, loop_opaque = loop_figure(1 if args.smoke else 5)
    clear_caches()
    le, lc, region_opaque = loop_figure(1 if args.smoke else 5, CritiqueLoop)
    share = clean / len(regions)
    print("\nfigures")
    print(f"  region corpus compiled without an opaque step: {clean}/{len(regions)} ({share:.0%})")
    print(f"  match corpus compiled without an opaque step: {match_clean}/{len(matches)}")
    print(f"  whole soundness corpus{' (smoke: first 10 others)' if args.smoke else ''} without an opaque step: "
          f"{clean + all_clean}/{len(regions) + len(others)}")
    print(f"  wrong outputs: {len(wrong) + len(all_wrong)} programs")
    print(f"  critique/revise loop, 3 rounds of 50 ms calls: eager {e * 1000:.0f} ms   compiled {c * 1000:.0f} ms"
          f"   ({c / e:.3f}x; the loop {'runs as written' if loop_opaque else 'is compiled'}: a static bound, unrolled)")
    print(f"  critique/revise loop, runtime bound (a loop region): eager {le * 1000:.0f} ms   compiled {lc * 1000:.0f} ms"
          f"   ({lc / le:.3f}x; the loop {'runs as written' if region_opaque else 'is compiled'})")
    print("\ntargets")
    print(f"  1  region corpus without an opaque step >= 95%   {'met' if share >= 0.95 else 'NOT MET'} ({share:.0%})")
    print(f"  2  wrong outputs: 0                             {'met' if not wrong and not all_wrong else 'NOT MET'}")
    print(f"  3  critique/revise loop <= 1.05x eager          {'met' if c / e <= 1.05 else 'NOT MET'} ({c / e:.3f}x)")
    print(f"  3' loop region <= 1.05x eager                   {'met' if lc / le <= 1.05 else 'NOT MET'} ({lc / le:.3f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
