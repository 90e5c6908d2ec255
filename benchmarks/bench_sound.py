"""Soundness figures of ember-xcs over the corpus of ``tests/sound/`` (issue 11, Figures).

Every program runs eagerly and under ``jit(mode="auto")`` (``auto`` scheduler), on its inputs in
sequence on one instance with its state changed between calls, from an empty plan cache (disk cache
off). The script never asserts; it prints one line per failing program with its cause, then:

1. **Wrong outputs** (target 0): programs whose compiled run differs from eager in any observable way
   (output, exception type, LLM/tool calls, effects, prints, logs, state), and the calls affected.
2. **Crashes where eager works**: a compiled call raising where the eager call returned.
3. **Compiled without whole-call eager fallback** (target >= 90%): programs for which a plan (not the
   ``Eager`` marker of a graph break) served every call's signature.
4. **Overlap** (target >= 90%): for the programs with independent slow calls (20-30 ms simulated LLM
   calls), the compiled run under the ``parallel`` scheduler has more than one call in flight at some
   point (event log) and its wall time is below 0.7x the eager run's.

Run: ``python benchmarks/bench_sound.py [--smoke]`` from the repository root (``--smoke``: a few
programs, for CI; about 1 minute for the whole corpus on 2 CPUs).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
os.environ["XCS_DISK_CACHE"] = "0"

from sound import harness  # noqa: E402
from sound.common import TIMING  # noqa: E402
from xcs.compiler.driver import clear_caches  # noqa: E402


def eager_fallback_cause(run) -> str:
    for w in run.warnings:
        if "runs eagerly" in w:
            text = w.split(": ", 1)[-1]
            if "}: " in text:
                text = text.split("}: ", 1)[1]
            return " ".join(text.split())[:200]
    return "no plan in the cache for the signature"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="a few programs only")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    programs = harness.programs()
    if args.smoke:
        slow = [p for p in programs if p.slow][:3]
        programs = [p for p in programs if not p.slow][:9] + slow
    print(f"soundness corpus: {len(programs)} programs ({sum(p.slow for p in programs)} with independent slow calls), "
          f"jit(mode='auto'), scheduler 'auto'")

    wrong, wrong_calls, crashes, planned, fallback = [], 0, [], [], []
    for program in programs:
        TIMING.scale = 0.0
        eager = harness.run(program)
        clear_caches()
        compiled = harness.run(program, "auto", "auto")
        diffs = harness.differences(eager, compiled)
        crashed = [i for i, (e, c) in enumerate(zip(eager.outcomes, compiled.outcomes)) if c.error and not e.error]
        if crashed:
            crashes.append(program.name)
            print(f"  CRASH     {program.name}: call {crashed[0]}: {compiled.outcomes[crashed[0]].message[:160]}")
        elif diffs:
            wrong.append(program.name)
            calls = sorted({int(d.split(":")[0].split()[1]) for d in diffs if d.startswith("call ")})
            wrong_calls += len(calls)
            print(f"  WRONG     {program.name}: {len(calls)} call(s): {diffs[0][:200]}")
        if any(o.planned for o in compiled.outcomes) and not any(o.planned is False for o in compiled.outcomes):
            planned.append(program.name)
        else:
            fallback.append(program.name)
            print(f"  EAGER     {program.name}: {eager_fallback_cause(compiled)}")

    slow = [p for p in programs if p.slow]
    overlapped = []
    print(f"\noverlap ({len(slow)} programs with independent slow calls; parallel scheduler, delays on)")
    TIMING.scale = 1.0
    for program in slow:
        eager = harness.run(program)
        clear_caches()
        first = harness.run(program, "auto", "parallel")  # compile (a static capture runs nothing; a trace runs once)
        compiled = harness.run(program, "auto", "parallel")  # a fresh instance; the plan is cached
        compiled.warnings = first.warnings
        ratio = compiled.seconds / eager.seconds if eager.seconds else float("inf")
        ok = compiled.peak > 1 and ratio < 0.7 and not any(o.error for o in compiled.outcomes)
        line = f"  {'ok  ' if ok else 'NO  '}  {program.name:34} peak in flight {compiled.peak}  wall {ratio:.2f}x eager"
        if not ok:
            if any(o.error for o in compiled.outcomes):
                line += f"  (crash: {next(o.message for o in compiled.outcomes if o.error)[:100]})"
            elif any(o.planned is False for o in compiled.outcomes):
                line += f"  (whole-call eager: {eager_fallback_cause(compiled)[:140]})"
            else:
                line += "  (a plan runs, but the slow calls are inside one opaque step)" if compiled.peak <= 1 else ""
        print(line)
        if ok:
            overlapped.append(program.name)
    TIMING.scale = 0.0

    n = len(programs)
    share = len(planned) / n
    over = len(overlapped) / len(slow) if slow else 1.0
    print("\nfigures")
    print(f"  wrong outputs: {len(wrong)} programs, {wrong_calls} calls")
    print(f"  crashes where eager works: {len(crashes)} programs")
    print(f"  compiled without whole-call eager fallback: {len(planned)}/{n} ({share:.0%})")
    print(f"  independent slow calls overlapped (peak > 1, wall < 0.7x eager): {len(overlapped)}/{len(slow)} ({over:.0%})")
    print("\ntargets")
    print(f"  1  wrong outputs: 0 programs                     {'met' if not wrong else 'NOT MET'} "
          f"({len(wrong)} programs, {wrong_calls} calls)")
    print(f"  2  crashes where eager works: 0                  {'met' if not crashes else 'NOT MET'} ({len(crashes)})")
    print(f"  3  compiled without eager fallback >= 90%        {'met' if share >= 0.9 else 'NOT MET'} ({share:.0%})")
    print(f"  4  slow programs overlapped >= 90%               {'met' if over >= 0.9 else 'NOT MET'} ({over:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
