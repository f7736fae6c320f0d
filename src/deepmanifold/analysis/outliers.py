"""Runs that did not fit their training data, reported apart from the others.

The reference study (Mao et al., PNAS 2024; docs/method.md §6) sets apart the runs whose
final training error exceeds 10 %: a network that never fitted its training set did not
take the path the claims are about, and one such run can dominate a distance or an
average. :func:`train_error_outliers` applies the same filter to a store.

The training error here is that of the run's last checkpoint on the **train probe
set** (the fixed training samples every checkpoint is evaluated on, docs/method.md §7.2):
``1 - train_acc`` from the run's metrics, the catalog's ``final_train_acc``. A run
without a train probe has no such number; it is kept (nothing says it failed) and named
under :attr:`OutlierFilter.unmeasured`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

from deepmanifold.utils import jsonable

__all__ = ["TRAIN_ERROR_LIMIT", "Outlier", "OutlierFilter", "train_error_outliers"]

#: Final training error above which a run is reported apart (the reference study's 10 %).
TRAIN_ERROR_LIMIT = 0.10
#: The catalog column holding the final train-probe accuracy.
COLUMN = "final_train_acc"


@dataclass(frozen=True)
class Outlier:
    """A run whose final training error exceeds the limit.

    Attributes
    ----------
    run_id : str
    label : str
        Display name (``config["label"]``, else the run id).
    train_error : float
        ``1 - final train accuracy``.
    """

    run_id: str
    label: str
    train_error: float


@dataclass(frozen=True)
class OutlierFilter:
    """Which runs are kept and which are reported apart (:func:`train_error_outliers`).

    Attributes
    ----------
    threshold : float
        A run is an outlier when its final training error exceeds this.
    kept : list of str
        Run ids kept, in the order examined (the ``unmeasured`` ones included).
    outliers : list of Outlier
        Runs reported apart, in the order examined.
    unmeasured : list of str
        Kept runs without a final train accuracy (no train probe set).
    column : str
        Where the train accuracy was read (the catalog column).
    """

    threshold: float
    kept: list
    outliers: list
    unmeasured: list = field(default_factory=list)
    column: str = COLUMN

    @property
    def outlier_ids(self) -> list[str]:
        """Run ids of the outliers."""
        return [o.run_id for o in self.outliers]

    def to_dict(self) -> dict:
        """The JSON form (as in ``findings.json``)."""
        return jsonable({"threshold": self.threshold, "column": self.column, "n_kept": len(self.kept),
                         "kept": self.kept, "unmeasured": self.unmeasured,
                         "outliers": [{"run_id": o.run_id, "label": o.label, "train_error": o.train_error}
                                      for o in self.outliers]})


def _catalog(source):
    """The catalog frame of a store, or ``source`` itself when it is one."""
    if hasattr(source, "catalog"):
        return source.catalog(on_error="skip")
    if hasattr(source, "columns") and "run_id" in getattr(source, "columns", ()):
        return source
    raise ValueError("source must be a Store or its catalog (a DataFrame with a 'run_id' column), "
                     f"got {type(source).__name__}")


def _accuracy(value) -> float:
    """A catalog cell as a float (NaN when missing)."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def train_error_outliers(source, runs=None, *, threshold: float = TRAIN_ERROR_LIMIT) -> OutlierFilter:
    """Split runs into those kept and those whose final training error exceeds ``threshold``.

    Parameters
    ----------
    source : deepmanifold.store.Store or pandas.DataFrame
        A store (its catalog is read; damaged runs are not in it) or a catalog frame
        (:meth:`~deepmanifold.store.Store.catalog`).
    runs : iterable of str or RunRecord, optional
        Runs to examine, in this order (e.g. the usable runs of an analysis); default
        every run of the catalog.
    threshold : float, default :data:`TRAIN_ERROR_LIMIT` (0.10)
        In ``[0, 1]``; a run is an outlier when ``1 - final_train_acc > threshold``.

    Returns
    -------
    OutlierFilter

    Raises
    ------
    ValueError
        A bad ``threshold`` or ``source``, or a run of ``runs`` not in the catalog.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"run_id": ["a", "b", "c"], "label": ["a", "b", "c"],
    ...                       "final_train_acc": [0.99, 0.85, None]})
    >>> res = train_error_outliers(frame)
    >>> res.kept, [(o.run_id, round(o.train_error, 2)) for o in res.outliers], res.unmeasured
    (['a', 'c'], [('b', 0.15)], ['c'])
    """
    if not (isinstance(threshold, numbers.Real) and 0.0 <= threshold <= 1.0):
        raise ValueError(f"threshold must be a training error in [0, 1], got {threshold!r}")
    frame = _catalog(source)
    rows = {str(r["run_id"]): r for r in frame.to_dict("records")}
    wanted = list(rows) if runs is None else [str(getattr(r, "run_id", r)) for r in runs]
    missing = [r for r in wanted if r not in rows]
    if missing:
        raise ValueError(f"runs not in the catalog: {', '.join(missing)}")
    kept, outliers, unmeasured = [], [], []
    for run_id in wanted:
        row = rows[run_id]
        acc = _accuracy(row.get(COLUMN))
        if math.isnan(acc):
            kept.append(run_id)
            unmeasured.append(run_id)
        elif 1.0 - acc > threshold:
            label = row.get("label")
            outliers.append(Outlier(run_id=run_id, label=label if isinstance(label, str) and label else run_id,
                                    train_error=1.0 - acc))
        else:
            kept.append(run_id)
    return OutlierFilter(threshold=float(threshold), kept=kept, outliers=outliers, unmeasured=unmeasured)
