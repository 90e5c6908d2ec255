"""pytest plugin shipped with ember-xcs: the ``plan_snapshot`` fixture.

Registered as the ``pytest11`` entry point ``xcs``, so it is loaded for *every*
pytest run in an environment where ember-xcs is installed.  It is therefore
deliberately import-light: only the standard library and pytest are imported at
module level; syrupy is imported lazily inside the fixture, and nothing from the
compiler/runtime (nor numba) is ever imported here.

Usage::

    def test_plan(plan_snapshot):
        assert compiled_plan == plan_snapshot          # object with ``.source``
        assert compiled_plan.source == plan_snapshot   # or the source text

``pytest --snapshot-update`` writes
``<rootdir>/<xcs_snapshot_dir>/<test file relative to rootdir, no .py>/<test>.py.txt``
(``xcs_snapshot_dir`` is an ini option, default ``snapshots``).  Disable the
plugin with ``-p no:xcs``.

A snapshot changes only when the plan does: by default it leaves out the
ember-xcs version and the structure hash of the header, and keeps each step's
location as its file and statement text without the line number (a comment
added above an operator, an edit of a leaf operator's body or a new ember-xcs
release leave it as it is). The ini option ``xcs_snapshot_header = full`` keeps
the plan's text exactly as ``xcs dump`` prints it.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest

__all__ = ["normalize_plan_text", "plan_snapshot", "serialize_plan", "stable_plan_text"]

_INI_NAME = "xcs_snapshot_dir"
_HEADER_INI = "xcs_snapshot_header"
_DEFAULT_DIR = "snapshots"
_FILE_EXTENSION = "py.txt"
_INSTALL_HINT = "pip install 'ember-xcs[test]'  (or: pip install 'syrupy>=5,<8')"


try:  # Python 3.12+
    from typing import override as _override
except ImportError:  # pragma: no cover - Python 3.11

    def _override(func: Any) -> Any:
        return func


def normalize_plan_text(text: str) -> str:
    """Strip trailing whitespace per line, use ``\\n`` newlines and end with
    exactly one final newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


_VERSION = re.compile(r"^(# ember-xcs plan: .*?)   ember-xcs \S+$", re.M)
_STRUCTURE = re.compile(r"^(# signature: .*?)   structure: [0-9a-f]+(?=   |$)", re.M)
_LINE = re.compile(r"((?:^\s*# |')[^\s':]+\.py):\d+(?=  |')", re.M)
_SEGMENT_LINE = re.compile(r"^(\w+ = segment\(\n\s+'[^']*', )\d+, ", re.M)
_KERNEL_STEP = re.compile(r"^\s*# \w+: \S+\.py:\d+ .*$", re.M)  # a kernel's ``# step: file:line ... called at file:line``
_PY_LINE = re.compile(r"(\.py):\d+")


def stable_plan_text(text: str) -> str:
    """``text`` without what changes when the plan does not: the ember-xcs version and the structure
    hash in the header, the line numbers of the user's statements (``# app.py:12  x = f()`` becomes
    ``# app.py  x = f()``; a step's location ``'app.py:12'`` becomes ``'app.py'``; a statement run as
    written loses the line its text starts at; a numba kernel's comments name the steps it inlines by
    file only)."""
    text = _VERSION.sub(r"\1", text)
    text = _STRUCTURE.sub(r"\1", text)
    text = _SEGMENT_LINE.sub(r"\1", text)
    text = _KERNEL_STEP.sub(lambda m: _PY_LINE.sub(r"\1", m.group(0)), text)
    return _LINE.sub(r"\1", text)


def serialize_plan(value: object, full: bool = False) -> str:
    """Turn a compiled plan (anything with a ``.source`` str) or a str into the
    normalised snapshot text (``stable_plan_text`` unless ``full``); anything
    else is a ``TypeError``."""
    if isinstance(value, str):
        text = value
    elif hasattr(value, "source"):
        text = value.source  # type: ignore[attr-defined]
        if not isinstance(text, str):
            raise TypeError(
                "plan_snapshot: the compared object's .source must be a str, got "
                f"{type(text).__name__} (from {type(value).__name__})"
            )
    else:
        raise TypeError(
            "plan_snapshot can only compare a str or an object with a .source "
            f"str attribute (a compiled plan); got {type(value).__name__}"
        )
    return normalize_plan_text(text if full else stable_plan_text(text))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        _INI_NAME,
        help=(
            "Directory (relative to rootdir) where the plan_snapshot fixture stores "
            f"plan snapshots. Default: {_DEFAULT_DIR}"
        ),
        default=_DEFAULT_DIR,
    )
    parser.addini(
        _HEADER_INI,
        help=(
            "stable (default): plan snapshots leave out the ember-xcs version, the structure hash "
            "and line numbers; full: the plan text exactly as xcs dump prints it"
        ),
        default="stable",
    )


def _require_syrupy(config: pytest.Config) -> None:
    try:
        import syrupy  # noqa: F401
    except ImportError as exc:
        raise pytest.UsageError(
            f"the plan_snapshot fixture (xcs pytest plugin) needs syrupy: {_INSTALL_HINT}"
        ) from exc
    if not config.pluginmanager.hasplugin("syrupy"):
        raise pytest.UsageError(
            "the plan_snapshot fixture (xcs pytest plugin) needs the syrupy pytest "
            "plugin, but it is not active (was it disabled with -p no:syrupy or "
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD? then add -p syrupy)"
        )


@functools.lru_cache(maxsize=None)
def _extension_class(rootdir: str, snapshot_root: str, full: bool) -> type:
    """Build (once per rootdir/snapshot root) a SingleFileSnapshotExtension
    subclass bound to those paths (syrupy passes no options to extensions).
    Only public syrupy hooks are overridden (``serialize``, ``dirname``,
    ``file_extension``) plus the ``_write_mode`` class attribute, which is the
    only way to select text mode in syrupy 5-7."""
    from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

    class PlanSnapshotExtension(SingleFileSnapshotExtension):
        file_extension = _FILE_EXTENSION
        _write_mode = WriteMode.TEXT
        _xcs_rootdir = Path(rootdir)
        _xcs_snapshot_root = Path(snapshot_root)

        @_override
        def serialize(self, data: Any, **kwargs: Any) -> str:
            return serialize_plan(data, full=full)

        @classmethod
        @_override
        def dirname(cls, *, test_location: Any) -> str:
            test_file = Path(test_location.filepath)
            try:
                rel = test_file.relative_to(cls._xcs_rootdir)
            except ValueError:  # test file outside rootdir: keep only its name
                rel = Path(test_file.name)
            return str(cls._xcs_snapshot_root / rel.with_suffix(""))

    return PlanSnapshotExtension


@pytest.fixture
def plan_snapshot(request: pytest.FixtureRequest) -> Any:
    """syrupy ``snapshot`` assertion storing normalised plan source as
    ``<rootdir>/<xcs_snapshot_dir>/<test path>/<test name>.py.txt``."""
    config = request.config
    _require_syrupy(config)
    rootdir = Path(config.rootpath)
    snapshot_root = rootdir / (config.getini(_INI_NAME) or _DEFAULT_DIR)
    header = config.getini(_HEADER_INI) or "stable"
    if header not in ("stable", "full"):
        raise pytest.UsageError(f"{_HEADER_INI} must be 'stable' or 'full', got {header!r}")
    ext = _extension_class(str(rootdir), str(snapshot_root), header == "full")
    snapshot = request.getfixturevalue("snapshot")
    return snapshot.use_extension(ext)
