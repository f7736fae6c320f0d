r"""Vectorised minimisers of the two progress objectives (private; docs/method.md §3.3).

Both work on the geodesic coefficients ``a_i = <sqrt p_i, sqrt p0_i>`` and
``b_i = <sqrt p_i, sqrt p*_i>`` of a block of models (rows) and return, per
model, the position ``t`` in ``[0, 1]`` on the ignorance-to-truth geodesic that
minimises

- ``"bhattacharyya"``: ``f(t) = -mean_i log g_i(t)``, the intensive
  Bhattacharyya distance to ``γ(t)`` (:func:`argmin_bhattacharyya`);
- ``"angle"``: ``F(t) = sum_i arccos g_i(t)``, the summed Bhattacharyya angle
  to ``γ(t)``, the reference study's definition (:func:`argmin_angle`);

with ``g_i(t) = [a_i sin((1-t)θ) + b_i sin(tθ)] / sin θ``, ``cos θ = 1/sqrt(C)``.
Both objectives are convex in ``t``, so a Newton iteration on the derivative,
safeguarded by a bisection bracket, finds the global minimiser for all models of
a block at once.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._kernels import CACHE
from .validation import PROGRESS_METHODS as METHODS
from .validation import check_progress_method as check_method

T_TOL = 1e-12  # the returned minimiser is within this of the exact one
_MAX_ITER = 200  # bisection alone needs ~40 steps to T_TOL


def angle(n_classes: int) -> float:
    """Angle between ignorance and truth on the sphere: ``arccos(1/sqrt(C))``."""
    return float(np.arccos(1.0 / np.sqrt(n_classes)))


def argmin(a: np.ndarray, b: np.ndarray, n_classes: int, method: str) -> np.ndarray:
    """Progress per row of ``(a, b)`` by ``method`` (both arrays ``(m, n)``, float64)."""
    if method == "angle":
        return argmin_angle(a, b, n_classes)
    return argmin_bhattacharyya(b / a, n_classes)


# --------------------------------------------------------------------------- d_B
def argmin_bhattacharyya(r: np.ndarray, n_classes: int) -> np.ndarray:
    r"""Vectorised argmin over ``[0, 1]`` of the strictly convex ``f``, per row of ``r = b / a``.

    With ``s1, c1 = sin, cos((1-t)θ)`` and ``s2, c2 = sin, cos(tθ)``,
    ``g_i'/g_i = θ (r_i c2 - c1) / (r_i s2 + s1) = θ κ u_i`` where
    ``u_i = (r_i - c1/c2) / (r_i + s1/s2)`` and ``κ = c2/s2``, so
    ``f' = -θ κ mean(u)`` and ``f'' = θ² (1 + κ² mean(u²))``: a subtraction, an
    addition, a division and two reductions over ``(models, n)`` per iteration.
    At the ends, ``f'(0) = θ/sin θ (cos θ - mean r)`` and
    ``f'(1) = θ/sin θ (mean 1/r - cos θ)`` (``+inf`` if some ``b_i = 0``).
    """
    m, n = r.shape
    theta = angle(n_classes)
    cos_t, sin_t = 1.0 / np.sqrt(n_classes), np.sqrt((n_classes - 1) / n_classes)
    ones = np.ones(n)
    mean_r = (r @ ones) / n
    slope0 = theta / sin_t * (cos_t - mean_r)
    with np.errstate(divide="ignore"):
        slope1 = theta / sin_t * ((1.0 / r) @ ones / n - cos_t)
    t = np.where(slope0 >= 0, 0.0, 1.0)
    idx = np.flatnonzero((slope0 < 0) & (slope1 > 0))  # root of f' inside (0, 1)
    if idx.size == 0:
        return t
    R = r if idx.size == m else r[idx]
    # Start from one Newton step at t = 0: f''(0) = θ² (1 + mean((r - cos θ)²) / sin² θ).
    spread = np.maximum(np.einsum("ij,ij->i", R, R) / n - 2 * cos_t * mean_r[idx] + cos_t**2, 0.0)
    x = -slope0[idx] / (theta**2 * (1.0 + spread / sin_t**2))
    x = np.where(x < 1.0, x, 0.5)
    lo, hi = np.zeros(idx.size), np.ones(idx.size)
    u, den = np.empty_like(R), np.empty_like(R)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(_MAX_ITER):
            s1, c1 = np.sin((1.0 - x) * theta), np.cos((1.0 - x) * theta)
            s2, c2 = np.sin(x * theta), np.cos(x * theta)
            kappa = c2 / s2
            np.subtract(R, (c1 / c2)[:, None], out=u)
            np.add(R, (s1 / s2)[:, None], out=den)
            np.divide(u, den, out=u)
            d1 = -theta * kappa * (u @ ones) / n
            d2 = theta**2 * (1.0 + kappa**2 * np.einsum("ij,ij->i", u, u) / n)
            # A NaN (only if x underflowed) updates nothing and falls back to bisection.
            lo = np.where(d1 < 0, x, lo)
            hi = np.where(d1 > 0, x, hi)
            step = d1 / d2
            new = x - step
            done = (np.abs(step) <= T_TOL) | (hi - lo <= T_TOL) | (d1 == 0)
            bisect = ~done & ~((new > lo) & (new < hi))
            new[bisect] = 0.5 * (lo[bisect] + hi[bisect])
            if done.any():
                t[idx[done]] = np.clip(np.where(d1[done] == 0, x[done], new[done]), 0.0, 1.0)
                keep = ~done
                if not keep.any():
                    return t
                idx, R, lo, hi, new = idx[keep], R[keep], lo[keep], hi[keep], new[keep]
                u, den = u[:idx.size], den[:idx.size]
            x = new
    t[idx] = x  # not reached: bisection alone converges in ~40 steps
    return t


# --------------------------------------------------------------------------- angle
def plane_coordinates(a: np.ndarray, b: np.ndarray, n_classes: int):
    r"""``(x, y, h)``: each sample's ``sqrt p_i`` in the plane of its great circle.

    With the orthonormal pair ``e1 = sqrt p0_i`` and
    ``e2 = (sqrt p*_i - cos θ sqrt p0_i) / sin θ`` the geodesic is
    ``sqrt γ_i(t) = cos(tθ) e1 + sin(tθ) e2``, and ``sqrt p_i`` has in-plane
    coordinates ``x_i = a_i``, ``y_i = (b_i - cos θ a_i) / sin θ`` and squared
    distance ``h_i = 1 - x_i² - y_i²`` (clipped at 0) from the plane.
    """
    cos_t, sin_t = 1.0 / np.sqrt(n_classes), np.sqrt((n_classes - 1) / n_classes)
    y = (b - cos_t * a) / sin_t
    h = 1.0 - a * a - y * y
    np.maximum(h, 0.0, out=h)
    return a, y, h


@njit(fastmath=False, nogil=True, cache=CACHE)
def _angle_slopes_kernel(x, y, h, t, theta, side, d1, curv):  # pragma: no cover - compiled
    """Per row: ``d1 = F'(t)`` and ``curv = F''(t) / θ²`` in one fused pass (see :func:`_angle_slopes`).

    Serial: a block holds at most ~65,000 coefficients (~50 µs of work), less
    than the cost of starting parallel threads.
    """
    m, n = x.shape
    for r in range(m):
        ct, st = math.cos(t[r] * theta), math.sin(t[r] * theta)
        acc, acc2 = 0.0, 0.0
        for j in range(n):
            s = y[r, j] * ct - x[r, j] * st
            q2 = h[r, j] + s * s
            if q2 == 0.0:
                acc -= side
            else:
                q = math.sqrt(q2)
                acc += s / q
                acc2 += (x[r, j] * ct + y[r, j] * st) * h[r, j] / (q2 * q)
        d1[r] = -theta * acc
        curv[r] = acc2


def _angle_slopes(x, y, h, t, theta, side: float):
    r"""``(F'(t), F''(t)/θ²)`` per row, one-sided at kinks (``side`` +1: right, -1: left).

    ``s_i = y_i cos(tθ) - x_i sin(tθ)`` is the in-plane component of
    ``sqrt p_i`` orthogonal to ``sqrt γ_i(t)``, ``c_i = g_i(t)`` the component
    along it, ``q_i = sqrt(h_i + s_i²)`` the sine of the angle between them.
    The angle ``A_i = atan2(q_i, c_i)`` has ``A_i' = -θ s_i / q_i`` and
    ``A_i'' = θ² c_i h_i / q_i³ >= 0``. Where ``q_i = 0`` (``sqrt p_i`` is on
    the geodesic at ``t``) the term is ``|tθ - φ_i|``, with one-sided slope
    ``side θ``.
    """
    d1, curv = np.empty(x.shape[0]), np.empty(x.shape[0])
    _angle_slopes_kernel(x, y, h, np.ascontiguousarray(t, dtype=np.float64), float(theta), float(side), d1, curv)
    return d1, curv


def argmin_angle(a: np.ndarray, b: np.ndarray, n_classes: int) -> np.ndarray:
    r"""Vectorised argmin over ``[0, 1]`` of ``F(t) = Σ_i arccos g_i(t)``, per row of ``(a, b)``.

    ``F`` is convex (``A_i'' >= 0``, see :func:`_angle_slopes`), but not
    strictly and not smoothly: a sample on the geodesic contributes the kink
    ``|tθ - φ_i|``. So the minimiser is bracketed by the sign of the right
    derivative (``F'_+(x) >= 0`` puts it at or left of ``x``) and each
    iteration takes the Newton step on ``F'`` when it falls inside the bracket
    and shrinks fast enough (Numerical Recipes' ``rtsafe`` rule: at most half
    the step before last), else bisects. A Newton step below :data:`T_TOL` is
    pushed :data:`T_TOL` further, so that the next evaluation closes the
    bracket from the other side; the answer is the middle of a bracket at most
    ``2 T_TOL`` wide. ``t = 0`` if ``F'_+(0) >= 0`` and ``t = 1`` if
    ``F'_-(1) <= 0``. The start is one Newton step from ``t = 0`` (0.5 when
    it leaves ``(0, 1)``); the iteration typically ends after 4-5 evaluations
    of ``F'`` (besides the two at the ends), each one fused pass over the
    ``(models, n)`` coefficients.
    """
    m, n = a.shape
    theta = angle(n_classes)
    x_all, y_all, h_all = plane_coordinates(a, b, n_classes)
    slope0, curv0 = _angle_slopes(x_all, y_all, h_all, np.zeros(m), theta, 1.0)
    slope1 = _angle_slopes(x_all, y_all, h_all, np.ones(m), theta, -1.0)[0]
    t = np.where(slope0 >= 0, 0.0, 1.0)
    idx = np.flatnonzero((slope0 < 0) & (slope1 > 0))
    if idx.size == 0:
        return t
    X, Y, H = (np.ascontiguousarray(v if idx.size == m else v[idx]) for v in (x_all, y_all, h_all))
    lo, hi = np.zeros(idx.size), np.ones(idx.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = -slope0[idx] / (theta**2 * curv0[idx])  # one Newton step from t = 0
    x = np.where((x > 0) & (x < 1), x, 0.5)
    dx = dx_old = np.ones(idx.size)
    for _ in range(_MAX_ITER):
        d1, curv = _angle_slopes(X, Y, H, x, theta, 1.0)
        lo = np.where(d1 < 0, x, lo)
        hi = np.where(d1 >= 0, x, hi)
        done = (hi - lo <= 2 * T_TOL) | (d1 == 0)
        if done.any():
            t[idx[done]] = np.where(d1[done] == 0, x[done], 0.5 * (lo[done] + hi[done]))
            keep = ~done
            if not keep.any():
                return t
            idx, X, Y, H = idx[keep], X[keep], Y[keep], H[keep]  # fancy indexing: contiguous
            x, d1, curv, lo, hi, dx, dx_old = (v[keep] for v in (x, d1, curv, lo, hi, dx, dx_old))
        with np.errstate(divide="ignore", invalid="ignore"):
            step = d1 / (theta**2 * curv)
        step = np.where(np.abs(step) <= T_TOL, step + np.sign(d1) * T_TOL, step)
        new = x - step
        bisect = ~((new > lo) & (new < hi)) | (np.abs(step) > 0.5 * np.abs(dx_old)) | ~np.isfinite(new)
        new = np.where(bisect, 0.5 * (lo + hi), new)
        dx_old, dx = dx, np.abs(new - x)
        x = new
    t[idx] = 0.5 * (lo + hi)  # not reached: bisection alone converges in ~40 steps
    return t
