"""Thread counting for leak tests: warm pools keep their threads for a moment after a call."""

from __future__ import annotations

import threading
import time


def quiet(timeout: float = 5.0) -> int:
    """Wait until no ember-xcs thread is alive (warm pools idle out quickly); the thread count then."""
    deadline = time.monotonic() + timeout
    while any(t.name.startswith("xcs-") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return threading.active_count()
