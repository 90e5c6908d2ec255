"""Run every benchmark script, write all their figures to one file, and summarise their targets.

Each ``benchmarks/bench_*.py`` runs in turn (in name order) as a subprocess of this same interpreter,
from the repository root, with its output (stdout and stderr together) streamed here as it comes and
collected. The figures file gets a header (date, Python, platform, CPUs, commit) and each script's
whole output; it is rewritten after every script, so an interrupted run keeps what it measured.

Last comes a summary of every target line the scripts printed: the lines of a script's ``targets``
section (the formats differ between scripts; a line's status is its ``met`` / ``NOT MET`` / ``MISSED``
word), or, for a script without such a section (``bench_analysis.py``), its ``...: yes (...)`` /
``...: NO (...)`` verdict lines. The benchmarks never assert, and neither does this: the exit status is
1 only when a script failed (non-zero exit or stopped at the time limit), not when a target was missed.

Usage, from the repository root:

    python benchmarks/run_all.py [--smoke] [--out FILE] [--only NAME ...] [--timeout SECONDS]

``--out`` defaults to ``benchmarks/results/figures-<python major.minor>.txt`` (``benchmarks/results/``
is git-ignored). ``--only`` runs the scripts whose name contains NAME (``--only core --only cache``).
``--timeout`` stops a script after that many seconds (default 900; 120 with ``--smoke``). ``--smoke``
passes ``--smoke`` to every script: small sizes and few repeats, every code path, seconds per script
(what CI runs, so that a broken benchmark fails CI; its figures mean little).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RULE = "=" * 100

NOT_MET = re.compile(r"\[?\b(?:not\s+met|missed)\b\]?", re.IGNORECASE)
MET = re.compile(r"\[?\bmet\b\]?", re.IGNORECASE)
FIGURE = re.compile(r"^\s*(\d+[a-z]?)\s{2,}")
VERDICT = re.compile(r"^(?P<name>.*?):\s+(?P<verdict>yes|no)\b\s*(?P<rest>.*)$", re.IGNORECASE)


@dataclass
class Target:
    status: str  # "met", "NOT MET" or "?"
    text: str  # the line without its status word


@dataclass
class Outcome:
    script: str
    lines: list[str] = field(default_factory=list)
    returncode: int | None = None
    seconds: float = 0.0
    timed_out: bool = False
    section: bool = False  # had a "targets" section (else: verdict lines, if any)
    targets: list[Target] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.timed_out or self.returncode != 0


# ---------------------------------------------------------------------- parsing
def tidy(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().rstrip(":").strip()


def target_of(line: str) -> Target:
    """One line of a ``targets`` section: its status word (anywhere in it) and the rest."""
    figure = FIGURE.match(line)  # "  3  analysis of ..." (the figure's number in its script's table)
    if figure:
        line = f"#{figure[1]} {line[figure.end():]}"
    match = NOT_MET.search(line) or MET.search(line)
    if match is None:
        return Target("?", tidy(line))
    status = "NOT MET" if match.re is NOT_MET else "met"
    return Target(status, tidy(line[: match.start()] + " " + line[match.end():]))


def parse_targets(lines: list[str]) -> tuple[bool, list[Target]]:
    """(whether the output has a ``targets`` section, the targets found).

    The section starts at a line reading ``targets`` or ``targets:`` and runs over the indented lines
    after it, up to a blank or unindented line. Without a section, verdict lines (``name: yes (...)``,
    ``name: NO (...)``) are the targets."""
    for i, line in enumerate(lines):
        if line.strip().rstrip(":").strip().lower() == "targets":
            targets = []
            for item in lines[i + 1:]:
                if not item.strip() or not item[:1].isspace():
                    break
                targets.append(target_of(item))
            return True, targets
    targets = []
    for line in lines:
        match = VERDICT.match(line.strip())
        if match:
            status = "met" if match["verdict"].lower() == "yes" else "NOT MET"
            targets.append(Target(status, tidy(f"{match['name']} {match['rest']}")))
    return False, targets


# ---------------------------------------------------------------------- running
def run_script(path: Path, timeout: float, args: tuple[str, ...] = ()) -> Outcome:
    """Run one script with this interpreter from the repository root, echoing its output line by line."""
    outcome = Outcome(path.name)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-u", str(path), *args], cwd=ROOT, stdin=subprocess.DEVNULL, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, errors="replace", bufsize=1, start_new_session=True,
    )

    def stop() -> None:  # the script and whatever it started (its own process group)
        outcome.timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, stop)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            print(line, flush=True)
            outcome.lines.append(line)
        outcome.returncode = proc.wait()
    except BaseException:
        stop()
        proc.wait()
        raise
    finally:
        timer.cancel()
    outcome.seconds = time.perf_counter() - start
    outcome.section, outcome.targets = parse_targets(outcome.lines)
    return outcome


def status_of(outcome: Outcome) -> str:
    if outcome.timed_out:
        return f"STOPPED at the time limit after {outcome.seconds:.0f} s"
    if outcome.returncode:
        return f"FAILED (exit {outcome.returncode}) after {outcome.seconds:.1f} s"
    return f"exit 0, {outcome.seconds:.1f} s"


# ---------------------------------------------------------------------- reporting
def summary(outcomes: list[Outcome]) -> list[str]:
    lines = ["targets (as each script printed them)"]
    counts = {"met": 0, "NOT MET": 0, "?": 0}
    for outcome in outcomes:
        head = f"  {outcome.script}"
        if outcome.failed:
            head += f"  [{status_of(outcome)}]"
        if not outcome.section:
            head += "  (no targets section; its yes/NO verdict lines)" if outcome.targets else "  (no targets printed)"
        lines.append(head)
        for target in outcome.targets:
            counts[target.status] += 1
            lines.append(f"    {target.status:<8} {target.text}")
        if outcome.failed and outcome.lines:
            lines.append(f"    last output line: {outcome.lines[-1].strip()}")
    total = sum(counts.values())
    line = f"{counts['met']} met, {counts['NOT MET']} not met"
    if counts["?"]:
        line += f", {counts['?']} without a status word"
    failed = [o.script for o in outcomes if o.failed]
    line += f" ({total} target{'s' * (total != 1)} from {len(outcomes)} script{'s' * (len(outcomes) != 1)})"
    if failed:
        line += f"; failed: {', '.join(failed)}"
    lines.append(line)
    return lines


def header(command: list[str], scripts: list[Path]) -> list[str]:
    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
            return done.stdout.strip() if done.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += " (with uncommitted changes)"
    try:
        from importlib.metadata import version

        xcs_version = version("ember-xcs")
    except Exception:  # not installed: the scripts still import it from the repository root
        xcs_version = "not installed"
    return [
        "ember-xcs benchmark figures",
        f"date:      {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"python:    {platform.python_version()} ({platform.python_implementation()}) {sys.executable}",
        f"platform:  {platform.platform()}; {os.cpu_count()} CPUs",
        f"ember-xcs: {xcs_version}; commit {commit}",
        f"command:   {' '.join(command)}",
        f"scripts:   {', '.join(p.name for p in scripts)}",
    ]


def write(out: Path, head: list[str], outcomes: list[Outcome], pending: list[Path]) -> None:
    text = head[:]
    for outcome in outcomes:
        text += ["", RULE, f"{outcome.script}   [{status_of(outcome)}]", RULE, *outcome.lines]
    if pending:
        text += ["", RULE, f"not run (yet): {', '.join(p.name for p in pending)}"]
    text += ["", RULE, *summary(outcomes), ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("\n".join(text))
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmarks/bench_*.py and collect the figures.")
    default = HERE / "results" / f"figures-{sys.version_info.major}.{sys.version_info.minor}.txt"
    parser.add_argument("--out", type=Path, default=default, help=f"figures file (default: {default.relative_to(ROOT)})")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only the scripts whose file name contains NAME (repeatable)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds before a script is stopped (default 900; 120 with --smoke)")
    parser.add_argument("--smoke", action="store_true",
                        help="run every script with --smoke (short: small sizes, few repeats)")
    args = parser.parse_args(argv)
    timeout = args.timeout if args.timeout is not None else 120.0 if args.smoke else 900.0
    if args.smoke and args.out == default:  # never overwrite the real figures with smoke ones
        args.out = default.with_name(default.name.replace("figures-", "figures-smoke-"))

    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        scripts = [p for p in scripts if any(name in p.name for name in args.only)]
    if not scripts:
        print("no benchmark script matches", file=sys.stderr)
        return 2
    out = args.out if args.out.is_absolute() else Path.cwd() / args.out
    head = header([Path(sys.executable).name, *sys.argv] if argv is None else ["run_all.py", *argv], scripts)
    outcomes: list[Outcome] = []
    for i, script in enumerate(scripts):
        print(f"\n{RULE}\n{script.name}\n{RULE}", flush=True)
        outcomes.append(run_script(script, timeout, ("--smoke",) if args.smoke else ()))
        print(f"[{script.name}: {status_of(outcomes[-1])}]", flush=True)
        write(out, head, outcomes, scripts[i + 1:])
    print(f"\n{RULE}")
    print("\n".join(summary(outcomes)))
    try:
        shown = out.relative_to(Path.cwd())
    except ValueError:
        shown = out
    print(f"figures written to {shown}")
    return 1 if any(o.failed for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
