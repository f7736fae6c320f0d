"""Numba kernels for tiled Bhattacharyya distance matrices.

One tile is ``rows x W`` model pairs. For every sample ``i`` the coefficients
``BC_i`` of all pairs of the tile are one small matrix product
``A_i (rows x C) @ B_i (C x W)`` (BLAS, through ``np.dot`` in nopython mode),
which is then folded into a running float64 product per pair. The product is
renormalised every ``renorm`` samples by moving its binary exponent into an
integer counter (exact, no log), so it can never underflow, and a single log
per pair is taken at the end: ``sum_i log BC_i = log(mantissa) + exponent ln 2``.
Clamping of ``BC_i`` to ``[floor, 1]`` happens in the fold; a cheap running
minimum detects whether anything in a tile was clamped, and only then a second
pass counts the clamped ``(pair, sample)`` terms.

Tiles are distributed over numba threads with ``prange``.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

try:  # numba is optional: without it the NumPy/torch paths are used
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None

_LN2 = math.log(2.0)
_MANTISSA = 0x000FFFFFFFFFFFFF
_ONE_EXP = 0x3FF0000000000000


def renorm_interval(floor: float) -> int:
    """Samples between two renormalisations of a product of coefficients >= floor.

    A renormalised product lies in ``[1, 2)``; after ``k`` factors >= floor it is
    >= floor**k, which must stay a normal float64 (>= 2**-1022).
    """
    k = int(math.floor(-1022 * _LN2 / math.log(floor))) - 1
    return max(1, min(k, 64))


def _cache_enabled() -> bool:
    """Whether numba may cache compiled kernels (its cache dir must be writable)."""
    if os.environ.get("DEEPMANIFOLD_NUMBA_CACHE", "1") == "0":
        return False
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")
    target = os.environ.get("NUMBA_CACHE_DIR") or here
    try:
        os.makedirs(target, exist_ok=True)
        return os.access(target, os.W_OK)
    except OSError:
        return False


AVAILABLE = numba is not None

if AVAILABLE:
    _CACHE = _cache_enabled()

    @njit(fastmath=True, cache=_CACHE, nogil=True)
    def _fold(buf, prod, floor):  # pragma: no cover - compiled
        """prod *= clip(buf, floor, 1) elementwise; return min(buf)."""
        rows, w = buf.shape
        mn = np.inf
        for r in range(rows):
            br = buf[r]
            pr = prod[r]
            for j in range(w):
                v = np.float64(br[j])
                mn = min(mn, v)
                pr[j] *= min(max(v, floor), 1.0)
        return mn

    @njit(fastmath=True, cache=_CACHE, nogil=True)
    def _renormalise(prod, expo):  # pragma: no cover - compiled
        """Move the binary exponents of prod (all > 0, normal) into expo."""
        rows, w = prod.shape
        for r in range(rows):
            bits = prod[r].view(np.uint64)
            ex = expo[r]
            for j in range(w):
                b = bits[j]
                ex[j] += np.int64((b >> np.uint64(52)) & np.uint64(0x7FF)) - 1023
                bits[j] = (b & np.uint64(_MANTISSA)) | np.uint64(_ONE_EXP)

    @njit(fastmath=False, cache=_CACHE, nogil=True)
    def _count_below(A, B, r0, r1, buf, floor, valid_w, jmin):  # pragma: no cover
        """Number of (pair, sample) coefficients < floor in a tile (rare path)."""
        n = A.shape[0]
        total = 0
        for i in range(n):
            np.dot(A[i, r0:r1], B[i], buf)
            for r in range(r1 - r0):
                for j in range(max(jmin[r], 0), valid_w):
                    if buf[r, j] < floor:
                        total += 1
        return total

    @njit(parallel=True, fastmath=False, cache=_CACHE)
    def _generic_tiles(A, Bs, out, floor, renorm, tile_rows, row0, col0, widths, symmetric, items,
                       n_workers):  # pragma: no cover
        """The tile kernel for many classes: a BLAS product per sample, then a fold."""
        n, R, C = A.shape
        L, _, _, W = Bs.shape
        counts = np.zeros(items.shape[0], np.int64)
        for idx in prange(items.shape[0]):
            item = items[idx]
            k = item // L
            l = item % L
            r0 = k * tile_rows
            r1 = min(R, r0 + tile_rows)
            tr = r1 - r0
            valid_w = widths[l]
            g_col = col0 + l * W
            B = Bs[l]
            buf = np.empty((tr, W), A.dtype)
            prod = np.ones((tr, W))
            expo = np.zeros((tr, W), np.int64)
            mn = np.inf
            for i in range(n):
                np.dot(A[i, r0:r1], B[i], buf)
                mn = min(mn, _fold(buf, prod, floor))
                if (i + 1) % renorm == 0:
                    _renormalise(prod, expo)
            for r in range(tr):
                jmin = (row0 + r0 + r + 1 - g_col) if symmetric else 0
                for j in range(max(jmin, 0), valid_w):
                    out[r0 + r, l * W + j] = -(math.log(prod[r, j]) + expo[r, j] * _LN2) / n
            if mn < floor:
                counts[idx] = 1
        return counts


# The hot loop is generated for each class count C: with the class loop unrolled
# and two row models sharing each load of a column model, LLVM vectorises the
# loop over column models (measured ~2x faster than a generic class loop, and
# ~4x faster than a BLAS product per sample followed by a separate fold).
_TEMPLATE = """\
import math
import numpy as np
from numba import njit, prange

_LN2 = math.log(2.0)


@njit(fastmath=True, nogil=True, cache={cache})
def _tile(A, B, r0, tr, floor, renorm, prod, expo):
    # prod, expo (tr, W): running product of clip(BC, floor, 1) with its binary exponent split off.
    n = A.shape[0]
    W = B.shape[2]
    below = 0
    for i in range(n):
        for r in range(0, tr - 1, 2):
{loads}
            for j in range(W):
{body}
        if tr % 2 == 1:
            r = tr - 1
{loads1}
            for j in range(W):
{body1}
        if (i + 1) % renorm == 0:
            # Move the binary exponents into integers: exact, and no log per sample.
            for r in range(tr):
                bits = prod[r].view(np.uint64)
                for j in range(W):
                    b = bits[j]
                    expo[r, j] += np.int64((b >> np.uint64(52)) & np.uint64(0x7FF)) - 1023
                    bits[j] = (b & np.uint64(0x000FFFFFFFFFFFFF)) | np.uint64(0x3FF0000000000000)
    return below


@njit(parallel=True, cache={cache})
def tiles(A, Bs, out, floor, renorm, tile_rows, row0, col0, widths, symmetric, items, n_workers):
    n, R, C = A.shape
    L, _, _, W = Bs.shape
    counts = np.zeros(items.shape[0], np.int64)
    # Worker w takes items w, w + n_workers, ...: a cyclic schedule, so the costly
    # tiles far above the diagonal are shared evenly between the threads.
    for w in prange(n_workers):
        for idx in range(w, items.shape[0], n_workers):
            item = items[idx]
            k = item // L
            l = item % L
            r0 = k * tile_rows
            r1 = min(R, r0 + tile_rows)
            tr = r1 - r0
            valid_w = widths[l]
            g_col = col0 + l * W
            prod = np.ones((tr, W))
            expo = np.zeros((tr, W), np.int64)
            below = _tile(A, Bs[l], r0, tr, floor, renorm, prod, expo)
            for r in range(tr):
                jmin = (row0 + r0 + r + 1 - g_col) if symmetric else 0
                for j in range(max(jmin, 0), valid_w):
                    out[r0 + r, l * W + j] = -(math.log(prod[r, j]) + expo[r, j] * _LN2) / n
            if below > 0:
                counts[idx] = 1  # something in the tile was clamped: counted exactly outside
    return counts
"""


def _kernel_source(C: int) -> str:
    pad = " " * 12
    loads = "\n".join(f"{pad}a{u}_{c} = A[i, r0 + r + {u}, {c}]" for u in range(2) for c in range(C))
    body = "\n".join(
        [f"{pad}    b{c} = B[i, {c}, j]" for c in range(C)]
        + [line for u in range(2) for line in (
            f"{pad}    s{u} = " + " + ".join(f"a{u}_{c} * b{c}" for c in range(C)),
            f"{pad}    below += s{u} < floor",
            f"{pad}    prod[r + {u}, j] *= min(max(s{u}, floor), 1.0)")]
    )
    loads1 = "\n".join(f"{pad}a0_{c} = A[i, r0 + r, {c}]" for c in range(C))
    body1 = "\n".join(
        [f"{pad}    b{c} = B[i, {c}, j]" for c in range(C)]
        + [f"{pad}    s0 = " + " + ".join(f"a0_{c} * b{c}" for c in range(C)),
           f"{pad}    below += s0 < floor",
           f"{pad}    prod[r, j] *= min(max(s0, floor), 1.0)"]
    )
    return _TEMPLATE.format(cache=_CACHE, loads=loads, body=body, loads1=loads1, body1=body1)


_TILE_KERNELS: dict = {}


def _generated_dir() -> str | None:
    """A writable folder for the generated kernel modules (numba caches next to them)."""
    base = os.environ.get("DEEPMANIFOLD_KERNEL_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "deepmanifold", "kernels")
    try:
        os.makedirs(base, exist_ok=True)
        return base if os.access(base, os.W_OK) else None
    except OSError:
        return None


# Above this many classes the unrolled expression gets too long to compile quickly.
_MAX_UNROLLED_CLASSES = 32


def tiles_kernel(C: int):
    """The compiled tile kernel for ``C`` classes (generated once, cached on disk when possible)."""
    if C > _MAX_UNROLLED_CLASSES:
        return _generic_tiles
    if C in _TILE_KERNELS:
        return _TILE_KERNELS[C]
    import hashlib
    import importlib.util
    import tempfile

    source = _kernel_source(C)
    digest = hashlib.sha256((source + numba.__version__ + "v5").encode()).hexdigest()[:12]
    folder = _generated_dir() or tempfile.mkdtemp(prefix="deepmanifold-kernels-")
    path = os.path.join(folder, f"bc_tiles_C{C}_{digest}.py")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(source)
        os.replace(tmp, path)  # atomic: concurrent processes never import a half-written file
    spec = importlib.util.spec_from_file_location(f"_deepmanifold_bc_tiles_C{C}_{digest}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # numba's cache finds the module of a function by name
    spec.loader.exec_module(module)
    _TILE_KERNELS[C] = module.tiles
    return module.tiles


def bhattacharyya_tiles(A, Bs, out, floor, renorm, tile_rows, row0, col0, widths, symmetric):
    """Fill ``out[:, l*W:(l+1)*W]`` with d_B between row models and column block l.

    A : (n, R, C) roots of R row models (global indices row0 + r).
    Bs : (L, n, C, W) roots of L column blocks of W models; block l starts at
        global column col0 + l*W and has widths[l] valid columns.
    out : (R, L*W) float64, receives d_B (entries outside the valid region or,
        if symmetric, with global column <= global row are left untouched).
    Returns the number of clamped (pair, sample) coefficients in the region written.
    """
    R = A.shape[1]
    L, W = Bs.shape[0], Bs.shape[3]
    n_row_tiles = (R + tile_rows - 1) // tile_rows
    k, l = np.divmod(np.arange(n_row_tiles * L, dtype=np.int64), L)
    keep = np.ones(k.shape, dtype=bool)
    if symmetric:  # tiles wholly on or below the diagonal have nothing to compute
        keep = col0 + l * W + widths[l] - 1 > row0 + k * tile_rows
    items = (k * L + l)[keep]
    kernel = tiles_kernel(int(A.shape[2]))
    flags = kernel(A, Bs, out, A.dtype.type(floor), renorm, tile_rows, row0, col0, widths, symmetric,
                   items, numba.get_num_threads())
    total = 0
    buf = np.empty((tile_rows, W), A.dtype)
    for item in items[np.flatnonzero(flags)]:  # rare: only tiles where something was clamped
        kk, ll = divmod(int(item), L)
        r0, r1 = kk * tile_rows, min(R, (kk + 1) * tile_rows)
        g_col = col0 + ll * W
        jmin = np.array([(row0 + r0 + r + 1 - g_col) if symmetric else 0 for r in range(r1 - r0)],
                        dtype=np.int64)
        total += _count_below(A, Bs[ll], r0, r1, buf[: r1 - r0], floor, int(widths[ll]), jmin)
    return total


def set_threads(n_jobs):
    """Context manager: numba threads for this call, restored afterwards."""
    return _Threads(n_jobs)


class _Threads:
    def __init__(self, n_jobs):
        self.n_jobs = n_jobs

    def __enter__(self):
        if not AVAILABLE:
            return 1
        self.saved = numba.get_num_threads()
        limit = numba.config.NUMBA_NUM_THREADS
        n = limit if self.n_jobs is None or self.n_jobs == -1 else self.n_jobs
        n = max(1, min(int(n), limit))
        numba.set_num_threads(n)
        return n

    def __exit__(self, *exc):
        if AVAILABLE:
            numba.set_num_threads(self.saved)
        return False
