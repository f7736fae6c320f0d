"""Numba kernels for tiled Bhattacharyya distance matrices.

One tile is ``rows x W`` model pairs. For every sample ``i`` the coefficients
``BC_i`` of all pairs of the tile are computed (register blocks of SIMD vectors for
up to 32 classes, a BLAS product per sample above) and folded into
a running float64 product per pair. The product is renormalised every
``renorm`` samples by moving its binary exponent into an integer counter (exact,
no log), so it cannot underflow while every factor is at least ``floor``, and a
single log per pair is taken at the end:
``sum_i log BC_i = log(mantissa) + exponent ln 2``.

Clamping follows the rule of :mod:`deepmanifold.geometry.divergences`: factors
below ``floor`` are raised to it, factors above 1 are kept, and the distance is
clipped at 0. A tile is first computed with the factors as they are, the
cheaper loop; only when a coefficient fell below ``floor`` is it computed again
with the clamp, counting the clamped terms. Both passes multiply the same
factors in the same order whenever no coefficient is below ``floor``, so a
pair's distance does not depend on which other models share its tile.

Tiles are distributed over numba threads; the tile kernel is generated from
source text (:data:`_TEMPLATE`) for each class count and cached on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import math
import os
import sys
import tempfile

import numba
import numpy as np
from numba import njit, prange

from deepmanifold.utils import numba_cache_enabled

from . import _machine, _simd

_LN2 = math.log(2.0)


def renorm_interval(floor: float) -> int:
    """Samples between two renormalisations of a product of coefficients >= floor.

    A renormalised product lies in ``[1, 2)``; after ``k`` factors >= floor it is
    >= floor**k, which must stay a normal float64 (>= 2**-1022).
    """
    k = int(math.floor(-1022 * _LN2 / math.log(floor))) - 1
    return max(1, min(k, 64))


CACHE = numba_cache_enabled(__file__)


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

@njit(parallel=True, fastmath=False, cache=CACHE)
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

@njit(parallel=True, fastmath=False, cache=CACHE)
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

@njit(parallel=True, cache=CACHE)
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

@njit(parallel=True, cache=CACHE)
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


# The tile kernel is generated as the text of a module of its own. For up to
# _MAX_VECTOR_CLASSES classes the work goes in register blocks of explicit vectors (_simd,
# register_block); above that a BLAS product per sample does the work. The
# whole kernel, driver included, lives in the generated text, and the digest that names its
# disk cache covers that text and the source of _simd, the one module it imports code from
# (code imported from anywhere else would escape the digest).
_TEMPLATE = """\
import math
import numpy as np
from numba import njit, prange
{imports}

_LN2 = math.log(2.0)


@njit(fastmath=True, nogil=True, cache={cache}, inline="always")
def _renormalise(prod, expo):
    # Move the binary exponents into integers: exact, and no log per sample.
    for r in range(prod.shape[0]):
        bits = prod[r].view(np.uint64)
        for j in range(prod.shape[1]):
            b = bits[j]
            expo[r, j] += np.int64((b >> np.uint64(52)) & np.uint64(0x7FF)) - 1023
            bits[j] = (b & np.uint64(0x000FFFFFFFFFFFFF)) | np.uint64(0x3FF0000000000000)


# fastmath lets LLVM vectorise the minima (no NaN can occur: the roots are validated);
# without it each min is a branch, mispredicted half the time on unordered values.
@njit(fastmath=True, nogil=True, cache={cache})
def _least_of_rows(A, r0, r1, lo):
    n, _, C = A.shape
    for i in range(n):
        for c in range(C):
            lo[i, c] = A[i, r0, c]
        for r in range(r0 + 1, r1):
            for c in range(C):
                lo[i, c] = min(lo[i, c], A[i, r, c])


@njit(fastmath=True, nogil=True, cache={cache})
def _least_of_columns(B, lo):
    n, C, W = B.shape
    for i in range(n):
        for c in range(C):
            m = B[i, c, 0]
            for w in range(1, W):
                m = min(m, B[i, c, w])
            lo[i, c] = m


{tile}


@njit(parallel=True, cache={cache})
def tiles(A, Bs, out, floor, renorm, tile_rows, row0, col0, widths, symmetric, items, n_workers):
    n, R, C = A.shape
    L, _, _, W = Bs.shape
    # The least root of each class at each sample over every row tile and every column
    # block: their products bound the tile's coefficients from below (_tile).
    n_row_tiles = (R + tile_rows - 1) // tile_rows
    lo_rows = np.empty((n_row_tiles, n, C), A.dtype)
    for k in prange(n_row_tiles):
        _least_of_rows(A, k * tile_rows, min(R, (k + 1) * tile_rows), lo_rows[k])
    lo_cols = np.empty((L, n, C), A.dtype)
    for l in prange(L):
        _least_of_columns(Bs[l], lo_cols[l])
    counts = np.zeros(items.shape[0], np.int64)
    # Worker w takes items w, w + n_workers, ...: a cyclic schedule, so the costly
    # tiles far above the diagonal are shared evenly between the threads.
    for w in prange(n_workers):
        for idx in range(w, items.shape[0], n_workers):
            item = items[idx]
            k = item // L
            l = item % L
            r0 = k * tile_rows
            tr = min(R, r0 + tile_rows) - r0
            valid_w = widths[l]
            g_col = col0 + l * W
            prod = np.ones((tr, W))
            expo = np.zeros((tr, W), np.int64)
            # The renormalisation interval is safe only while every factor is >= floor:
            # a tile that met a smaller one is computed again with the clamp.
            if _tile(A, Bs[l], r0, tr, row0 + r0, g_col, symmetric, floor, renorm, prod, expo, False,
                     valid_w, lo_rows[k], lo_cols[l]) > 0:
                prod[:] = 1.0
                expo[:] = 0
                counts[idx] = _tile(A, Bs[l], r0, tr, row0 + r0, g_col, symmetric, floor, renorm, prod,
                                    expo, True, valid_w, lo_rows[k], lo_cols[l])
            for r in range(tr):
                jmin = (row0 + r0 + r + 1 - g_col) if symmetric else 0
                for j in range(max(jmin, 0), valid_w):
                    out[r0 + r, l * W + j] = max(-(math.log(prod[r, j]) + expo[r, j] * _LN2) / n, 0.0)
    return counts
"""

# prod, expo (tr, W): running product of the coefficients with its binary exponent
# split off. Row r (global g_row + r) needs only the columns j with
# g_col + j > g_row + r when symmetric. Returns how many coefficients < floor were
# met: in every computed column without clamp (a flag), only in the needed real columns
# (j < valid_w) with clamp (the count reported). lo_a, lo_b (n, C): the least root of each
# class and sample over the tile's rows and over its column block (padding included).
#
# The work goes in register blocks (_block_*, register_block): a few row models times a few
# vectors of column models, summed over the classes in registers and multiplied into their
# running products once per sample. Samples go in chunks of _CHUNK: a chunk's values of the
# column block stay in the L1 cache while every row group of the tile passes over them,
# when the block is no wider than column_width (the width distances.py gives it).
#
# Without clamp, a chunk of samples whose coefficients cannot fall below the floor runs
# blocks without the comparison. Every coefficient is sum_c a_c b_c with
# a_c >= lo_a[i, c] and b_c >= lo_b[i, c], computed with at most C + 1 roundings of
# nonnegative terms (products below the smallest normal at worst flushed, C of them at
# most), so it is at least about the bound sum_c lo_a lo_b; a bound of twice the floor
# leaves a margin far wider than those roundings. The clamped pass takes one vector at a
# time; every block multiplies the same factors in the same order, lane by lane.
_VECTOR_TILE = """\
{blocks}


@njit(nogil=True, cache={cache})
def _tile(A, B, r0, tr, g_row, g_col, symmetric, floor, renorm, prod, expo, clamp, valid_w, lo_a, lo_b):
    n, _, C = A.shape
    W = B.shape[2]
    Bf = B.reshape(-1)
    Pf = prod.reshape(-1)
    below = 0
    safe = 2.0 * np.float64(floor)
    # The padding columns after the last valid one are not computed (whole vectors only).
    needed_w = min(W, (valid_w + {lanes} - 1) // {lanes} * {lanes})
    i0 = 0
    while i0 < n:
        i1 = min(n, i0 + {chunk}, (i0 // renorm + 1) * renorm)
        checked = False
        if not clamp:
            for i in range(i0, i1):
                bound = 0.0
                for c in range(C):
                    bound += np.float64(lo_a[i, c]) * np.float64(lo_b[i, c])
                checked |= bound < safe
        mode = 2 if clamp else 1 if checked else 0
        for r in range(0, tr, {rows}):
            group = min({rows}, tr - r)
            need = g_row + r + 1 - g_col if symmetric else 0
            jb = 0
            while jb < needed_w:
                width = {block_width} if jb + {block_width} <= needed_w else {lanes}
                if jb + width > need:
                    if width == {block_width} and group == {rows} and not clamp:
                        below += _block_full(A, Bf, Pf, i0, i1, r0 + r, r, jb, W, floor, mode, 0, 0)
                    else:  # one vector of one row at a time: the clamped pass, and the edges
                        for rr in range(r, r + group):
                            lo_j = max(g_row + rr + 1 - g_col, 0) if symmetric else 0
                            for jv in range(jb, jb + width, {lanes}):
                                below += _block_one(A, Bf, Pf, i0, i1, r0 + rr, rr, jv, W, floor, mode, lo_j,
                                                    valid_w)
                jb += width
        i0 = i1
        if i0 % renorm == 0:
            _renormalise(prod, expo)
    return below"""

_BLAS_TILE = """\
@njit(fastmath=True, nogil=True, cache={cache})
def _tile(A, B, r0, tr, g_row, g_col, symmetric, floor, renorm, prod, expo, clamp, valid_w, lo_a, lo_b):
    n, _, C = A.shape
    W = B.shape[2]
    buf = np.empty((tr, W), A.dtype)
    below = 0
    safe = 2.0 * np.float64(floor)
    for i in range(n):
        bound = 0.0
        for c in range(C):
            bound += np.float64(lo_a[i, c]) * np.float64(lo_b[i, c])
        checked = bound < safe
        np.dot(A[i, r0:r0 + tr], B[i], buf)
        for r in range(tr):
            j0 = max(g_row + r + 1 - g_col, 0) if symmetric else 0
            for j in range(j0, W):
                s = np.float64(buf[r, j])
                if clamp:
                    below += (s < floor) & (j < valid_w)
                    s = max(s, floor)
                elif checked:
                    below += s < floor
                prod[r, j] *= s
        if (i + 1) % renorm == 0:
            _renormalise(prod, expo)
    return below"""

# Above this many classes a BLAS product per sample does the work: a chunk of samples of a
# column block wide enough for the register blocks does not fit the L1 cache.
_MAX_VECTOR_CLASSES = 32


def register_block(info: _machine.CPUInfo) -> tuple[int, int, int]:
    """``(lanes, rows, vectors)`` of the vector tile kernel's register block on this CPU.

    ``lanes`` float64 values fill one vector register (the running products are float64;
    float32 products use as many lanes). A block sums ``rows x vectors`` coefficient
    vectors at once, 4 x 3: twelve independent chains of multiply-adds, enough to keep two
    FMA units with a latency of 4 cycles busy, in twelve registers, plus three column vectors
    and one broadcast row value: the 16 vector registers of x86 without AVX-512. Per class a
    block loads 7 values for 12 multiply-adds. The running products stay in memory (L1):
    held in registers they would take twelve more and leave room for only 2 x 3 sums, which
    ran slower on a Zen 3 core (benchmarks/README.md).
    """
    return (min(max(info.simd_bits // 64, 2), 8), 4, 3)


def column_multiple() -> int:
    """Column blocks of the vector kernel hold a multiple of this many models (its lanes)."""
    return register_block(_machine.cpu_info())[0]


def column_width(C: int, dtype) -> int:
    """Column models per block that the tile kernel for ``C`` classes and ``dtype`` roots
    runs fastest with (no limit, 1 << 30, for the BLAS kernel above 32 classes).

    A chunk of samples of a block's column values must fit the L1 data cache (_L1_BYTES):
    96 models at C = 10 in float64, 192 in float32. Wider blocks are not only out of L1:
    their rows, ``W * itemsize`` bytes apart, fall into a few cache sets (at W = 256 in
    float64, one row in every 2 KiB), and on a Zen 3 core the kernel ran slower than with
    one row model per pass (benchmarks/README.md).
    """
    if C > _MAX_VECTOR_CLASSES:
        return 1 << 30
    lanes, _, vectors = register_block(_machine.cpu_info())
    width = lanes * vectors
    return max(width, _L1_BYTES // (_CHUNK * C * np.dtype(dtype).itemsize) // width * width)


# Samples per chunk: a chunk's column values of one column slice stay in the L1 cache while
# every row group of the tile passes over them.
_CHUNK = 4
# Bytes of column values a chunk of one column slice may take (L1 data caches hold 32-48 KiB).
_L1_BYTES = 30720


def _block_source(C: int | None, lanes: int, rows: int, vectors: int, name: str, fused: bool = True) -> str:
    """One register block: ``rows`` row models from A row ``ra`` (tile row ``rp``) times
    ``vectors`` vectors of column models from column ``jb``, through samples ``i0:i1``.

    ``mode`` (an argument of the block) 0: multiply the coefficients into the running
    products; 1: the same, and return how many fell below the floor; 2: raise them to the
    floor first and return how many were raised in the columns ``lo_j <= j < hi_j``.
    ``fused``: the sum over classes by fused multiply-adds, else (a CPU without them) by a
    product and a sum each. ``C``: the class count written into the source, or None to read
    it from ``A`` (one kernel for every class count).
    """
    pad = " " * 8
    # No fastmath here nor in _tile, which the blocks are inlined into: numba would put
    # fast-math flags on the vector operations, and LLVM then contracts and reassociates
    # them differently in different blocks (distances one ulp apart between tilings).
    lines = ["@njit(nogil=True, cache={cache})".format(cache=CACHE),
             f"def {name}(A, Bf, Pf, i0, i1, ra, rp, jb, W, floor, mode, lo_j, hi_j):"]
    lines += [f"    C = {'A.shape[2]' if C is None else C}"]
    lines += [f"    q{u} = (rp + {u}) * W + jb" for u in range(rows)]
    lines += ["    below = 0", "    valid = 0", "    if mode == 2:", f"        for k in range({lanes}):",
              "            if lo_j <= jb + k < hi_j:", "                valid |= 1 << k"]
    lines.append("    for i in range(i0, i1):")
    lines.append(f"{pad}o = i * C * W + jb")
    # The first class starts the sums; the loop over the others keeps the source (and the
    # compile time) small. The sums stay in registers across it; LLVM unrolls it where C is
    # written in.
    for v in range(vectors):
        lines.append(f"{pad}b{v} = vload(Bf, o + {v * lanes})")
    for u in range(rows):
        lines.append(f"{pad}a = vsplat(A[i, ra + {u}, 0])")
        lines += [f"{pad}s{u}_{v} = vmul(a, b{v})" for v in range(vectors)]
    lines.append(f"{pad}for c in range(1, C):")
    for v in range(vectors):
        lines.append(f"{pad}    b{v} = vload(Bf, o + c * W + {v * lanes})")
    for u in range(rows):
        lines.append(f"{pad}    a = vsplat(A[i, ra + {u}, c])")
        for v in range(vectors):
            term = f"vfma(a, b{v}, s{u}_{v})" if fused else f"vadd(vmul(a, b{v}), s{u}_{v})"
            lines.append(f"{pad}    s{u}_{v} = {term}")
    pairs = [(u, v) for u in range(rows) for v in range(vectors)]
    lines.append(f"{pad}if mode == 1:")
    lines += [f"{pad}    below += vcount_below(s{u}_{v}, floor)" for u, v in pairs]
    lines.append(f"{pad}elif mode == 2:")
    for u, v in pairs:
        lines += [f"{pad}    mask = vbelow_mask(s{u}_{v}, floor) & valid", f"{pad}    while mask:",
                  f"{pad}        mask &= mask - 1", f"{pad}        below += 1",
                  f"{pad}    s{u}_{v} = vraise_to(s{u}_{v}, floor)"]
    for u, v in pairs:
        q = f"q{u} + {v * lanes}"
        lines.append(f"{pad}vstore(Pf, {q}, vmul(vload(Pf, {q}), vwiden(s{u}_{v})))")
    lines.append("    return below")
    return "\n".join(lines)


def _kernel_source(C: int, block: tuple[int, int, int] | None = None, fused: bool | None = None,
                   specialised: bool = True) -> str:
    """Source text of the tile kernel module for ``C`` classes, the register ``block``
    ``(lanes, rows, vectors)`` and sums by fused multiply-adds or not (defaults: this CPU's
    :func:`register_block`, and fused where the CPU has FMA instructions). With
    ``specialised``, ``C`` is written into the class loop and LLVM unrolls it; without, the
    loop runs to ``A.shape[2]`` and the one kernel serves every class count up to
    ``_MAX_VECTOR_CLASSES``, slower (on a Zen 3 core the scalar index work around the loop
    spilled) but compiled once. Both do the same operations in the same order: the same
    bits."""
    if C > _MAX_VECTOR_CLASSES:
        return _TEMPLATE.format(cache=CACHE, imports="", tile=_BLAS_TILE.format(cache=CACHE))
    info = _machine.cpu_info()
    lanes, rows, vectors = register_block(info) if block is None else block
    fused = info.fma if fused is None else fused
    literal = C if specialised else None
    blocks = "\n\n\n".join([_block_source(literal, lanes, rows, vectors, "_block_full", fused),
                              _block_source(literal, lanes, 1, 1, "_block_one", fused)])
    tile = _VECTOR_TILE.format(cache=CACHE, blocks=blocks, rows=rows, lanes=lanes, block_width=vectors * lanes,
                                 chunk=_CHUNK)
    names = ("load", "store", "splat", "mul", "add", "fma", "widen", "raise_to", "below_mask", "count_below")
    imports = "from deepmanifold.geometry._simd import " + ", ".join(f"{k}{lanes} as v{k}" for k in names)
    return _TEMPLATE.format(cache=CACHE, imports=imports, tile=tile)


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


def tiles_kernel(C: int, specialised: bool = False):
    """The compiled tile kernel for ``C`` classes (generated once, cached on disk when possible):
    for ``C`` alone if ``specialised``, else the one vector kernel for every ``C`` up to 32
    (:func:`_kernel_source`; the BLAS kernel above).

    The generated module's file name carries a digest of its source, numba's version and
    the CPU numba compiles for (:attr:`_machine.CPUInfo.key`), so a cache folder shared
    between machines (an NFS home, a copied store or environment) holds one module, and
    so one numba cache, per CPU. numba's own index key already names the CPU and its
    features; the separate module also keeps the machines from sharing, and racing on,
    one index file, and would still hold if a numba release dropped the CPU from its key.
    """
    key = "blas" if C > _MAX_VECTOR_CLASSES else C if specialised else "vec"
    if key in _TILE_KERNELS:
        return _TILE_KERNELS[key]
    source = _kernel_source(C, specialised=specialised)
    # Looked up through the module at each call, so tests can stand in another CPU.
    target = _machine.cpu_info().key
    # The module imports its vector operations from _simd: their source is part of the kernel.
    with open(_simd.__file__, encoding="utf-8") as fh:
        simd_source = fh.read()
    digest = hashlib.sha256((source + simd_source + numba.__version__ + target).encode()).hexdigest()[:12]
    folder = _generated_dir() or tempfile.mkdtemp(prefix="deepmanifold-kernels-")
    path = os.path.join(folder, f"bc_tiles_{key}_{digest}.py")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(source)
        os.replace(tmp, path)  # atomic: concurrent processes never import a half-written file
    spec = importlib.util.spec_from_file_location(f"_deepmanifold_bc_tiles_{key}_{digest}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # numba's cache finds the module of a function by name
    spec.loader.exec_module(module)
    _TILE_KERNELS[key] = module.tiles
    return module.tiles


# Pair-samples of one bhattacharyya_tiles call from which it runs the specialised kernel
# (about a second of one core); smaller calls share the kernel for every class count.
SPECIALISE_PAIR_SAMPLES = 10**9


def bhattacharyya_tiles(A, Bs, out, floor, renorm, tile_rows, row0, col0, widths, symmetric) -> int:
    """Fill ``out[:, l*W:(l+1)*W]`` with d_B between row models and column block l.

    A : (n, R, C) roots of R row models (global indices row0 + r).
    Bs : (L, n, C, W) roots of L column blocks of W models; block l starts at
        global column col0 + l*W and has widths[l] valid columns. W is a multiple of
        :func:`column_multiple`, fastest at most :func:`column_width`; padding columns are
        never written, and those after the last valid vector not computed.
    out : (R, L*W) float64, receives d_B (entries outside the valid region or,
        if symmetric, with global column <= global row are left untouched).
    Returns the number of clamped (pair, sample) coefficients in the region written.
    """
    R = A.shape[1]
    L, W = Bs.shape[0], Bs.shape[3]
    if A.shape[2] <= _MAX_VECTOR_CLASSES and W % column_multiple():
        raise ValueError(f"column blocks must hold a multiple of {column_multiple()} models "
                         f"(column_multiple()), got {W}")
    n_row_tiles = (R + tile_rows - 1) // tile_rows
    k, l = np.divmod(np.arange(n_row_tiles * L, dtype=np.int64), L)
    keep = np.ones(k.shape, dtype=bool)
    if symmetric:  # tiles wholly on or below the diagonal have nothing to compute
        keep = col0 + l * W + widths[l] - 1 > row0 + k * tile_rows
    items = (k * L + l)[keep]
    # A call this large runs the kernel written for its class count: its compilation (20-35 s,
    # once per class count and CPU, then cached on disk) is paid back within a few such calls.
    work = A.shape[1] * L * W * A.shape[0]
    kernel = tiles_kernel(int(A.shape[2]), specialised=work >= SPECIALISE_PAIR_SAMPLES)
    counts = kernel(A, Bs, out, A.dtype.type(floor), renorm, tile_rows, row0, col0, widths, symmetric,
                    items, numba.get_num_threads())
    return int(counts.sum())


@contextlib.contextmanager
def set_threads(n_jobs):
    """``n_jobs`` numba threads (None or -1: all) inside the ``with`` block, restored afterwards."""
    saved = numba.get_num_threads()
    limit = numba.config.NUMBA_NUM_THREADS
    n = limit if n_jobs is None or n_jobs == -1 else n_jobs
    numba.set_num_threads(max(1, min(int(n), limit)))
    try:
        yield
    finally:
        numba.set_num_threads(saved)
