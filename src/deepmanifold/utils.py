"""Small helpers every room shares: JSON-ready values, flattened configurations, an integer check.

They depend on nothing but NumPy, so any room (store, sweeps, analysis, report) may
import them without importing another room.
"""

from __future__ import annotations

import importlib
import math
import numbers
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["check_int", "flatten", "jsonable", "lazy_exports", "numba_cache_enabled"]


def check_int(value: Any, name: str, *, low: int = 1) -> int:
    """``value`` as an ``int`` if it is an integer ``>= low`` (bools are not); a ``ValueError``
    naming ``name`` otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def jsonable(value: Any) -> Any:
    """``value`` as strict JSON data, recursively.

    Mappings become dicts with string keys; lists, tuples and arrays become lists;
    NumPy scalars become Python scalars; NaN and ±inf become ``None`` (strict JSON has
    no such numbers). Anything else is returned as it is.

    Examples
    --------
    >>> jsonable({"a": np.float32(0.5), 1: (np.int64(2), float("nan"))})
    {'a': 0.5, '1': [2, None]}
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def flatten(mapping: Mapping, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys; other values unchanged (an empty mapping adds no key).

    Examples
    --------
    >>> flatten({"arch": "mlp", "arch_options": {"width": 32, "depth": 2}})
    {'arch': 'mlp', 'arch_options.width': 32, 'arch_options.depth': 2}
    """
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def numba_cache_enabled(module_file: str) -> bool:
    """Whether numba may cache the kernels compiled in ``module_file``'s module.

    Its cache folder (``NUMBA_CACHE_DIR``, else the module's ``__pycache__``) must be
    writable; ``DEEPMANIFOLD_NUMBA_CACHE=0`` turns caching off.
    """
    if os.environ.get("DEEPMANIFOLD_NUMBA_CACHE", "1") == "0":
        return False
    here = os.path.join(os.path.dirname(os.path.abspath(module_file)), "__pycache__")
    target = os.environ.get("NUMBA_CACHE_DIR") or here
    try:
        os.makedirs(target, exist_ok=True)
        return os.access(target, os.W_OK)
    except OSError:
        return False


def lazy_exports(package: str, where: Mapping[str, str]):
    """``(__getattr__, __dir__)`` for a package whose public names are imported on first use.

    ``where`` maps each public name to the submodule (relative to ``package``) that defines
    it, so that importing the package imports none of them (PEP 562).
    """
    def __getattr__(name: str):
        if name in where:
            return getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(importlib.import_module(package))) | set(where))

    return __getattr__, __dir__
