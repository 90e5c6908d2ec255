"""Injection and hash-seed figures of issue 19 (items 1 and 2): counts, not timings.

1. **Injections.** Every control character (0x00-0x1f, DEL), CR LF and every Unicode line break
   (\\x85, \\u2028, \\u2029) is put into a key that would run ``__import__('builtins').XCS_PWNED.append(1)``
   if it reached a plan's code raw: as a top-level key, a nested key, keyword names (``op(**inputs["n"])``)
   and a value type's name (all in one call of ``tests/test_injection.py``'s ``ReadsKeys``), and as the
   operator class's name, under every capture mode. Counted: injections tried, injections that ran
   code (target 0), plans that do not parse or failed with anything but the eager result.
2. **NUL keys.** A key holding NUL, read directly, nested and spread as keywords, in every mode:
   clear (the eager result, or an ``XCSError``; never a raw ``SyntaxError``) / tried.
3. **Hash seeds.** 5 child processes with PYTHONHASHSEED 0, 1, 2, 12345, 4294967295, each with a
   private ``XCS_CACHE_DIR``, compile ``tests/test_hashseed.py``'s operators (a set iterated in forward,
   frozenset uses, one call per set element, a chain, ``examples/ensemble.py``) in every mode.
   Counted per mode: distinct plan texts across the 5 seeds (target 1), and distinct disk-cache file
   name lists (target 1).

Run: ``python benchmarks/bench_injection.py`` from the repository root (about 30 s). ``--smoke``: three
characters (NUL, LF, \u2028), every mode, two hash seeds (checks the script works).
"""

from __future__ import annotations

import builtins
import os
import sys
import tempfile
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from common import private_cache_dir  # noqa: E402

private_cache_dir("injection")

import test_hashseed  # noqa: E402
import test_injection  # noqa: E402
from xcs.runtime.errors import XCSError  # noqa: E402
from xcs import Operator, dump, jit  # noqa: E402

MODES = ("trace", "structural", "enhanced", "auto")
SMOKE = "--smoke" in sys.argv[1:]
CHARACTERS = ("\x00", "\n", "\u2028") if SMOKE else test_injection.CHARACTERS
SEEDS = test_hashseed.SEEDS[:2] if SMOKE else test_hashseed.SEEDS


def bench_injections(rows: list, results: dict) -> None:
    tried = ran = bad = 0
    for mode in MODES:
        for char in CHARACTERS:
            for operator in (test_injection.ReadsKeys, test_injection.evil_operator(char)):
                builtins.XCS_PWNED = []
                tried += 1
                try:
                    text, result, eager = test_injection.compile_and_run(mode, char, operator)
                    ok = result == eager and all(c.isprintable() or c == "\n" for c in text)
                    compile(text, "<plan>", "exec")
                except Exception:
                    ok = False
                ran += bool(builtins.XCS_PWNED)
                bad += not ok
    del builtins.XCS_PWNED
    results.update(tried=tried, ran=ran, bad=bad)
    rows.append(("1", "injections tried (chars x modes x key/operator name)", f"{tried}", ""))
    rows.append(("1", "injections that ran code", f"{ran}", "target 0"))
    rows.append(("1", "plans unparsable or not equal to eager", f"{bad}", ""))


class NulKeys(Operator):
    def __init__(self):
        self.echo = test_injection.Echo()

    def forward(self, *, inputs):
        return self.echo(inputs={"v": inputs["a\x00b"], "n": inputs["n"]["a\x00b"], "kw": self.echo(**inputs["n"])})


def bench_nul(rows: list, results: dict) -> None:
    clear = 0
    data = {"a\x00b": 1, "n": {"a\x00b": 2}}
    for mode in MODES:
        try:
            clear += jit(mode=mode)(NulKeys())(inputs=data) == NulKeys().forward(inputs=data)
            dump(jit(mode=mode)(NulKeys()), data)
        except XCSError:
            clear += 1
        except Exception:
            pass
    results.update(nul_clear=clear, nul_tried=len(MODES))
    rows.append(("2", "NUL keys clear (eager result or XCSError) / tried", f"{clear}/{len(MODES)}", ""))


def bench_seeds(rows: list, results: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        reports = test_hashseed.run_seeds(SEEDS, [os.path.join(tmp, s) for s in SEEDS])
    for mode in MODES:
        texts = {tuple(t for k, t in sorted(r["plans"].items()) if k.startswith(mode + ":")) for r in reports}
        results[f"seeds_{mode}"] = len(texts)
        rows.append(("3", f"distinct plan texts across {len(SEEDS)} seeds, {mode}", f"{len(texts)}", "target 1"))
    files = {tuple(r["files"]) for r in reports}
    results["seeds_files"] = len(files)
    rows.append(("3", f"distinct disk-cache file name lists across {len(SEEDS)} seeds", f"{len(files)}",
                 f"{len(reports[0]['files'])} files each"))


def main() -> None:
    warnings.simplefilter("ignore")
    rows: list = []
    results: dict = {}
    print(f"ember-xcs injection and hash-seed figures - Python {sys.version.split()[0]} on {sys.platform}")
    for bench in (bench_injections, bench_nul, bench_seeds):
        bench(rows, results)
    width = max(len(r[1]) for r in rows)
    for number, name, value, note in rows:
        print(f"{number}  {name:<{width}}  {value:>8}  {note}")

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print("\ntargets:")
    print(f"  injections that ran code: {results['ran']} of {results['tried']} (0): {verdict(results['ran'] == 0)}")
    print(f"  NUL keys clear: {results['nul_clear']}/{results['nul_tried']} (all): "
          f"{verdict(results['nul_clear'] == results['nul_tried'])}")
    for mode in MODES:
        n = results[f"seeds_{mode}"]
        print(f"  distinct plan texts across {len(SEEDS)} seeds, {mode}: {n} (1): {verdict(n == 1)}")
    print(f"  distinct disk-cache file names across {len(SEEDS)} seeds: {results['seeds_files']} (1): "
          f"{verdict(results['seeds_files'] == 1)}")


if __name__ == "__main__":
    main()
