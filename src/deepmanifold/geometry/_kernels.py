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


    @njit(fastmath=False, nogil=True, inline="always")
    def _roots_of_row(src, dst, log, tol):  # pragma: no cover - compiled
        """dst[c] = sqrt p_c for one (model, sample) row ``src`` of C inputs; return whether
        the row passes the checks of check_probabilities: no NaN, p >= 0 and finite, or
        log p <= tol (-inf allowed), and sum p within tol of 1. Branch-free per class."""
        total = 0.0
        if log:
            hi = -math.inf
            for c in range(src.shape[0]):
                x = np.float64(src[c])
                hi = max(hi, x)
                v = math.exp(0.5 * x)
                dst[c] = v
                total += v * v
            return hi <= tol and total == total and abs(total - 1.0) <= tol  # NaN fails both
        lo = 0.0
        for c in range(src.shape[0]):
            x = np.float64(src[c])
            lo = min(lo, x)
            dst[c] = math.sqrt(abs(x))
            total += x
        return lo >= 0.0 and total < math.inf and abs(total - 1.0) <= tol  # NaN, inf fail

    @njit(parallel=True, fastmath=False, cache=_CACHE)
    def roots_rows(raw, log, A, a_off, check, tol):  # pragma: no cover - compiled
        """A[:, a_off + k, :] = sqrt of model k of ``raw`` (t, n, C); A is (n, R, C).

        With ``check``, also tests what :func:`check_probabilities` tests and returns
        False if anything failed, so the caller can ask the slow checker for the
        precise message.
        """
        t, n, C = raw.shape
        bad = np.zeros(n, np.bool_)
        for i in prange(n):
            nb = 0
            for k in range(t):
                if not _roots_of_row(raw[k, i], A[i, a_off + k], log, tol):
                    nb += 1
            bad[i] = check and nb > 0
        return not bad.any()

    @njit(parallel=True, fastmath=False, cache=_CACHE)
    def roots_blocks(raw, log, Bs, b_off, check, tol):  # pragma: no cover - compiled
        """Column b_off + k of the blocks Bs (L, n, C, W) = sqrt of model k of ``raw``;
        checks and returns like :func:`roots_rows`."""
        t, n, C = raw.shape
        W = Bs.shape[3]
        bad = np.zeros(n, np.bool_)
        buf = np.empty((n, C))
        for i in prange(n):
            row = buf[i]
            nb = 0
            for k in range(t):
                if not _roots_of_row(raw[k, i], row, log, tol):
                    nb += 1
                g = b_off + k
                l = g // W
                w = g - l * W
                for c in range(C):
                    Bs[l, i, c, w] = row[c]
            bad[i] = check and nb > 0
        return not bad.any()

    @njit(parallel=True, cache=_CACHE)
    def rows_to_blocks(A, Bs):  # pragma: no cover - compiled
        """The same models in the column-block layout: Bs[l, i, c, w] = A[i, l * W + w, c]."""
        n, R, C = A.shape
        L, W = Bs.shape[0], Bs.shape[3]
        for i in prange(n):
            for l in range(L):
                m = min(W, R - l * W)
                for c in range(C):
                    dst = Bs[l, i, c]
                    for w in range(m):
                        dst[w] = A[i, l * W + w, c]

    @njit(parallel=True, cache=_CACHE)
    def store_tile(D, tile, p0, c0, K, upper, mirror):  # pragma: no cover - compiled
        """D[p0 + r, c0 + j] = tile[r, j] for j < K (only j > r, and 0 on the diagonal, if
        upper); if mirror, also D[c0 + j, p0 + r], written in blocks to stay in cache."""
        R = tile.shape[0]
        for r in prange(R):
            if upper:
                D[p0 + r, c0 + r] = 0.0
            for j in range(r + 1 if upper else 0, K):
                D[p0 + r, c0 + j] = tile[r, j]
        if mirror:
            nb = (K + 63) // 64
            for jb in prange(nb):
                for r0 in range(0, R, 64):
                    for j in range(jb * 64, min(K, jb * 64 + 64)):
                        for r in range(r0, min(R, r0 + 64)):
                            if not upper or j > r:
                                D[c0 + j, p0 + r] = tile[r, j]


# The hot loop is generated for each class count C: with the class loop unrolled
# and two row models sharing each load of a column model, LLVM vectorises the
# loop over column models (measured ~2x faster than a generic class loop, and
# ~4x faster than a BLAS product per sample followed by a separate fold).
# Column indices are unsigned on purpose: numba then emits no negative-index
# wrap-around check, which would stop the loop from vectorising when it starts
# at a row-dependent column (the diagonal of a symmetric tile; measured 3x).
_TEMPLATE = """\
import math
import numpy as np
from numba import njit, prange

_LN2 = math.log(2.0)


@njit(fastmath=True, nogil=True, cache={cache})
def _tile(A, B, r0, tr, g_row, g_col, symmetric, floor, renorm, prod, expo, clamp):
    # prod, expo (tr, W): running product of BC (clipped to [floor, 1] if clamp) with its
    # binary exponent split off. Row r (global g_row + r) needs only the columns j with
    # g_col + j > g_row + r when symmetric. Returns how many BC < floor were met.
    n = A.shape[0]
    W = B.shape[2]
    Wu = np.uint64(W)
    below = 0
    for i in range(n):
        for r in range(0, tr - 1, 2):
            j0 = max(g_row + r + 1 - g_col, 0) if symmetric else 0
            if j0 >= W:
                continue
            j0u = np.uint64(j0)
{loads}
            if clamp:
                for j in range(Wu - j0u):
{body_clamp}
            else:
                for j in range(Wu - j0u):
{body_plain}
        if tr % 2 == 1:
            r = tr - 1
            j0 = max(g_row + r + 1 - g_col, 0) if symmetric else 0
            j0u = np.uint64(min(j0, W))
{loads1}
            if clamp:
                for j in range(Wu - j0u):
{body1_clamp}
            else:
                for j in range(Wu - j0u):
{body1_plain}
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
    flags = np.zeros(items.shape[0], np.int64)
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
            # First pass without clipping (measured ~15 % faster). BC > 1 happens only by
            # rounding and is dealt with by clipping d at 0; the renormalisation interval
            # is safe while every BC >= floor. If one was not, the tile is redone with
            # clipping and flagged, and the clipped terms are counted exactly outside.
            below = _tile(A, Bs[l], r0, tr, row0 + r0, g_col, symmetric, floor, renorm, prod, expo, False)
            if below > 0:
                prod[:] = 1.0
                expo[:] = 0
                _tile(A, Bs[l], r0, tr, row0 + r0, g_col, symmetric, floor, renorm, prod, expo, True)
                flags[idx] = 1
            for r in range(tr):
                jmin = (row0 + r0 + r + 1 - g_col) if symmetric else 0
                for j in range(max(jmin, 0), valid_w):
                    out[r0 + r, l * W + j] = max(-(math.log(prod[r, j]) + expo[r, j] * _LN2) / n, 0.0)
    return flags
"""


def _kernel_source(C: int) -> str:
    pad = " " * 12
    inner = " " * 20

    def loads(units):
        return "\n".join(f"{pad}a{u}_{c} = A[i, r0 + r + {u}, {c}]" for u in units for c in range(C))

    def body(units, clamp):
        lines = [f"{inner}jj = j0u + j"] + [f"{inner}b{c} = B[i, {c}, jj]" for c in range(C)]
        for u in units:
            lines.append(f"{inner}s{u} = " + " + ".join(f"a{u}_{c} * b{c}" for c in range(C)))
            lines.append(f"{inner}below += s{u} < floor")
            factor = f"min(max(s{u}, floor), 1.0)" if clamp else f"s{u}"
            lines.append(f"{inner}prod[r + {u}, jj] *= {factor}")
        return "\n".join(lines)

    return _TEMPLATE.format(
        cache=_CACHE, loads=loads((0, 1)), body_clamp=body((0, 1), True), body_plain=body((0, 1), False),
        loads1=loads((0,)), body1_clamp=body((0,), True), body1_plain=body((0,), False))


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
    digest = hashlib.sha256((source + numba.__version__ + "v6").encode()).hexdigest()[:12]
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
