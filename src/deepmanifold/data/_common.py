"""Helpers the modules of the data room share: option checks and the cache key of files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an ``int``; ``ValueError`` naming ``name`` unless it is an integer
    (Python or NumPy, not a bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def files_key(paths: Iterable[Path]) -> tuple[tuple[str, int, int], ...]:
    """``(resolved path, size, modification time in ns)`` of each file: a cache key that
    changes when a file is replaced or rewritten, so cached arrays are never stale."""
    out = []
    for p in paths:
        p = Path(p).resolve()
        st = p.stat()
        out.append((str(p), st.st_size, st.st_mtime_ns))
    return tuple(out)
