"""Synthetic data: Gaussian inputs with a decaying spectrum, labelled by a teacher MLP.

The design (all of it fixed by ``seed``):

- **Inputs** x ∈ R^d (d = ``dim``, 200 by default) are drawn from N(0, Σ) with
  Σ = Q diag(λ) Qᵀ. The eigenvalues decay exponentially,

      λ_k = a · exp(−k / τ),   k = 0, 1, …, d − 1,

  with τ = ``tau`` (20 by default, so λ_{d−1}/λ_0 = e^{−9.95} for d = 200), or, with
  ``power = c``, as a power law λ_k = a · (k + 1)^(−c) (the reference study's synthetic
  data uses c ∈ {0, 0.5}; c = 0 is isotropic); a is chosen so that Σ_k λ_k = d: the
  average variance of a coordinate is 1, like standardised pixels; the inputs are not
  standardised further (that would distort the spectrum).
  Q is a Haar-random rotation (QR of a Gaussian matrix, column signs fixed).
- **Labels** come from a random teacher: a one-hidden-layer MLP
  h = ReLU(W1 x + b1), logits = W2 h + b2, label = argmax of the logits, with W1, b1, W2
  Gaussian (W1 entries of variance 1/d, W2 of variance 1/width, b1 of variance 1/d).
  The output bias b2 is then calibrated on a separate sample of 20,000 inputs so the
  classes are about equally frequent (a random teacher otherwise often starves some
  classes). The teacher is a fixed, deterministic function of x.
- Independent random streams from ``seed``: the task (Q, teacher), the training inputs,
  the test inputs and the calibration inputs; so ``n_train`` does not change the test set
  or the teacher.

Inputs are returned shaped ``(N, 1, 1, d)`` so every model sees an image-like tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._common import check_int

__all__ = ["GaussianTeacher", "make_gaussian_teacher", "sample_gaussian_teacher"]

_N_CALIBRATION = 20_000
_STREAM_TASK, _STREAM_TRAIN, _STREAM_TEST, _STREAM_CALIBRATION = 0, 1, 2, 3


@dataclass(frozen=True, eq=False)
class GaussianTeacher:
    """The input distribution and teacher of the ``gaussian_teacher`` dataset.

    Attributes
    ----------
    eigenvalues : np.ndarray, shape (d,)
        λ_k of Σ, descending, summing to d.
    rotation : np.ndarray, shape (d, d)
        Orthogonal Q; column k is the eigenvector of λ_k.
    w1, b1, w2, b2 : np.ndarray
        Teacher weights: shapes (width, d), (width,), (C, width), (C,).
    tau : float
        Decay length of an exponential spectrum (NaN for a power law).
    power : float
        Exponent c of a power-law spectrum λ_k ∝ (k + 1)^(−c) (NaN for an exponential one).
    """

    eigenvalues: np.ndarray
    rotation: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    tau: float
    power: float = float("nan")

    @property
    def dim(self) -> int:
        return int(self.eigenvalues.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.w2.shape[0])

    @property
    def covariance(self) -> np.ndarray:
        """Σ = Q diag(λ) Qᵀ, shape (d, d)."""
        return (self.rotation * self.eigenvalues) @ self.rotation.T

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` inputs from N(0, Σ), shape (n, d), float64."""
        z = rng.standard_normal((int(n), self.dim))
        return (z * np.sqrt(self.eigenvalues)) @ self.rotation.T

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Teacher logits, shape (n, C), for inputs of shape (n, d) (or (n, 1, 1, d))."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.dim)
        h = np.maximum(x @ self.w1.T + self.b1, 0.0)
        return h @ self.w2.T + self.b2

    def labels(self, x: np.ndarray) -> np.ndarray:
        """Teacher labels (argmax of the logits), shape (n,), int64."""
        return np.argmax(self.logits(x), axis=1).astype(np.int64)


def _haar_rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def make_gaussian_teacher(
    dim: int = 200,
    n_classes: int = 5,
    seed: int = 0,
    tau: float = 20.0,
    width: int = 100,
    power: float | None = None,
) -> GaussianTeacher:
    """The seeded input distribution and teacher MLP (see the module docstring).

    ``power`` = c >= 0 gives the spectrum λ_k ∝ (k + 1)^(−c) instead of exp(−k/τ).
    """
    d, c = check_int("dim", dim, 1), check_int("n_classes", n_classes, 2)
    w = check_int("width", width, 1)
    if not float(tau) > 0.0:
        raise ValueError(f"tau must be > 0, got {tau!r}")
    if power is not None and not 0.0 <= float(power) < np.inf:
        raise ValueError(f"power must be a number >= 0, got {power!r}")
    rng = np.random.default_rng([int(seed), _STREAM_TASK])
    k = np.arange(d, dtype=np.float64)
    lam = np.exp(-k / float(tau)) if power is None else (k + 1.0) ** (-float(power))
    lam *= d / lam.sum()
    rotation = _haar_rotation(d, rng)
    w1 = rng.standard_normal((w, d)) / np.sqrt(d)
    b1 = rng.standard_normal(w) / np.sqrt(d)
    w2 = rng.standard_normal((c, w)) / np.sqrt(w)
    tau_used = float(tau) if power is None else float("nan")
    power_used = float("nan") if power is None else float(power)
    teacher = GaussianTeacher(lam, rotation, w1, b1, w2, np.zeros(c), tau_used, power_used)
    # Calibrate the output bias so the classes are about equally frequent.
    x_cal = teacher.sample(_N_CALIBRATION, np.random.default_rng([int(seed), _STREAM_CALIBRATION]))
    logits = teacher.logits(x_cal)
    b2 = -logits.mean(axis=0)
    scale = float(logits.std()) or 1.0
    for _ in range(200):
        freq = np.bincount(np.argmax(logits + b2, axis=1), minlength=c) / _N_CALIBRATION
        if np.abs(freq - 1.0 / c).max() < 0.01:
            break
        b2 -= 0.5 * scale * (freq - 1.0 / c)
    for a in (lam, rotation, w1, b1, w2, b2):
        a.setflags(write=False)
    return GaussianTeacher(lam, rotation, w1, b1, w2, b2, tau_used, power_used)


def sample_gaussian_teacher(
    teacher: GaussianTeacher, n_train: int, n_test: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and test inputs ``(N, 1, 1, d)`` float32 and labels int64."""
    out = []
    for stream, n in ((_STREAM_TRAIN, n_train), (_STREAM_TEST, n_test)):
        x = teacher.sample(n, np.random.default_rng([int(seed), stream]))
        # Labels from the float32 inputs the models see, so they are a function of them.
        x32 = x.astype(np.float32)
        out += [x32.reshape(-1, 1, 1, teacher.dim), teacher.labels(x32)]
    return tuple(out)  # type: ignore[return-value]
