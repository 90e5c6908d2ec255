"""The size of each package, against the architecture's targets (issue "Architecture").

Prints the lines of every module of ``xcs`` (the public API), ``xcs.compiler`` and ``xcs.runtime``
(blank lines and comments included: what a reader reads), the total per package, and the targets:
the runtime at most 1,500 lines, its executor at most 400. Nothing is timed; ``--smoke`` is accepted
(and changes nothing) so that CI can run every benchmark the same way.

Usage, from the repository root: ``python benchmarks/bench_layout.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"xcs (public API)": ROOT / "xcs", "xcs.compiler": ROOT / "compiler", "xcs.runtime": ROOT / "runtime"}
TARGETS = (("xcs.runtime", None, 1500), ("xcs.runtime", "executor.py", 400))


def lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def main() -> None:
    totals: dict[str, int] = {}
    files: dict[tuple[str, str], int] = {}
    for package, folder in PACKAGES.items():
        modules = sorted(p for p in folder.glob("*.py") if not p.is_symlink())
        print(f"{package}")
        for module in modules:
            files[package, module.name] = lines(module)
            print(f"  {module.name:<24} {files[package, module.name]:>6}")
        totals[package] = sum(files[package, m.name] for m in modules)
        print(f"  {'total':<24} {totals[package]:>6}")
    print("targets")
    for n, (package, module, limit) in enumerate(TARGETS, 1):
        value = totals[package] if module is None else files.get((package, module), 0)
        what = package if module is None else f"{package}/{module}"
        status = "met" if value <= limit else "NOT MET"
        print(f"  {n}  {f'{what} <= {limit} lines':<44} {status} ({value})")


if __name__ == "__main__":
    sys.argv[1:] = [a for a in sys.argv[1:] if a != "--smoke"]
    main()
