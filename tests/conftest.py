"""Shared test fixtures: a private plan-file directory for the whole run, and a clean plan cache."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def xcs_cache_dir(tmp_path_factory):
    """Plan files go to a temporary ``XCS_CACHE_DIR``, never to the user's cache directory."""
    path = tmp_path_factory.mktemp("xcs-cache")
    previous = os.environ.get("XCS_CACHE_DIR")
    os.environ["XCS_CACHE_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("XCS_CACHE_DIR", None)
    else:
        os.environ["XCS_CACHE_DIR"] = previous


@pytest.fixture
def fresh_plans(tmp_path, monkeypatch):
    """Empty plan caches before and after the test, so every test sees its own captures: the in-memory
    cache and per-operator counters are cleared and the disk cache is a new, empty directory."""
    from xcs.compiler.driver import PLANS, clear_caches

    monkeypatch.setenv("XCS_CACHE_DIR", str(tmp_path / "xcs-cache"))
    clear_caches()
    yield PLANS
    clear_caches()
