"""What every benchmark script shares: a private plan-cache directory that is removed at exit."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile


def private_cache_dir(prefix: str) -> str:
    """A fresh temporary directory, set as ``XCS_CACHE_DIR`` unless one is set, removed at exit."""
    path = tempfile.mkdtemp(prefix=f"xcs-bench-{prefix}-")
    atexit.register(shutil.rmtree, path, True)
    os.environ.setdefault("XCS_CACHE_DIR", path)
    return path
