r"""Recursive Feature Machines (RFM) as scikit-learn estimators.

- :class:`RFMRegressor` -- kernel ridge regression with a learned Mahalanobis kernel;
  single- and multi-output targets.
- :class:`RFMClassifier` -- the same on one-hot targets; ``decision_function``,
  calibrated ``predict_proba`` / ``predict_log_proba``.
- :class:`RFMIteration` -- one entry of ``history_``: the scores of the predictor
  fitted with one Mahalanobis matrix.

The algorithm (Radhakrishnan et al., Science 2024): start from ``M_0 = I`` and repeat

.. math::

    \alpha_t = (K_{M_t}(X, X) + \mathrm{reg}\, I)^{-1} Y, \qquad
    f_t(x) = \sum_j \alpha_{t,j} K_{M_t}(x, x_j),

    G_t = \frac{1}{s} \sum_{i=1}^{s} \nabla f_t(x_i)^\top \nabla f_t(x_i), \qquad
    M_{t+1} = G_t^{p} / \lambda_{\max}(G_t^{p}),

for ``t = 0, ..., n_iter - 1``, then fit ``alpha`` once more with ``M_{n_iter}``:
``n_iter`` AGOP updates and ``n_iter + 1`` kernel solves (``n_iter=0`` is plain
kernel ridge regression). Kernels, gradients and the AGOP live in
:mod:`deepmanifold.features._kernels`, the solves in
:mod:`deepmanifold.features._solvers`.

References
----------
.. [1] A. Radhakrishnan, D. Beaglehole, P. Pandit, M. Belkin, "Mechanism for feature
       learning in neural networks and backpropagation-free machine learning models",
       Science 383 (6690), 1461-1467, 2024. doi:10.1126/science.adi5639
.. [2] N. Mallinar, D. Beaglehole, L. Zhu, A. Radhakrishnan, P. Pandit, M. Belkin,
       "Emergence in non-neural models: grokking modular arithmetic via average
       gradient outer product", arXiv:2407.20199, 2024.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.special
import torch
from sklearn.base import (BaseEstimator, ClassifierMixin, ClassNamePrefixFeaturesOutMixin, RegressorMixin,
                          TransformerMixin)
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..utils import check_int
from ._kernels import KERNELS, agop, feature_map, get_kernel, kernel_predict, to_features
from ._solvers import SOLVERS, KernelRidgeError, solve_kernel_ridge

__all__ = ["KernelRidgeError", "RFMClassifier", "RFMIteration", "RFMRegressor"]

# Bounds of the inverse temperature fitted for predict_proba (scores are O(1)).
_LOG_BETA_BOUNDS = (np.log(1e-4), np.log(1e4))


@dataclass(frozen=True)
class RFMIteration:
    """Scores of the kernel predictor fitted with the ``iteration``-th Mahalanobis matrix.

    Attributes
    ----------
    iteration : int
        ``t``: the number of AGOP updates behind ``M_t`` (0: ``M = I``, or the
        previous fit's last matrix with ``warm_start``).
    train_score : float
        Accuracy (classifier) or R^2 (regressor) on the rows the kernel ridge was
        fitted on (all rows, or the training part of the validation split).
    validation_score : float or None
        The same on the held-out rows; None without ``validation_fraction``.
    solver_iterations : int
        Conjugate-gradient iterations of the solve (0 for Cholesky).
    """

    iteration: int
    train_score: float
    validation_score: float | None
    solver_iterations: int


@dataclass
class _Path:
    """What :meth:`_BaseRFM._iterate` leaves: scores, the chosen and the last matrix."""

    history: list
    best_t: int
    best_M: torch.Tensor
    last_M: torch.Tensor
    last_solution: object  # KernelRidgeSolution of the last solve, on the rows iterated on


class _BaseRFM(BaseEstimator):
    """The RFM iteration shared by :class:`RFMRegressor` and :class:`RFMClassifier`.

    Subclasses provide ``_targets(y) -> Y (n, c)``, ``_score(Y, F) -> float``,
    ``_stratify(y)``, ``_needs_loo`` and ``_finish_fit(solution, Y)``.
    """

    _needs_loo = False

    def __init__(self, kernel="laplace", bandwidth=10.0, reg=1e-3, n_iter=5, power=1.0, diag=False,
                 centering=False, agop_samples=20000, validation_fraction=None, solver="auto",
                 device="cpu", warm_start=False, random_state=None):
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.reg = reg
        self.n_iter = n_iter
        self.power = power
        self.diag = diag
        self.centering = centering
        self.agop_samples = agop_samples
        self.validation_fraction = validation_fraction
        self.solver = solver
        self.device = device
        self.warm_start = warm_start
        self.random_state = random_state

    # ---------------------------------------------------------------- validation
    def _check_params(self):
        """Validate the constructor parameters; return the kernel entry and the torch device."""
        kernel = get_kernel(self.kernel)
        _check_real(self.bandwidth, "bandwidth", low=0.0, low_open=True)
        _check_real(self.reg, "reg", low=0.0)
        check_int(self.n_iter, "n_iter", low=0)
        _check_real(self.power, "power", low=0.0, low_open=True)
        check_int(self.agop_samples, "agop_samples", low=1)
        for name in ("diag", "centering", "warm_start"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.validation_fraction is not None:
            _check_real(self.validation_fraction, "validation_fraction", low=0.0, low_open=True,
                        high=1.0, high_open=True)
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        return kernel, _torch_device(self.device)

    def _validate_X(self, X, y=None, *, reset):
        """Float64 ``X`` (and ``y``) via scikit-learn, with errors that name the bad column."""
        _check_numeric_columns(X, type(self).__name__)
        kwargs = dict(reset=reset, dtype=np.float64, ensure_all_finite=False)
        try:
            if y is None and not reset:
                X = validate_data(self, X, **kwargs)
            else:
                X, y = validate_data(self, X, y, ensure_min_samples=2, **self._y_kwargs, **kwargs)
        except ValueError as exc:
            if "could not convert" in str(exc):
                _raise_non_numeric(X, type(self).__name__, exc)
            raise
        _check_finite_columns(X, getattr(self, "feature_names_in_", None))
        return X if y is None and not reset else (X, y)

    # ------------------------------------------------------------------- fitting
    def fit(self, X, y):
        """Run the RFM iteration on ``X (n, d)``, ``y`` and fit the final kernel predictor.

        Parameters
        ----------
        X : array-like or DataFrame, shape (n_samples, n_features)
            Numeric features; a DataFrame sets ``feature_names_in_``.
        y : array-like, shape (n_samples,) or (n_samples, n_outputs)
            Targets (labels of any type for the classifier).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Invalid parameters; NaN, infinite or non-numeric features (the message
            names the column); fewer than 2 samples; mismatched lengths; one class.
        KernelRidgeError
            ``K + reg I`` cannot be factorised: raise ``reg``.
        """
        kernel, device = self._check_params()
        X, y = self._validate_X(X, y, reset=True)
        Y = self._targets(y)
        rng = check_random_state(self.random_state)
        n, d = X.shape
        Xt = torch.tensor(X, dtype=torch.float64, device=device)
        Yt = torch.tensor(Y, dtype=torch.float64, device=device)
        M0 = self._initial_metric(d, device)
        if self.validation_fraction is None:
            path = self._iterate(kernel, Xt, Yt, None, None, M0, rng, loo=self._needs_loo)
            final = path.last_solution
        else:
            tr, va = train_test_split(np.arange(n), test_size=self.validation_fraction, random_state=rng,
                                      stratify=self._stratify(y))
            tr, va = (torch.as_tensor(np.sort(i), device=device) for i in (tr, va))
            path = self._iterate(kernel, Xt[tr], Yt[tr], Xt[va], Yt[va], M0, rng, loo=False)
            S = feature_map(path.best_M)
            final = solve_kernel_ridge(kernel, to_features(Xt, S), Yt, float(self.reg), float(self.bandwidth),
                                       solver=self.solver, rng=rng, loo=self._needs_loo)
        M = path.best_M
        diag_M = M if M.ndim == 1 else torch.diagonal(M)
        total = float(diag_M.sum())
        S = feature_map(M)
        self.M_ = M.cpu().numpy()
        self.feature_importances_ = (diag_M / total).cpu().numpy() if total > 0 else np.zeros(d)
        self.n_iter_ = path.best_t
        self.history_ = path.history
        self.dual_coef_ = final.alpha.cpu().numpy()
        self._feature_map = S.cpu().numpy()
        self._centers = to_features(Xt, S).cpu().numpy()
        self._M_last = path.last_M.cpu().numpy()
        self._finish_fit(final, Y)
        return self

    def _initial_metric(self, d, device):
        """``I`` (its diagonal when ``diag``), or the previous fit's last ``M`` with ``warm_start``."""
        if self.warm_start and hasattr(self, "_M_last"):
            M = self._M_last
            if M.shape[0] != d or (M.ndim == 1) != bool(self.diag):
                raise ValueError(f"warm_start=True needs the same number of features and the same `diag` as "
                                 f"the previous fit (previous M of shape {M.shape}, now {d} features, "
                                 f"diag={self.diag})")
            return torch.tensor(M, dtype=torch.float64, device=device)
        if self.diag:
            return torch.ones(d, dtype=torch.float64, device=device)
        return torch.eye(d, dtype=torch.float64, device=device)

    def _iterate(self, kernel, X, Y, X_val, Y_val, M, rng, *, loo):
        """``n_iter`` AGOP updates and ``n_iter + 1`` solves on ``X``; score each on ``X_val``.

        Keeps the matrix with the best validation score (the earliest on ties), or
        the last one without validation rows. ``loo`` asks the last solve for
        leave-one-out predictions.
        """
        reg, L = float(self.reg), float(self.bandwidth)
        history, best_t, best_score, best_M = [], 0, -np.inf, M
        n = X.shape[0]
        for t in range(self.n_iter + 1):
            S = feature_map(M)
            Xf = to_features(X, S)
            solution = solve_kernel_ridge(kernel, Xf, Y, reg, L, solver=self.solver, rng=rng,
                                          loo=loo and t == self.n_iter)
            val_score = None
            if X_val is not None:
                val_score = self._score(Y_val, kernel_predict(kernel, to_features(X_val, S), Xf, solution.alpha, L))
                if val_score > best_score:
                    best_t, best_score, best_M = t, val_score, M
            history.append(RFMIteration(t, self._score(Y, solution.fitted), val_score, solution.n_iter))
            if t == self.n_iter:
                break
            rows = X
            if n > self.agop_samples:
                rows = X[torch.as_tensor(np.sort(rng.choice(n, self.agop_samples, replace=False)), device=X.device)]
            G = agop(kernel, rows, X, solution.alpha, M, L, centering=bool(self.centering))
            M = _normalised_power(G, float(self.power), reg)
        if X_val is None:
            best_t, best_M = self.n_iter, M
        return _Path(history, best_t, best_M, M, solution)

    # ---------------------------------------------------------------- prediction
    def _scores(self, X):
        """Kernel predictor outputs ``(n, c)`` at the rows of ``X``."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        device = _torch_device(self.device)
        S = torch.as_tensor(self._feature_map, device=device)
        Xf = to_features(torch.tensor(X, dtype=torch.float64, device=device), S)
        F = kernel_predict(KERNELS[self.kernel], Xf, torch.as_tensor(self._centers, device=device),
                           torch.as_tensor(self.dual_coef_, device=device), float(self.bandwidth))
        return F.cpu().numpy()

    def transform(self, X):
        """The learned feature space: ``X M_^{1/2}``, shape ``(n_samples, n_features)``.

        Parameters
        ----------
        X : array-like or DataFrame, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples, n_features)
            Rows mapped by the symmetric square root of ``M_``; Euclidean distances
            there are the ``M_``-distances of the inputs.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        S = self._feature_map
        return X * S if S.ndim == 1 else X @ S

    @property
    def _n_features_out(self):
        return self.n_features_in_

    def _poor_score(self):
        # The quadratic kernel spans only homogeneous quadratics (no constant or linear
        # part), so it cannot reach the training scores scikit-learn's checks expect on
        # their linear and blob data sets; the poor_score tag says so.
        return self.kernel == "quadratic"


class RFMRegressor(ClassNamePrefixFeaturesOutMixin, TransformerMixin, RegressorMixin, _BaseRFM):
    r"""Recursive Feature Machine regressor: kernel ridge regression that learns its metric.

    Iterates kernel ridge regression with the Mahalanobis kernel ``K_M`` and
    ``M <- AGOP(f)^power`` normalised to top eigenvalue 1 (see
    :mod:`deepmanifold.features.rfm`).

    Parameters
    ----------
    kernel : {"laplace", "gaussian", "quadratic"}, default="laplace"
        ``exp(-||x - z||_M / L)``, ``exp(-||x - z||_M^2 / (2 L^2))`` or ``(x^T M z)^2``,
        with ``||u||_M = sqrt(u^T M u)``.
    bandwidth : float, default=10.0
        ``L`` (> 0); unused by the quadratic kernel.
    reg : float, default=1e-3
        Ridge added to the kernel matrix's diagonal (>= 0; > 0 for ``solver="cg"``).
    n_iter : int, default=5
        AGOP updates; the predictor is refit after the last one, so there are
        ``n_iter + 1`` kernel solves. 0 gives plain kernel ridge regression.
    power : float, default=1.0
        ``M = AGOP^power`` (> 0; 1 in [1], 0.5 in the grokking study [2]).
    diag : bool, default=False
        Keep only the AGOP's diagonal: ``M`` is diagonal, ``M_`` has shape
        ``(n_features,)``, and only ``O(d)`` of each AGOP is accumulated.
    centering : bool, default=False
        Subtract the mean gradient before the outer products (the gradients'
        covariance instead of their second moment, as in [2]).
    agop_samples : int, default=20000
        The AGOP averages over a fresh random subset of this many training rows
        when there are more (all rows otherwise); the predictor keeps all rows.
    validation_fraction : float in (0, 1) or None, default=None
        None: keep the last ``M``. A fraction: iterate on the rest, keep the ``M``
        with the best held-out score (earliest on ties), refit on all rows with it.
    solver : {"auto", "cholesky", "cg"}, default="auto"
        Direct Cholesky, or preconditioned conjugate gradients with the kernel in
        row blocks (bounded memory); ``"auto"``: Cholesky up to 20,000 rows.
    device : str or torch.device, default="cpu"
        Where kernel blocks, solves and AGOPs run (``"cuda"`` when available).
    warm_start : bool, default=False
        Start from the last ``M`` of the previous fit instead of the identity,
        e.g. to follow the iteration one ``fit(n_iter=1)`` at a time.
    random_state : int, RandomState or None, default=None
        Validation split, AGOP subsets, Nystrom landmarks of the CG solver.

    Attributes
    ----------
    M_ : ndarray, shape (n_features, n_features), or (n_features,) when ``diag``
        The Mahalanobis matrix of the final predictor; symmetric PSD with top
        eigenvalue 1 (or 0 when the AGOP vanished, e.g. for constant inputs).
    feature_importances_ : ndarray, shape (n_features,)
        ``diag(M_)`` divided by its sum (zeros when ``M_`` is 0).
    n_iter_ : int
        AGOP updates behind ``M_`` (``n_iter``, or the validation-chosen one).
    history_ : list of RFMIteration
        Train (and validation) score of each of the ``n_iter + 1`` predictors.
    dual_coef_ : ndarray, shape (n_samples, n_outputs)
        ``alpha`` of the final predictor ``f(x) = sum_j alpha_j K_M(x, x_j)``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.

    Notes
    -----
    *Normalisation.* ``M`` is divided by its largest eigenvalue, so
    ``||u||_M <= ||u||`` with equality along the top direction: the bandwidth
    chosen for the inputs keeps its meaning along the learned directions. With
    the quadratic kernel the scale of ``M`` is the scale of the kernel, so ``reg``
    is relative to a kernel of ``M``-norm 1.

    *Constant columns* are accepted: the translation-invariant kernels (laplace,
    gaussian) have zero gradient along them, so they get zero weight in ``M_`` and
    zero importance; nothing is divided by their (zero) spread.

    *No intercept*: targets are fitted as given, as in [1].

    *Cost* per iteration for ``n`` rows, ``d`` features, ``c`` outputs: kernel
    ``n^2 d``, Cholesky ``n^3 / 3`` (or ``n^2 d`` per CG iteration), AGOP
    ``s n c d + s c d^2`` for ``s = min(n, agop_samples)`` (``c (n d^2 + d^3)`` for
    the quadratic kernel), an ``eigh`` of ``d x d``.

    References
    ----------
    See :mod:`deepmanifold.features.rfm`.

    Examples
    --------
    >>> import numpy as np
    >>> from deepmanifold.features.rfm import RFMRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((300, 8))
    >>> y = X[:, 0] * X[:, 1]
    >>> rfm = RFMRegressor(bandwidth=5.0, n_iter=3).fit(X, y)
    >>> bool(rfm.feature_importances_[:2].sum() > 0.5)
    True
    """

    _y_kwargs = {"multi_output": True, "y_numeric": True}

    def _targets(self, y):
        self._y_1d = y.ndim == 1
        return y.reshape(len(y), -1)

    def _score(self, Y, F):
        return float(r2_score(Y.cpu().numpy(), F.cpu().numpy()))

    def _stratify(self, y):
        return None

    def _finish_fit(self, solution, Y):
        pass

    def predict(self, X):
        """The kernel predictor ``f(x) = sum_j alpha_j K_M(x, x_j)`` at the rows of ``X``.

        Parameters
        ----------
        X : array-like or DataFrame, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples,), or (n_samples, n_outputs) when ``y`` was 2-D

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        ValueError
            Another number of features (or other names) than in :meth:`fit`; NaN,
            infinite or non-numeric features (the message names the column).
        """
        F = self._scores(X)
        return F[:, 0] if self._y_1d else F

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.regressor_tags.poor_score = self._poor_score()
        return tags


class RFMClassifier(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClassifierMixin, _BaseRFM):
    r"""Recursive Feature Machine classifier: RFM regression on one-hot labels.

    Parameters are those of :class:`RFMRegressor`; the validation split is
    stratified and scored by accuracy.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        Labels, sorted; any hashable, comparable type.
    temperature_ : float
        ``T`` of :meth:`predict_proba`.
    M_, feature_importances_, n_iter_, history_, n_features_in_, feature_names_in_
        As in :class:`RFMRegressor`.
    dual_coef_ : ndarray, shape (n_samples, n_classes)

    Notes
    -----
    *Scores.* Kernel ridge regression on one-hot targets gives ``n_classes``
    scores per sample; ``predict`` is the label of the largest.

    *Probabilities* are ``softmax(scores / T)``. The temperature is fitted by
    maximum likelihood (a convex problem in ``1/T``, bounded to
    ``[1e-4, 1e4]``) on the *leave-one-out* scores of the final fit,
    ``Y - alpha / diag((K + reg I)^{-1})``, because training scores are nearly
    interpolated and would make ``T -> 0``. They are exact for the Cholesky solve
    and use the Nystrom preconditioner's diagonal for CG. ``M`` was learned with
    each left-out sample, so they are mildly optimistic. The softmax keeps the
    argmax, so ``predict_proba`` agrees with ``predict``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from deepmanifold.features.rfm import RFMClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = RFMClassifier(n_iter=2, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """

    _y_kwargs = {"multi_output": False, "y_numeric": False}
    _needs_loo = True

    def _targets(self, y):
        check_classification_targets(y)
        classes, y_enc = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; "
                             f"y has only 1 class ({classes[0]!r})")
        if self.warm_start and hasattr(self, "classes_") and not np.array_equal(classes, self.classes_):
            raise ValueError("warm_start=True needs the classes of the previous fit")
        self.classes_ = classes
        return np.eye(len(classes))[y_enc]

    def _score(self, Y, F):
        return float((Y.argmax(dim=1) == F.argmax(dim=1)).double().mean())

    def _stratify(self, y):
        return y

    def _finish_fit(self, solution, Y):
        self.temperature_ = _fit_temperature(solution.loo.cpu().numpy(), Y.argmax(axis=1))

    def decision_function(self, X):
        """Kernel regression scores of the one-hot targets.

        Parameters
        ----------
        X : array-like or DataFrame, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples, n_classes), or (n_samples,) for two classes:
            there the score of ``classes_[1]`` minus that of ``classes_[0]``
            (positive means ``classes_[1]``), as scikit-learn's binary classifiers.
        """
        F = self._scores(X)
        return F[:, 1] - F[:, 0] if len(self.classes_) == 2 else F

    def predict(self, X):
        """The label with the largest score.

        Parameters
        ----------
        X : array-like or DataFrame, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples,)
            Elements of ``classes_``.
        """
        F = self._scores(X)
        return self.classes_[F.argmax(axis=1)]

    def predict_log_proba(self, X):
        """Log-probabilities ``log softmax(scores / temperature_)``, computed without overflow.

        Parameters
        ----------
        X : array-like or DataFrame, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return scipy.special.log_softmax(self._scores(X) / self.temperature_, axis=1)

    def predict_proba(self, X):
        """Probabilities ``softmax(scores / temperature_)``; see Notes of the class.

        Parameters
        ----------
        X : array-like or DataFrame, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples, n_classes)
            Rows sum to 1; columns in the order of ``classes_``.
        """
        return scipy.special.softmax(self._scores(X) / self.temperature_, axis=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = self._poor_score()
        return tags


# ---------------------------------------------------------------------- helpers
def _normalised_power(G, power, reg):
    """``G^power / lambda_max(G^power)`` (PSD, negative eigenvalues clipped); 0 if ``G`` is 0.

    ``G`` is ``(d, d)``, or a diagonal ``(d,)``.
    """
    if not bool(torch.isfinite(G).all()):
        raise KernelRidgeError(f"the AGOP is not finite at reg={reg:g}: the kernel predictor is "
                               f"numerically unstable; raise `reg`")
    if G.ndim == 1:
        w = G.clamp(min=0.0) ** power
        top = float(w.max())
        return w / top if top > 0 else torch.zeros_like(w)
    w, V = torch.linalg.eigh((G + G.T) / 2)
    w = w.clamp(min=0.0) ** power
    top = float(w.max())
    if top <= 0:
        return torch.zeros_like(G)
    M = (V * (w / top)) @ V.T
    return (M + M.T) / 2


def _fit_temperature(scores, y_enc):
    """``T`` maximising the mean log-likelihood of ``softmax(scores / T)`` for labels ``y_enc``."""
    picked = scores[np.arange(len(y_enc)), y_enc]

    def nll(log_beta):
        beta = np.exp(log_beta)
        return float(np.mean(scipy.special.logsumexp(beta * scores, axis=1) - beta * picked))

    res = scipy.optimize.minimize_scalar(nll, bounds=_LOG_BETA_BOUNDS, method="bounded",
                                         options={"xatol": 1e-6})
    return float(np.exp(-res.x))


def _torch_device(device):
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but torch sees no CUDA device; use device='cpu'")
    return dev


def _check_real(value, name, *, low=None, high=None, low_open=False, high_open=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")


def _column_label(j, names):
    return f"column {j}" + (f" ({names[j]!r})" if names is not None else "")


def _check_numeric_columns(X, owner):
    """A DataFrame's non-numeric column is named before scikit-learn tries to convert it."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(X, "columns"):
        return
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    for j, (name, dt) in enumerate(dtypes.items()):
        if not (is_numeric_dtype(dt) or is_bool_dtype(dt)):
            raise ValueError(f"{owner} needs numeric features; column {j} ({name!r}) has dtype {dt}")


def _raise_non_numeric(X, owner, exc):
    """Re-raise scikit-learn's conversion error with the first column that does not convert."""
    A = np.asarray(X, dtype=object)
    if A.ndim == 2:
        for j in range(A.shape[1]):
            try:
                A[:, j].astype(np.float64)
            except (ValueError, TypeError):
                raise ValueError(f"{owner} needs numeric features; column {j} does not convert to "
                                 f"float ({exc})") from exc
    raise exc


def _check_finite_columns(X, names):
    """ValueError naming the first column with NaN or infinity (message says which)."""
    finite = np.isfinite(X)
    if finite.all():
        return
    j = int(np.flatnonzero(~finite.all(axis=0))[0])
    kind = "NaN" if np.isnan(X[:, j]).any() else "infinity"
    raise ValueError(f"Input X contains {kind} in {_column_label(j, names)}; RFM needs finite features")
