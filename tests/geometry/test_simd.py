"""The explicit vector operations of the distance kernel (deepmanifold.geometry._simd)."""

from fractions import Fraction

import numpy as np
import pytest
from numba import njit

from deepmanifold.geometry import _simd


def _kernel(lanes):
    ops = _simd.vector_ops(lanes)
    load, store, splat, mul, add, fma, widen = (ops[k] for k in ("load", "store", "splat", "mul", "add", "fma", "widen"))
    raise_to, below_mask, count_below = ops["raise_to"], ops["below_mask"], ops["count_below"]

    @njit
    def run(a, b, c, out_fma, out_mul, out_wide, out_raised, out_splat, floor):
        x, y, z = load(a, 1), load(b, 1), load(c, 1)  # from an offset: lanes 1..lanes
        store(out_fma, 0, fma(x, y, z))
        store(out_mul, 0, add(mul(x, y), z))
        store(out_wide, 0, widen(x))
        store(out_raised, 0, raise_to(x, floor))
        store(out_splat, 0, splat(floor))
        return below_mask(x, floor), count_below(x, floor)

    return run


@pytest.mark.parametrize("lanes", [2, 4, 8])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vector_operations_round_as_their_scalar_counterparts(lanes, dtype):
    # (1 + h)(1 - h) - 1 = -h^2 with h^2 below half the spacing of floats under 1: a rounded
    # product gives 1 and the sum 0; a fused multiply-add keeps -h^2 (exactly representable).
    h = dtype(2.0 ** -(np.finfo(dtype).nmant // 2 + 2))
    a = np.full(lanes + 1, 1 + h, dtype)
    b = np.full(lanes + 1, 1 - h, dtype)
    c = np.full(lanes + 1, -1.0, dtype)
    a[2::2] = 0.5  # lanes below the floor, for raise_to, below_mask and count_below
    out = [np.zeros(lanes, dtype) for _ in range(2)] + [np.zeros(lanes)] + [np.zeros(lanes, dtype) for _ in range(2)]
    floor = dtype(0.75)
    mask, count = _kernel(lanes)(a, b, c, *out, floor)
    x, y, z = a[1:], b[1:], c[1:]
    exact = [Fraction(float(p)) * Fraction(float(q)) + Fraction(float(r)) for p, q, r in zip(x, y, z)]
    np.testing.assert_array_equal(out[0], np.array([float(e) for e in exact]).astype(dtype))  # exact, rounded once
    assert np.any(out[0] != (x * y + z))  # and not the product rounded first
    np.testing.assert_array_equal(out[1], x * y + z)
    np.testing.assert_array_equal(out[2], x.astype(np.float64))
    np.testing.assert_array_equal(out[3], np.maximum(x, floor))
    np.testing.assert_array_equal(out[4], np.full(lanes, floor))
    below = x < floor
    assert count == below.sum() and mask == sum(1 << k for k in np.flatnonzero(below))


def test_vector_ops_only_for_known_lane_counts():
    with pytest.raises(ValueError, match="lanes must be one of"):
        _simd.vector_ops(3)
