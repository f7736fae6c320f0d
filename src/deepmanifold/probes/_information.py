r"""The information plane: I(X;T) and I(T;Y) of a layer's representation, in bits.

A layer maps the ``n`` samples ``x_i`` (the inputs, taken uniformly: ``X`` is the sample
index, so ``H(X) = log2 n``) to ``h_i = h(x_i)``; ``Y`` is the label. The information plane
(Shwartz-Ziv & Tishby 2017) places every layer ``T`` at ``(I(X;T), I(T;Y))``. A network is
deterministic, so for continuous ``T`` the quantity ``I(X;T)`` is infinite (or ``log2 n``
for distinct ``h_i``) unless something makes ``T`` coarse or noisy. The two estimators here
make that choice explicit:

- ``"binning"`` (Shwartz-Ziv & Tishby 2017): every unit is discretised into ``n_bins``
  equal bins; ``T`` is the binned pattern, so ``I(X;T) = H(T)`` and
  ``I(T;Y) = H(T) − Σ_y p(y) H(T | Y=y)``, plug-in entropies of the patterns' counts.
- ``"kde"`` (Kolchinsky & Tracey 2017, as used by Saxe et al. 2018): ``T = h(X) + N(0, σ²I)``
  and ``I(X;T)`` is bounded above by the pairwise-distance (KL) bound on the entropy of a
  Gaussian mixture; ``I(T;Y)`` is the difference of that bound for ``H(T)`` and for each
  class's ``H(T | Y=y)``.

:func:`information_plane` takes one layer ``(n, d)`` or several (a sequence, or a mapping
whose keys name the layers) and returns an :class:`InformationPlane`. :data:`METHODS` lists
the estimators. Both estimators read every layer in blocks of rows, so memory stays bounded
for ``n`` up to ~10⁴ and ``d`` up to ~10³.

References
----------
Shwartz-Ziv & Tishby, "Opening the black box of deep neural networks via information",
arXiv:1703.00810 (2017).
Kolchinsky & Tracey, "Estimating mixture entropy with pairwise distances", Entropy 19, 361
(2017).
Saxe, Bansal, Dapello, Advani, Kolchinsky, Tracey & Cox, "On the information bottleneck
theory of deep learning", ICLR 2018; J. Stat. Mech. 124020 (2019).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from deepmanifold.utils import check_int

__all__ = ["DEFAULT_NOISE_VARIANCE", "InformationPlane", "METHODS", "information_plane"]

#: The estimators of :func:`information_plane`.
METHODS = ("binning", "kde")

#: σ² of the KDE estimator's Gaussian noise: the value of Saxe et al.'s released code for
#: their MNIST and general experiments (``noise_variance = 1e-1`` in artemyk/ibsgd,
#: ComputeMI.ipynb). Their notebook for the 12-bit network (IBnet_ComputeMI.ipynb) uses 1e-3.
DEFAULT_NOISE_VARIANCE = 0.1

# Temporary float64 elements per block of the pairwise kernel (~32 MiB).
_BLOCK_ELEMENTS = 1 << 22
# Activations binned per block: bounds the float64 temporaries of a wide layer.
_BIN_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class InformationPlane:
    """Each layer's place on the information plane, in bits.

    Attributes
    ----------
    layers : tuple
        The layers' names: the mapping's keys when the activations were a mapping,
        ``0..L-1`` for a sequence, ``(0,)`` for a single array.
    i_xt : ndarray, shape (L,), float64
        ``I(X;T)`` per layer, bits; at most :attr:`h_x`.
    i_ty : ndarray, shape (L,), float64
        ``I(T;Y)`` per layer, bits. Under binning ``0 <= I(T;Y) <= min(I(X;T), H(Y))``
        exactly; under ``"kde"`` it is a difference of two upper bounds, so it is neither
        a bound nor guaranteed ``>= 0`` (it stays ``<= min(I(X;T), H(Y))``).
    h_x : float
        ``H(X) = log2 n``, bits: the largest possible ``I(X;T)``.
    h_y : float
        ``H(Y)`` of the labels' empirical distribution, bits: the largest ``I(T;Y)``.
    n_samples : int
        ``n``.
    method : str
        ``"binning"`` or ``"kde"``.
    n_bins : int or None
        Bins per unit (binning only).
    bin_ranges : ndarray, shape (L, 2), or None
        The ``(low, high)`` each layer was binned over (binning only).
    noise_variance : float or None
        σ² of the added Gaussian noise (KDE only).
    """

    layers: tuple
    i_xt: np.ndarray
    i_ty: np.ndarray
    h_x: float
    h_y: float
    n_samples: int
    method: str
    n_bins: int | None = None
    bin_ranges: np.ndarray | None = None
    noise_variance: float | None = None

    def __post_init__(self):
        for array in (self.i_xt, self.i_ty, self.bin_ranges):
            if array is not None:
                array.setflags(write=False)

    def layer(self, name) -> tuple[float, float]:
        """``(I(X;T), I(T;Y))`` in bits of the layer called ``name`` (a key of :attr:`layers`)."""
        try:
            k = self.layers.index(name)
        except ValueError:
            raise KeyError(f"no layer {name!r}; the layers are {list(self.layers)}") from None
        return float(self.i_xt[k]), float(self.i_ty[k])


def information_plane(
    activations,
    labels,
    method: str = "binning",
    *,
    n_bins: int = 30,
    bin_range=None,
    noise_variance: float = DEFAULT_NOISE_VARIANCE,
) -> InformationPlane:
    r"""``I(X;T)`` and ``I(T;Y)`` of one or several layers' representations, in bits.

    Parameters
    ----------
    activations : array_like of shape (n, d), or a sequence or mapping of them
        Each layer's representation of the same ``n`` samples (one row per sample; flatten
        convolutional maps first). A mapping's keys name the layers; a list or tuple is a
        list of layers (so pass a single layer as an array). Torch tensors are detached and
        copied to the CPU.
    labels : array_like, shape (n,)
        Integer, boolean or string labels; the classes are the distinct values.
    method : {"binning", "kde"}, default "binning"
        The estimator (module docstring, Notes).
    n_bins : int, default 30
        Equal bins per unit (binning). 30 is Shwartz-Ziv & Tishby's choice.
    bin_range : None, (low, high), a sequence of them (one per layer) or a mapping
        The interval every unit of a layer is binned over (binning); values outside it fall
        in the first or last bin. ``None`` (default): each layer's observed range, from its
        smallest to its largest activation. Shwartz-Ziv & Tishby binned tanh units over the
        activation function's range ``(-1, 1)``; Saxe et al. (2018) binned ReLU units over
        the range observed, which for a trajectory should be one fixed range for all epochs
        (pass it here), so that the bins do not move with the epoch.
    noise_variance : float, default :data:`DEFAULT_NOISE_VARIANCE` (0.1)
        σ² of the Gaussian noise added to ``T`` (kde). ``I(X;T)`` decreases from ``log2 n``
        (σ² → 0, distinct points) to 0 (σ² → ∞).

    Returns
    -------
    InformationPlane
        Per-layer arrays of shape ``(L,)`` (``L = 1`` for a single array), in bits.

    Raises
    ------
    ValueError
        An unknown method; no layers; a layer that is not 2-D, has no units, or has another
        number of rows than ``labels`` or the other layers; non-finite activations (named
        by layer, sample and unit: a diverged network should not be recorded as a number);
        fewer than 2 samples; labels that are not 1-D integers, booleans or strings;
        ``n_bins < 1``; a ``bin_range`` that is not finite with ``low < high`` or does not
        match the layers; ``noise_variance`` not finite and ``> 0``.

    Notes
    -----
    **Binning.** Unit values ``a`` of a layer binned over ``[low, high]`` get the bin
    ``min(⌊n_bins (a − low) / (high − low)⌋, n_bins − 1)`` (clipped at 0); a layer with
    ``high = low`` (constant activations) falls in one bin, so ``I(X;T) = I(T;Y) = 0``.
    With ``c_t`` the number of samples whose binned pattern is ``t`` and ``c_{ty}`` the
    number of those with label ``y``,

    .. math::

        I(X;T) = H(T) = -\sum_t \frac{c_t}{n} \log_2 \frac{c_t}{n}, \qquad
        I(T;Y) = H(T) - \sum_y p(y) H(T \mid Y=y) = H(T) + H(Y) - H(T, Y),

    all plug-in entropies of counts. Patterns are compared exactly: the binned rows are
    packed as bytes and counted with :func:`numpy.unique`, ``O(n d + n log n)``.

    **KDE.** With ``K_ij = exp(−‖h_i − h_j‖² / (2σ²))``, the pairwise-distance bound of
    Kolchinsky & Tracey (2017, KL divergence between the mixture's components) gives

    .. math::

        I(X;T) \le -\frac{1}{n} \sum_i \log \frac{1}{n} \sum_j K_{ij},

    and ``I(T;Y) = Ĥ(T) − Σ_y p(y) Ĥ(T | Y=y)`` with the same bound ``Ĥ`` for each
    entropy (the Gaussian noise's entropy cancels), which reduces to

    .. math::

        I(T;Y) = \frac{1}{n} \sum_i \left[ \log \frac{\sum_{j: y_j = y_i} K_{ij}}
                 {\sum_j K_{ij}} + \log \frac{n}{n_{y_i}} \right].

    Each row's largest term is its own, ``K_ii = 1``, so the row sums are already the
    stabilised log-sum-exp: no term overflows and no sum underflows (each is ``>= 1``).
    The exponents ``−‖h_i − h_j‖² / (2σ²)`` are computed in float64 from
    ``‖h_i‖² + ‖h_j‖² − 2 h_i·h_j`` on centred rows, clipped at 0, with the diagonal set
    to exactly 0; the exponentials and their sums are taken in float32 (relative error
    ~1e-6, far below the bound's own slack, and several times faster). Rows are processed
    in blocks: memory ``O(n · block)``, time ``O(n² d)``, about 0.07 s for ``n = 4096``
    on one core.

    References
    ----------
    Shwartz-Ziv & Tishby, arXiv:1703.00810 (2017); Kolchinsky & Tracey, Entropy 19, 361
    (2017); Saxe et al., ICLR 2018 / J. Stat. Mech. 124020 (2019).

    Examples
    --------
    >>> import numpy as np
    >>> T = np.array([[0.0], [0.0], [1.0], [1.0]])
    >>> plane = information_plane(T, [0, 0, 1, 1], n_bins=2)
    >>> float(plane.i_xt[0]), float(plane.i_ty[0]), plane.h_x
    (1.0, 1.0, 2.0)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    names, layers = _check_layers(activations)
    n = layers[0].shape[0]
    y_index, class_counts = _check_labels(labels, n)
    h_y = _entropy_bits(class_counts, n)
    h_x = math.log2(n)
    L = len(layers)
    i_xt = np.empty(L)
    i_ty = np.empty(L)
    if method == "binning":
        n_bins = check_int(n_bins, "n_bins")
        ranges = _check_bin_ranges(bin_range, names, layers, activations)
        for k, H in enumerate(layers):
            i_xt[k], i_ty[k] = _binning(H, y_index, len(class_counts), h_y, n_bins, *ranges[k])
        return InformationPlane(tuple(names), i_xt, i_ty, h_x, h_y, n, method, n_bins=n_bins, bin_ranges=ranges)
    sigma2 = _check_noise_variance(noise_variance)
    order = np.argsort(y_index, kind="stable")  # classes as contiguous column ranges
    starts = np.concatenate([[0], np.cumsum(class_counts)[:-1]])
    for k, H in enumerate(layers):
        i_xt[k], i_ty[k] = _kde(H[order], y_index[order], class_counts, starts, sigma2)
    return InformationPlane(tuple(names), i_xt, i_ty, h_x, h_y, n, method, noise_variance=sigma2)


# --- estimators ----------------------------------------------------------------------------


def _entropy_bits(counts: np.ndarray, n: int) -> float:
    """Plug-in entropy in bits of the empirical distribution with ``counts`` (summing to n)."""
    counts = counts[counts > 0].astype(np.float64)
    return max(0.0, math.log2(n) - float(counts @ np.log2(counts)) / n)


def _bin_codes(H: np.ndarray, low: float, high: float, n_bins: int) -> np.ndarray:
    """Bin indices of ``H`` (any shape) in ``[0, n_bins)``, as the smallest unsigned dtype."""
    dtype = np.uint8 if n_bins <= 1 << 8 else np.uint16 if n_bins <= 1 << 16 else np.uint32
    if high <= low:
        return np.zeros(H.shape, dtype)
    codes = np.floor((H - low) * (n_bins / (high - low)))
    np.clip(codes, 0, n_bins - 1, out=codes)
    return codes.astype(dtype)


def _pattern_ids(H: np.ndarray, low: float, high: float, n_bins: int) -> np.ndarray:
    """Per row of ``H``, an integer that is equal for two rows iff their binned patterns are."""
    n, d = H.shape
    rows = max(1, _BIN_ELEMENTS // d)
    codes = np.concatenate([_bin_codes(H[s:s + rows], low, high, n_bins) for s in range(0, n, rows)])
    # Each binned row as one opaque byte string: np.unique then compares whole rows exactly.
    packed = np.ascontiguousarray(codes).view(np.dtype((np.void, codes.dtype.itemsize * d))).ravel()
    return np.unique(packed, return_inverse=True)[1].ravel()


def _binning(H, y_index, n_classes, h_y, n_bins, low, high) -> tuple[float, float]:
    """``(I(X;T), I(T;Y))`` in bits of one layer under binning."""
    n = H.shape[0]
    t = _pattern_ids(H, low, high, n_bins)
    h_t = _entropy_bits(np.bincount(t), n)
    joint = t.astype(np.int64) * n_classes + y_index
    h_ty = _entropy_bits(np.unique(joint, return_counts=True)[1], n)
    # H(T) + H(Y) - H(T,Y) >= 0 exactly; clip rounding so that it also stays <= H(T), H(Y).
    i_ty = min(max(h_t + h_y - h_ty, 0.0), h_t, h_y)
    return h_t, i_ty


def _kde(H, y_index, class_counts, starts, sigma2) -> tuple[float, float]:
    """``(I(X;T), I(T;Y))`` in bits of one layer by the pairwise-distance bound.

    ``H`` and ``y_index`` are sorted by class, so class ``c`` is the columns
    ``starts[c]:starts[c] + class_counts[c]``.
    """
    n = H.shape[0]
    H = H - H.mean(axis=0)  # centring shrinks the cancellation in |a|^2 + |b|^2 - 2 a.b
    # The exponent -|h_i - h_j|^2 / (2 sigma^2) = a_i + a_j + h_i . (h_j / sigma^2).
    a = np.einsum("ij,ij->i", H, H) * (-0.5 / sigma2)
    H_scaled = H / sigma2
    rows = min(n, max(1, _BLOCK_ELEMENTS // n))
    # Buffers reused by every block: fresh ~32 MiB temporaries cost as much as the arithmetic.
    A_buffer = np.empty((rows, n))
    K_buffer = np.empty((rows, n), dtype=np.float32)
    log_all = 0.0  # sum_i log sum_j K_ij
    log_same = 0.0  # sum_i log sum_{j in class of i} K_ij
    for s in range(0, n, rows):
        m = min(n, s + rows) - s
        A, K = A_buffer[:m], K_buffer[:m]
        np.matmul(H[s:s + m], H_scaled.T, out=A)
        A += a[s:s + m, None]
        A += a[None, :]
        np.minimum(A, 0.0, out=A)
        A[np.arange(m), np.arange(s, s + m)] = 0.0
        # exp and sums in float32: each term to ~1e-7 relative and each sum of n terms
        # (pairwise summation) to ~1e-6, several times faster than float64 here.
        np.copyto(K, A, casting="same_kind")
        np.exp(K, out=K)
        log_all += float(np.log(K.sum(axis=1), dtype=np.float64).sum())
        per_class = np.add.reduceat(K, starts, axis=1)
        log_same += float(np.log(per_class[np.arange(m), y_index[s:s + m]], dtype=np.float64).sum())
    i_xt = max(math.log(n) - log_all / n, 0.0)
    h_y = float(class_counts @ np.log(n / class_counts)) / n  # nats
    # I(T;Y) <= min(I(X;T), H(Y)) holds exactly; the float32 sums may overshoot by ~1e-7.
    i_ty = min((log_same - log_all) / n + h_y, i_xt, h_y)
    return i_xt / math.log(2), i_ty / math.log(2)


# --- input checks --------------------------------------------------------------------------


def _as_array(layer) -> np.ndarray:
    if hasattr(layer, "detach") and hasattr(layer, "cpu"):  # a torch tensor
        layer = layer.detach().cpu().numpy()
    return np.asarray(layer)


def _check_layers(activations) -> tuple[list, list[np.ndarray]]:
    """The layers' names and their activations as float64 ``(n, d)`` arrays."""
    if isinstance(activations, Mapping):
        names = list(activations.keys())
        raw = [activations[k] for k in names]
    elif isinstance(activations, Sequence) and not isinstance(activations, (str, bytes)):
        names = list(range(len(activations)))
        raw = list(activations)
    else:
        names, raw = [0], [activations]
    if not raw:
        raise ValueError("activations: no layers given")
    layers = []
    for name, layer in zip(names, raw):
        H = _as_array(layer)
        where = f"activations[{name!r}]" if len(raw) > 1 or names != [0] else "activations"
        if H.ndim != 2:
            raise ValueError(f"{where}: expected shape (n, d), got shape {H.shape} "
                             "(flatten a layer's units to one axis; reshape(-1, 1) for one unit)")
        if H.dtype.kind not in "biuf":
            raise ValueError(f"{where}: expected real numbers, got dtype {H.dtype}")
        if H.shape[1] < 1:
            raise ValueError(f"{where}: the layer has no units (shape {H.shape})")
        if layers and H.shape[0] != layers[0].shape[0]:
            raise ValueError(f"{where} has {H.shape[0]} rows but activations[{names[0]!r}] has "
                             f"{layers[0].shape[0]}: every layer must hold the same samples")
        H = H.astype(np.float64, copy=False)
        bad = ~np.isfinite(H)
        if bad.any():
            i, j = (int(v) for v in np.unravel_index(int(np.argmax(bad)), bad.shape))
            raise ValueError(f"{where}: sample {i}, unit {j} is {H[i, j]} "
                             f"({int(bad.sum())} non-finite values in the layer)")
        layers.append(H)
    if layers[0].shape[0] < 2:
        raise ValueError(f"activations: need at least 2 samples, got {layers[0].shape[0]}")
    return names, layers


def _check_labels(labels, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels as class indices ``0..C-1`` and the classes' counts."""
    y = _as_array(labels)
    if y.ndim != 1:
        raise ValueError(f"labels: expected shape (n,), got shape {y.shape}")
    if y.dtype.kind not in "biuUS":
        raise ValueError(f"labels: expected integer, boolean or string labels, got dtype {y.dtype}")
    if y.shape[0] != n:
        raise ValueError(f"labels has length {y.shape[0]} but the activations have {n} samples")
    _, index, counts = np.unique(y, return_inverse=True, return_counts=True)
    return index.ravel().astype(np.int64), counts


def _check_pair(value, where: str) -> tuple[float, float]:
    try:
        pair = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        pair = None
    if pair is None or pair.shape != (2,):
        raise ValueError(f"{where}: expected a pair (low, high), got {value!r}")
    low, high = float(pair[0]), float(pair[1])
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{where}: expected finite low < high, got ({low}, {high})")
    return low, high


def _check_bin_ranges(bin_range, names, layers, activations) -> np.ndarray:
    """``(L, 2)`` array of each layer's ``(low, high)``."""
    L = len(layers)
    if bin_range is None:
        return np.array([(float(H.min()), float(H.max())) for H in layers])
    if isinstance(bin_range, Mapping):
        if not isinstance(activations, Mapping):
            raise ValueError("bin_range: a mapping needs the activations as a mapping with the same keys")
        missing = [k for k in names if k not in bin_range]
        if missing:
            raise ValueError(f"bin_range: no range for the layers {missing}")
        return np.array([_check_pair(bin_range[k], f"bin_range[{k!r}]") for k in names])
    shape = np.shape(bin_range)
    if shape == (2,) and all(isinstance(v, numbers.Real) for v in bin_range):
        return np.array([_check_pair(bin_range, "bin_range")] * L)
    if len(shape) == 2 and shape[0] == L:
        return np.array([_check_pair(pair, f"bin_range[{k}]") for k, pair in enumerate(bin_range)])
    raise ValueError(f"bin_range: expected None, (low, high) or one pair per layer ({L} layers), "
                     f"got shape {shape}")


def _check_noise_variance(noise_variance) -> float:
    if isinstance(noise_variance, (bool, np.bool_)) or not isinstance(noise_variance, numbers.Real):
        raise ValueError(f"noise_variance must be a positive number, got {noise_variance!r}")
    sigma2 = float(noise_variance)
    if not (math.isfinite(sigma2) and sigma2 > 0):
        raise ValueError(f"noise_variance must be finite and > 0, got {noise_variance!r}")
    return sigma2
