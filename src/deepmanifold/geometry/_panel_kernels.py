"""Numba kernels for passes over (row panels of) a distance matrix, for InPCA.

A float32 matrix is read as it is stored and every product is accumulated in
float64 in registers: no float64 copy of a panel is made (converting panels
costs most of a pass, mostly in page faults on fresh temporaries), and the rows
run in parallel on numba threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._kernels import CACHE


@njit(parallel=True, fastmath=True, cache=CACHE)
def panel_matmat(P, X, out):  # pragma: no cover - compiled
    """out = P @ X, float64 accumulation; P (rows, n) any float dtype, X (n, b) float64.

    Four rows of P share each row of X, so X is read once per four rows.
    """
    rows, n = P.shape
    b = X.shape[1]
    for blk in prange((rows + 3) // 4):
        r0 = blk * 4
        r1 = min(rows, r0 + 4)
        acc = np.zeros((4, b))
        if r1 - r0 == 4:
            for j in range(n):
                d0 = np.float64(P[r0, j])
                d1 = np.float64(P[r0 + 1, j])
                d2 = np.float64(P[r0 + 2, j])
                d3 = np.float64(P[r0 + 3, j])
                xr = X[j]
                for c in range(b):
                    x = xr[c]
                    acc[0, c] += d0 * x
                    acc[1, c] += d1 * x
                    acc[2, c] += d2 * x
                    acc[3, c] += d3 * x
        else:
            for r in range(r0, r1):
                for j in range(n):
                    d = np.float64(P[r, j])
                    for c in range(b):
                        acc[r - r0, c] += d * X[j, c]
        for r in range(r0, r1):
            for c in range(b):
                out[r, c] = acc[r - r0, c]


@njit(parallel=True, fastmath=True, cache=CACHE)
def centred_sq_sum(P, shift, col):  # pragma: no cover - compiled
    """sum_ij (P_ij - shift_i - col_j)^2 in float64, P (rows, n) any float dtype."""
    rows, n = P.shape
    partial = np.zeros(rows)
    for r in prange(rows):
        s = 0.0
        sh = shift[r]
        for j in range(n):
            v = np.float64(P[r, j]) - sh - col[j]
            s += v * v
        partial[r] = s
    return partial.sum()
