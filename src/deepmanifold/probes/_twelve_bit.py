r"""The 12-bit task of Shwartz-Ziv & Tishby (2017), reconstructed.

Shwartz-Ziv & Tishby trained their 12-10-7-5-4-3-2 networks on all ``2¹² = 4096`` binary
patterns of 12 inputs that sit at 12 uniformly spread points of the sphere (the vertices
of an icosahedron), labelled by thresholding a spherically symmetric function of the
pattern -- a rule invariant to rotations of the sphere -- with the threshold set so that
``p(y=1) ≈ 0.5``. Their file (``var_u.mat``, in github.com/ravidziv/IDNNs) holds the
patterns and labels but no description of the function, so :func:`twelve_bit_task` builds
an equivalent with the same properties, not the same labels:

- the vertices :func:`icosahedron_vertices` (order below) carry the bits ``x_i ∈ {0, 1}``,
  read as charges ``s_i = 2 x_i − 1 = ±1``;
- ``f(x)`` is the electrostatic energy of those charges,

  .. math::

      f(x) = \sum_{i<j} \frac{s_i s_j}{\lVert v_i - v_j \rVert},

  a function of the pairwise distances only, so invariant to every rotation (and
  reflection) of the icosahedron, and to flipping all bits (``s → −s``);
- ``y = 1`` iff ``f(x) > θ``, with ``θ`` the boundary between two consecutive values of
  ``f`` that brings ``p(y=1)`` closest to 1/2. Patterns with equal ``f`` always get the same
  label (a tie never straddles ``θ``), which keeps the rule invariant; the result is
  2064 of 4096 patterns with ``y = 1`` (``p = 0.504``).

``f`` takes 38 distinct values: the icosahedron has three pair distances (30 edges, 30
second neighbours, 6 antipodal pairs) and ``f`` is computed from the three integer sums of
``s_i s_j`` over them in a fixed order, so equal sums give bit-identical energies. The rule
is not linearly separable (a pattern and its complement share a label: a logistic
regression is at chance), while the 12-10-7-5-4-3-2 tanh network trained as in the
original (examples/information_plane_12bit.py) fits its 85 % training split exactly and
classifies 98 to 99.7 % of the held-out patterns.
"""

from __future__ import annotations

import numpy as np

__all__ = ["icosahedron_vertices", "twelve_bit_task"]

_GOLDEN = (1.0 + 5.0 ** 0.5) / 2.0


def icosahedron_vertices() -> np.ndarray:
    """The 12 unit vectors of a regular icosahedron, in the order of the task's bits.

    Returns
    -------
    ndarray, shape (12, 3), float64
        Rows ``(0, a, bφ), (a, bφ, 0), (bφ, 0, a)`` for ``(a, b)`` in ``(−1, −1), (−1, 1),
        (1, −1), (1, 1)`` (φ the golden ratio), normalised to unit length.
    """
    rows = []
    for a in (-1.0, 1.0):
        for b in (-1.0, 1.0):
            rows += [(0.0, a, b * _GOLDEN), (a, b * _GOLDEN, 0.0), (b * _GOLDEN, 0.0, a)]
    V = np.array(rows)
    return V / np.linalg.norm(V, axis=1, keepdims=True)


def _energies(X: np.ndarray) -> np.ndarray:
    """``f(x)`` of every row of ``X`` (0/1 patterns over the 12 vertices)."""
    V = icosahedron_vertices()
    i, j = np.triu_indices(12, k=1)
    distance = np.linalg.norm(V[i] - V[j], axis=1)
    shells = np.unique(np.round(distance, 9))  # edge, second neighbour, antipodal
    shell = np.searchsorted(shells, np.round(distance, 9))
    S = 2 * X.astype(np.int64) - 1
    products = S[:, i] * S[:, j]  # (n, 66) of ±1
    sums = np.stack([products[:, shell == k].sum(axis=1) for k in range(len(shells))], axis=1)
    return sums @ (1.0 / shells)


def twelve_bit_task(random_state=None) -> tuple[np.ndarray, np.ndarray]:
    """All 4096 patterns of 12 bits on the icosahedron's vertices and their labels.

    Parameters
    ----------
    random_state : None, int or numpy.random.Generator, default None
        ``None``: the patterns in binary order (row ``r`` is ``r`` written in 12 bits,
        most significant bit first). Otherwise the rows are shuffled with
        ``numpy.random.default_rng(random_state)``, so that any prefix is a random
        subset (e.g. the first 85 % as the training set, as in the original study).

    Returns
    -------
    X : ndarray, shape (4096, 12), float32
        Patterns in ``{0, 1}`` (as in the original data); bit ``i`` sits at vertex ``i`` of
        :func:`icosahedron_vertices`.
    y : ndarray, shape (4096,), int64
        Labels in ``{0, 1}``, 2064 ones: the rule in the module docstring.

    Examples
    --------
    >>> X, y = twelve_bit_task()
    >>> X.shape, int(y.sum())
    ((4096, 12), 2064)
    """
    codes = np.arange(1 << 12)
    X = ((codes[:, None] >> np.arange(11, -1, -1)) & 1).astype(np.float32)
    f = _energies(X)
    values = np.unique(f)
    # Cutting after values[k] labels 1 the patterns with f > values[k].
    above = len(f) - np.cumsum(np.bincount(np.searchsorted(values, f)))
    k = int(np.argmin(np.abs(above - len(f) / 2)))
    y = (f > values[k]).astype(np.int64)
    if random_state is not None:
        order = np.random.default_rng(random_state).permutation(len(y))
        X, y = X[order], y[order]
    return X, y
