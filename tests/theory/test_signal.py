"""Mean-field signal propagation: published values, closed forms against quadrature and
scipy's adaptive integrators, and the maps' predictions against finite random networks."""

import doctest
import math

import numpy as np
import pytest
from scipy.integrate import dblquad, quad
from scipy.special import erf
from scipy.stats import multivariate_normal

from deepmanifold.theory import _signal
from deepmanifold.theory._signal import (ACTIVATIONS, CRITICAL_TOL, chi_1, correlation_map, critical_sigma_w2,
                                         depth_scales, length_map, order_chaos_boundary, q_star)

PHI = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0), "erf": erf}
DPHI = {"tanh": lambda x: 1.0 / np.cosh(x) ** 2, "relu": lambda x: (x > 0).astype(float),
        "erf": lambda x: 2.0 / np.sqrt(np.pi) * np.exp(-x * x)}
SMOOTH = ("tanh", "erf")


def _gauss(g, q):
    """``E g(√q z)`` by scipy's adaptive quadrature: a reference independent of the module's rule."""
    value, _ = quad(lambda z: g(math.sqrt(q) * z) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi),
                    -12, 12, points=[0.0], epsabs=1e-14, epsrel=1e-13, limit=400)
    return value


def _gauss_pair(g, q, c):
    """``E g(u₁) g(u₂)`` with ``(u₁, u₂)`` of variance q and correlation c, by ``dblquad``."""
    s, r = math.sqrt(1 - c * c), math.sqrt(q)

    def f(z2, z1):
        return g(r * z1) * g(r * (c * z1 + s * z2)) * math.exp(-0.5 * (z1 * z1 + z2 * z2)) / (2 * math.pi)

    return sum(dblquad(f, a, b, -10, 10, epsabs=1e-13, epsrel=1e-12)[0] for a, b in ((-10, 0), (0, 10)))


def _relu_pair(q, c):
    """``E relu(u₁) relu(u₂)`` by nested ``quad`` over the region where both are positive,
    so that neither integral meets a kink."""
    s = math.sqrt(1 - c * c)

    def inner(z1):
        def f(z2):
            return (c * z1 + s * z2) * math.exp(-0.5 * z2 * z2) / math.sqrt(2 * math.pi)

        return quad(f, -c * z1 / s, 12, epsabs=1e-15, epsrel=1e-13)[0]

    outer = quad(lambda z1: z1 * inner(z1) * math.exp(-0.5 * z1 * z1) / math.sqrt(2 * math.pi), 0, 12,
                 epsabs=1e-15, epsrel=1e-13)[0]
    return q * outer


# ----------------------------------------------------------------------------- published values
def test_tanh_critical_point_at_sigma_b2_0_05_matches_schoenholz_et_al():
    # Schoenholz et al. 2017 (Fig. 1, §3): critical at σ_w² ≈ 1.76 with q* ≈ 0.570.
    sw = critical_sigma_w2("tanh", 0.05)
    q = q_star("tanh", sw, 0.05)
    assert round(sw, 3) == 1.761 and f"{sw:.3g}" == "1.76"
    assert round(q, 3) == 0.570
    # The published q* belongs to the unrounded critical point: at σ_w² = 1.76 itself it is 0.5695.
    assert round(q_star("tanh", 1.76, 0.05), 4) == 0.5695


def test_relu_is_critical_at_sigma_w2_2_whatever_the_bias():
    for sb in (0.0, 0.05, 1.0):
        assert critical_sigma_w2("relu", sb) == 2.0
        assert chi_1("relu", 2.0, sb) == 1.0
    assert math.isinf(q_star("relu", 2.0, 0.05))  # q^l grows by σ_b² per layer: no finite fixed point
    assert math.isnan(q_star("relu", 2.0, 0.0))  # the length map is the identity: every q is fixed
    assert math.isinf(q_star("relu", 2.5, 0.0))
    s = depth_scales("relu", 2.0, 0.05)
    assert s.phase == "critical" and math.isinf(s.xi_c) and math.isnan(s.xi_q)


def test_without_bias_the_transition_is_at_one_over_phi_prime_0_squared():
    assert critical_sigma_w2("tanh", 0.0) == 1.0
    assert critical_sigma_w2("erf", 0.0) == pytest.approx(math.pi / 4, rel=1e-15)
    assert q_star("tanh", 1.0, 0.0) == 0.0 and q_star("tanh", 1.01, 0.0) > 0


# ----------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("sw, sb", [(0.5, 0.3), (1.5, 0.05), (1.9, 0.5), (3.0, 0.2)])
def test_relu_length_fixed_point_is_the_closed_form(sw, sb):
    expected = sb / (1 - sw / 2) if sw < 2 else math.inf
    for method in ("auto", "quadrature"):
        assert q_star("relu", sw, sb, method=method) == pytest.approx(expected, rel=1e-13)
        assert chi_1("relu", sw, sb, method=method) == pytest.approx(sw / 2, rel=1e-13)


@pytest.mark.parametrize("sw, sb", [(0.5, 0.0), (0.5, 0.3), (1.2, 0.05), (2.0, 0.0), (3.0, 0.2), (8.0, 1.0)])
def test_erf_closed_forms_agree_with_quadrature(sw, sb):
    auto, quadrature = depth_scales("erf", sw, sb), depth_scales("erf", sw, sb, method="quadrature")
    for field in ("q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c"):
        a, b = getattr(auto, field), getattr(quadrature, field)
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12, nan_ok=True), field
    c = np.linspace(-1, 1, 9)
    assert correlation_map(c, "erf", sw, sb) == pytest.approx(
        correlation_map(c, "erf", sw, sb, method="quadrature"), abs=1e-12)


@pytest.mark.parametrize("q", [0.01, 0.57, 3.0, 40.0])
def test_erf_closed_forms_are_the_gaussian_integrals(q):
    forms = _signal._ErfForms
    assert forms.mean_sq(q) == pytest.approx(_gauss(lambda x: erf(x) ** 2, q), abs=1e-12)
    assert forms.mean_dsq(q) == pytest.approx(_gauss(lambda x: DPHI["erf"](x) ** 2, q), abs=1e-12)
    slope = (forms.mean_sq(q * (1 + 1e-6)) - forms.mean_sq(q * (1 - 1e-6))) / (2e-6 * q)
    assert forms.mean_sq_slope(q) == pytest.approx(slope, rel=1e-7)  # d/dq of E erf(√q z)²


@pytest.mark.parametrize("c", [-0.8, 0.0, 0.4, 0.95])
def test_relu_arc_cosine_kernel_is_the_gaussian_integral(c):
    q = 1.7
    assert _signal._ReluForms.kernel(q, c) == pytest.approx(_relu_pair(q, c), abs=1e-12)
    # E φ'(u₁)φ'(u₂) is the probability that both are positive (an orthant of the Gaussian).
    both_positive = multivariate_normal(mean=[0, 0], cov=[[1, c], [c, 1]]).cdf([0, 0])
    assert _signal._ReluForms.dkernel(q, c) == pytest.approx(both_positive, abs=1e-6)
    # The quadrature meets a kink and a jump off its grid lines: ~1e-3 is all it gives.
    assert correlation_map(c, "relu", 1.5, 0.5, method="quadrature") == pytest.approx(
        correlation_map(c, "relu", 1.5, 0.5), abs=5e-3)


@pytest.mark.parametrize("q", [0.05, 0.57, 4.0, 100.0])
def test_tanh_quadrature_matches_adaptive_quadrature(q):
    assert length_map(q, "tanh", 1.0, 0.0) == pytest.approx(_gauss(lambda x: np.tanh(x) ** 2, q), abs=1e-12)
    quadrature = _signal._ACTIVATIONS["tanh"].integrals("auto")
    assert quadrature.mean_dsq(q) == pytest.approx(_gauss(lambda x: DPHI["tanh"](x) ** 2, q), abs=1e-12)


@pytest.mark.parametrize("c", [0.3, 0.9])
def test_tanh_correlation_map_matches_double_quadrature(c):
    sw, sb = 1.5, 0.1
    q = q_star("tanh", sw, sb)
    expected = (sw * _gauss_pair(np.tanh, q, c) + sb) / q
    assert correlation_map(c, "tanh", sw, sb) == pytest.approx(expected, abs=1e-11)


# ----------------------------------------------------------------------------- fixed points and slopes
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("sw, sb", [(1.3, 0.3), (1.9, 0.05), (3.0, 0.3), (8.0, 0.5)])
def test_fixed_points_are_fixed_and_the_slopes_are_the_maps_slopes(activation, sw, sb):
    s = depth_scales(activation, sw, sb)
    if not 0 < s.q_star < math.inf:
        assert activation == "relu" and sw >= 2
        return
    assert length_map(s.q_star, activation, sw, sb) == pytest.approx(s.q_star, rel=1e-12)
    assert correlation_map(1.0, activation, sw, sb) == pytest.approx(1.0, abs=1e-12)
    assert correlation_map(s.c_star, activation, sw, sb) == pytest.approx(s.c_star, abs=1e-11)
    h = 1e-5
    dq = (length_map(s.q_star * (1 + h), activation, sw, sb)
          - length_map(s.q_star * (1 - h), activation, sw, sb)) / (2 * h * s.q_star)
    assert math.exp(-1 / s.xi_q) == pytest.approx(dq, rel=1e-6)
    if s.c_star == 1.0:
        h = 1e-10  # one-sided; ReLU's map has a (1 - c)^(3/2) term there
    lo, hi = max(-1.0, s.c_star - h), min(1.0, s.c_star + h)
    dc = (correlation_map(hi, activation, sw, sb) - correlation_map(lo, activation, sw, sb)) / (hi - lo)
    assert s.chi_c == pytest.approx(dc, rel=1e-4)
    if s.phase == "ordered":
        assert s.c_star == 1.0 and s.chi_c == s.chi_1 < 1
    else:
        assert s.phase == "chaotic" and 0 <= s.c_star < 1 and s.chi_c < 1 < s.chi_1


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("sb", [0.0, 0.05, 0.3, 2.0])
def test_chi_1_is_one_at_the_critical_sigma_w2_and_xi_c_diverges_only_there(activation, sb):
    sw = critical_sigma_w2(activation, sb)
    assert chi_1(activation, sw, sb) == pytest.approx(1.0, abs=1e-12)
    at = depth_scales(activation, sw, sb)
    assert at.phase == "critical" and math.isinf(at.xi_c)
    xi = [depth_scales(activation, sw * f, sb).xi_c for f in (0.9, 0.99, 1.01, 1.1)]
    if activation == "relu" and sb > 0:
        assert math.isfinite(xi[0]) and xi[0] < xi[1]
        assert all(math.isinf(x) for x in xi[2:])  # q* = inf beyond: the bias-free map, marginal at c = 1
    elif sb > 0:
        assert all(math.isfinite(x) for x in xi)
        assert xi[0] < xi[1] and xi[3] < xi[2]  # growing towards the boundary from both sides
    if activation in SMOOTH:
        assert chi_1(activation, sw * 0.999, sb) < 1 < chi_1(activation, sw * 1.001, sb)


def test_order_chaos_boundary_is_critical_sigma_w2_along_the_bias():
    sb = np.array([0.0, 0.1, 0.5])
    line = order_chaos_boundary("tanh", sb)
    assert line.shape == (3,) and np.all(np.diff(line) > 0)
    assert line.tolist() == [critical_sigma_w2("tanh", v) for v in sb]


def test_quadrature_holds_its_accuracy_at_large_q():
    # q* ~ 40: the step shrinks as 1/√q to keep tanh's poles resolved.
    sw, sb = 40.0, 0.5
    q = q_star("tanh", sw, sb)
    assert q > 30
    assert sw * _gauss(lambda x: np.tanh(x) ** 2, q) + sb == pytest.approx(q, abs=1e-11)
    assert chi_1("tanh", sw, sb) == pytest.approx(sw * _gauss(lambda x: DPHI["tanh"](x) ** 2, q), abs=1e-11)


# ----------------------------------------------------------------------------- degenerate cases
def test_smooth_activations_without_bias_in_the_ordered_phase_lose_the_signal_and_keep_correlations():
    for activation, sw in (("tanh", 0.8), ("erf", 0.7)):
        s = depth_scales(activation, sw, 0.0)
        gain = chi_1(activation, sw, 0.0)
        assert s.q_star == 0.0 and math.isnan(s.c_star) and s.chi_c == 1.0 and math.isinf(s.xi_c)
        assert gain == pytest.approx(sw * _signal._ACTIVATIONS[activation].gain0)
        assert s.xi_q == pytest.approx(-1 / math.log(gain))
        c = np.array([-0.5, 0.2, 0.9])
        assert correlation_map(c, activation, sw, 0.0) == pytest.approx(c)  # linear in the limit q -> 0


def test_relu_without_bias_follows_the_arc_cosine_map_whose_slope_at_one_is_one():
    c = np.array([-1.0, 0.0, 0.5, 1.0])
    expected = (np.sqrt(1 - c ** 2) + (np.pi - np.arccos(c)) * c) / np.pi
    for sw in (1.0, 2.0, 3.0):
        assert correlation_map(c, "relu", sw, 0.0) == pytest.approx(expected, abs=1e-15)
        s = depth_scales("relu", sw, 0.0)
        assert s.c_star == 1.0 and s.chi_c == 1.0 and math.isinf(s.xi_c)
    slope = (1 - correlation_map(1 - 1e-10, "relu", 1.0, 0.0)) / 1e-10
    assert slope == pytest.approx(1.0, abs=1e-4)
    assert depth_scales("relu", 1.0, 0.0).xi_q == pytest.approx(-1 / math.log(0.5))
    assert math.isnan(depth_scales("relu", 3.0, 0.0).xi_q)


# ----------------------------------------------------------------------------- finite networks
def _square_root(cov):
    """``R`` with ``R Rᵀ = cov`` for a stack of PSD matrices (singular ones too: c -> 1)."""
    w, v = np.linalg.eigh(cov)
    return v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]


def _start(gram, width, seeds, rng):
    """First pre-activations (seeds, width, m) whose Gram matrix ``hᵀh/width`` is exactly `gram`."""
    q, _ = np.linalg.qr(rng.standard_normal((seeds, width, len(gram))))
    return math.sqrt(width) * q @ _square_root(np.asarray(gram, dtype=float)).T


def _propagate(activation, sw, sb, gram, *, width=2000, depth=50, seeds=50, seed=0):
    """Gram matrices ``hᵀh/N`` (seeds, depth, m, m) of m inputs through `seeds` random networks.

    Layer by layer each network draws fresh weights ``N(0, σ_w²/N)`` and biases ``N(0, σ_b²)``,
    independent of everything before, so given the layer below the m pre-activations of a
    unit are jointly Gaussian with covariance ``σ_w² φ(h)ᵀφ(h)/N + σ_b²``, independently
    across units. Sampling that law is sampling the network exactly (no mean-field step),
    at O(N m²) per layer instead of drawing N² weights; :func:`test_weight_matrices_give_the_same_numbers`
    checks it against explicit weight matrices.
    """
    rng = np.random.default_rng(seed)
    h = _start(gram, width, seeds, rng)
    grams = []
    for _ in range(depth):
        f = PHI[activation](h)
        cov = sw * np.einsum("sna,snb->sab", f, f) / width + sb
        h = rng.standard_normal(h.shape) @ np.swapaxes(_square_root(cov), -1, -2)
        grams.append(np.einsum("sna,snb->sab", h, h) / width)
    return np.stack(grams, axis=1)


def _correlation(grams, a, b):
    return grams[..., a, b] / np.sqrt(grams[..., a, a] * grams[..., b, b])


def _pair(q, c):
    return [[q, q * c], [q * c, q]]


@pytest.mark.parametrize("activation, sw, sb", [
    ("tanh", 1.3, 0.3), ("erf", 1.2, 0.2), ("relu", 1.0, 0.5),  # ordered: c* = 1
    ("tanh", 8.0, 0.5), ("erf", 6.0, 0.2),                       # chaotic: c* < 1
])
def test_lengths_and_correlations_converge_to_q_star_and_c_star(activation, sw, sb):
    s = depth_scales(activation, sw, sb)
    grams = _propagate(activation, sw, sb, _pair(2 * s.q_star, 0.3))
    q = grams[:, 20:, 0, 0].mean(axis=1)  # per network, past the transient (ξ_q < 2 layers here)
    c = _correlation(grams, 0, 1)[:, 30:].mean(axis=1)
    # Width 2000: one layer's |h|²/N fluctuates by √(2/N) ≈ 3% (√(5/N) for ReLU); averaged over
    # 30 layers and 50 networks the standard error is ~0.2% (measured), and the finite-width
    # bias is O(1/N). 1% is ~4 standard errors. c fluctuates by ~(1 - c²)/√N ≈ 0.02 per layer,
    # ~0.004 averaged: 0.015 is ~4 standard errors.
    assert q.mean() == pytest.approx(s.q_star, rel=0.01)
    assert c.mean() == pytest.approx(s.c_star, abs=0.015)


@pytest.mark.parametrize("activation, sw, sb", [("tanh", 1.3, 0.3), ("erf", 1.2, 0.2), ("tanh", 1.2, 0.05)])
def test_ordered_correlations_approach_one_at_the_rate_xi_c(activation, sw, sb):
    s = depth_scales(activation, sw, sb)
    grams = _propagate(activation, sw, sb, _pair(s.q_star, 0.3))
    gap = 1 - _correlation(grams, 0, 1).mean(axis=0)
    layers = np.arange(1, len(gap) + 1)
    # Where 1 − c < 1e-2 the map is linear to 1% (C'' (1 − c) ≪ χ_c), and above 1e-4 the
    # finite-width noise, relative to 1 − c, is ~√(2/N)/√50 ≈ 0.5%; the fitted rates came
    # within 0.7% of ξ_c, the tolerance is 5%.
    window = (gap < 1e-2) & (gap > 1e-4)
    assert window.sum() >= 6
    slope = np.polyfit(layers[window], np.log(gap[window]), 1)[0]
    assert -1 / slope == pytest.approx(s.xi_c, rel=0.05)


@pytest.mark.parametrize("activation, sw, sb", [("tanh", 8.0, 0.5), ("erf", 6.0, 0.2)])
def test_chaotic_correlations_approach_c_star_at_the_rate_xi_c(activation, sw, sb):
    s = depth_scales(activation, sw, sb)
    delta = 0.15
    # Two pairs, at c* + δ and c* − δ, in the same networks: half their difference cancels the
    # map's curvature, ½(C(c* + δ) − C(c* − δ)) = χ_c δ + O(δ³), so it decays as χ_c^l.
    gram = np.zeros((4, 4))
    gram[:2, :2], gram[2:, 2:] = _pair(s.q_star, s.c_star + delta), _pair(s.q_star, s.c_star - delta)
    grams = _propagate(activation, sw, sb, gram, depth=20, seeds=100)
    half_gap = 0.5 * (_correlation(grams, 0, 1) - _correlation(grams, 2, 3)).mean(axis=0)
    layers = np.arange(1, len(half_gap) + 1)
    # The noise of the mean over 100 networks is ~0.003: keep the layers 5 times above it.
    # The fitted rates came within 5% of ξ_c (9 layers each), the tolerance is 10%.
    window = np.cumprod(half_gap > 0.015).astype(bool)
    assert window.sum() >= 6
    slope = np.polyfit(layers[window], np.log(half_gap[window]), 1)[0]
    assert -1 / slope == pytest.approx(s.xi_c, rel=0.1)


def test_relu_lengths_relax_at_the_rate_xi_q():
    sw, sb = 1.5, 0.5
    s = depth_scales("relu", sw, sb)
    grams = _propagate("relu", sw, sb, [[10 * s.q_star]], depth=15, seeds=200)
    excess = grams[:, :, 0, 0].mean(axis=0) - s.q_star
    # The ReLU length map is linear, so E q^l − q* = (σ_w²/2)^l (q⁰ − q*) exactly, at any width.
    expected = 9 * s.q_star * np.exp(-np.arange(1, 16) / s.xi_q)
    assert excess == pytest.approx(expected, rel=0.05)


def test_weight_matrices_give_the_same_numbers():
    """A network with explicit weight matrices (width 1000) agrees with the sampled law and the theory."""
    sw, sb = 1.3, 0.3
    s = depth_scales("tanh", sw, sb)
    rng = np.random.default_rng(1)
    gaps, lengths = [], []
    for _ in range(3):
        h = _start(_pair(s.q_star, 0.3), 1000, 1, rng)[0].astype(np.float32)
        for _ in range(30):
            w = rng.standard_normal((1000, 1000), dtype=np.float32) * np.float32(math.sqrt(sw / 1000))
            h = w @ np.tanh(h) + rng.standard_normal((1000, 1), dtype=np.float32) * np.float32(math.sqrt(sb))
            g = h.astype(float).T @ h.astype(float) / 1000
            lengths.append(g[0, 0])
            gaps.append(1 - g[0, 1] / math.sqrt(g[0, 0] * g[1, 1]))
    lengths, gaps = np.array(lengths).reshape(3, 30), np.array(gaps).reshape(3, 30).mean(axis=0)
    assert lengths[:, 5:].mean() == pytest.approx(s.q_star, rel=0.02)  # 3 networks: ~0.5% standard error
    window = (gaps < 1e-2) & (gaps > 1e-4)
    slope = np.polyfit(np.arange(1, 31)[window], np.log(gaps[window]), 1)[0]
    assert -1 / slope == pytest.approx(s.xi_c, rel=0.1)


# ----------------------------------------------------------------------------- inputs
@pytest.mark.parametrize("call, match", [
    (lambda: q_star("sigmoid", 1.0, 0.1), "activation must be one of 'tanh', 'relu', 'erf'"),
    (lambda: q_star(None, 1.0, 0.1), "activation must be one of"),
    (lambda: q_star("tanh", 0.0, 0.1), r"sigma_w2 must be a finite number > 0"),
    (lambda: q_star("tanh", -1.0, 0.1), r"sigma_w2 must be a finite number > 0"),
    (lambda: chi_1("tanh", math.nan, 0.1), r"sigma_w2 must be a finite number > 0"),
    (lambda: chi_1("tanh", True, 0.1), r"sigma_w2 must be a finite number > 0"),
    (lambda: chi_1("tanh", "1.0", 0.1), r"sigma_w2 must be a finite number > 0"),
    (lambda: depth_scales("tanh", 1.0, -0.1), r"sigma_b2 must be a finite number >= 0"),
    (lambda: depth_scales("tanh", 1.0, math.inf), r"sigma_b2 must be a finite number >= 0"),
    (lambda: depth_scales("tanh", 1.0, 0.1, method="exact"), "method must be one of 'auto', 'quadrature'"),
    (lambda: correlation_map(1.5, "tanh", 1.0, 0.1), r"c must be correlations in \[-1, 1\]"),
    (lambda: correlation_map([0.5, math.nan], "tanh", 1.0, 0.1), r"c must be correlations in \[-1, 1\]"),
    (lambda: length_map(-1.0, "tanh", 1.0, 0.1), "q must be squared lengths >= 0"),
    (lambda: critical_sigma_w2("relu", -0.5), r"sigma_b2 must be a finite number >= 0"),
    (lambda: order_chaos_boundary("tanh", [[0.1, 0.2]]), "1-D sequence"),
])
def test_bad_inputs_say_what_was_wrong(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_scalars_in_scalars_out_arrays_keep_their_shape():
    assert isinstance(correlation_map(0.5, "tanh", 1.5, 0.1), float)
    assert isinstance(length_map(0.5, "tanh", 1.5, 0.1), float)
    assert correlation_map(np.zeros((2, 3)), "tanh", 1.5, 0.1).shape == (2, 3)
    s = depth_scales("tanh", 1.5, 0.1)
    with pytest.raises(AttributeError):
        s.q_star = 1.0  # frozen
    assert CRITICAL_TOL < 1e-6


def test_docstring_examples():
    assert doctest.testmod(_signal, raise_on_error=False).failed == 0
