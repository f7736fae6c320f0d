"""A reference sweep's picture, kept to place new checkpoints in as they come.

:class:`ReferencePicture` embeds a store's checkpoints once (the InPCA picture of
:func:`deepmanifold.analysis.build_picture`) and keeps what Gower's out-of-sample
projection needs (docs/method.md §4.3): a new model's distances to the ``T`` embedded
checkpoints give its coordinates, without recomputing or moving the picture. A model
is placed only on the probe set the reference was recorded on, recognised by its
fingerprint (the same samples, in the same order).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from deepmanifold import geometry
from deepmanifold.store import Store

__all__ = ["Placement", "PreparedModels", "ReferencePicture"]


class PreparedModels:
    """Fixed models kept as their square-root probabilities, to measure new models against often.

    :func:`~deepmanifold.geometry.pairwise_distances` takes the square roots of both sides
    at every call, ``T·n·C`` exponentials for the fixed side: for one new model against
    ``T`` checkpoints that is nearly all the work. Here the fixed side is prepared once
    (float64, ``T·n·C·8`` bytes, laid out ``(n, T, C)`` so that each sample is one matrix
    product), and :meth:`distances` computes
    ``d(q, p_t) = max(-1/n Σ_i log max(Σ_c sqrt(q_ic p_tic), floor), 0)`` by the clamping rule
    of :mod:`deepmanifold.geometry.divergences`, as ``precision="exact"`` does.

    Parameters
    ----------
    logp : array_like, shape (T, n, C)
        Log-probabilities of the fixed models (validated).
    """

    def __init__(self, logp):
        from deepmanifold.geometry.divergences import sqrt_probabilities
        from deepmanifold.geometry.validation import check_probabilities

        lp = check_probabilities(logp, "logp", log=True, ndim=3)
        self.shape = lp.shape
        self._roots = np.ascontiguousarray(sqrt_probabilities(lp, log=True, dtype=np.float64).transpose(1, 0, 2))

    def _new_roots(self, logp) -> np.ndarray:
        """Validated square-root probabilities ``(K, n, C)`` of new models, float64."""
        from deepmanifold.geometry.divergences import sqrt_probabilities
        from deepmanifold.geometry.validation import check_probabilities

        lp = np.asarray(logp)
        if lp.ndim != 3 or lp.shape[1:] != self.shape[1:]:
            raise ValueError(f"log-probabilities of shape {lp.shape}; the fixed models need "
                             f"(K, {self.shape[1]}, {self.shape[2]})")
        return sqrt_probabilities(check_probabilities(lp, "logp", log=True, ndim=3), log=True, dtype=np.float64)

    @staticmethod
    def _mean_log(bc) -> np.ndarray:
        """Distances from coefficients ``(..., n)`` by the clamping rule, warning once if any was clamped."""
        from deepmanifold.geometry.divergences import FLOOR, mean_log_distance, warn_clamped

        d, clamped = mean_log_distance(np.ascontiguousarray(bc), FLOOR)
        warn_clamped(clamped, "(pair, sample) Bhattacharyya coefficients", FLOOR, stacklevel=4)
        return d

    def distances(self, logp) -> np.ndarray:
        """Intensive Bhattacharyya distances of ``K`` models ``(K, n, C)`` to the fixed ones, shape ``(K, T)``."""
        roots = self._new_roots(logp).transpose(1, 2, 0)  # (n, C, K)
        bc = np.matmul(self._roots, roots)  # (n, T, K): every coefficient of every sample
        return self._mean_log(bc.transpose(2, 1, 0))  # (K, T)

    def paired_distances(self, logp, index) -> np.ndarray:
        """Distances of model ``k`` of ``logp`` ``(K, n, C)`` to the fixed models ``index[k]`` only.

        ``index`` has shape ``(K, J)`` (integers in ``[0, T)``); the result has the same shape,
        entry ``[k, j]`` equal to ``distances(logp)[k, index[k, j]]`` to rounding. Costs
        ``K·J·n·C`` multiply-adds instead of ``K·T·n·C``: what a caller that needs a few fixed
        models per new one (the forecast's checkpoint at equal progress in each reference run)
        pays.
        """
        roots = self._new_roots(logp)  # (K, n, C)
        idx = np.asarray(index)
        if idx.ndim != 2 or idx.shape[0] != len(roots) or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"index must be an integer array of shape (K, J) = ({len(roots)}, J), "
                             f"got {idx.dtype} {idx.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.shape[0]):
            raise ValueError(f"index holds {int(idx.min())}..{int(idx.max())}; the fixed models are 0..{self.shape[0] - 1}")
        fixed = self._roots[:, idx, :]  # (n, K, J, C)
        return self._mean_log(np.einsum("nkjc,knc->kjn", fixed, roots))  # (K, J)


@dataclass(frozen=True)
class Placement:
    """Where one model sits in a reference picture.

    Attributes
    ----------
    coords : ndarray, shape (k,)
        InPCA coordinates (the reference's axes).
    progress : float
        Progress λ along the ignorance–truth geodesic (docs/method.md §3.3).
    accuracy : float
        Fraction of the probe samples whose most probable class is the label.
    nearest_run : str
        The reference run of the nearest embedded checkpoint (intensive Bhattacharyya
        distance), and ``nearest_index``, that checkpoint's index in the run's embedded
        checkpoints.
    nearest_index : int
    distance : float
        The distance to that checkpoint.
    """

    coords: np.ndarray
    progress: float
    accuracy: float
    nearest_run: str
    nearest_index: int
    distance: float


class ReferencePicture:
    """The picture of a reference store, to place new models in (module docstring).

    Parameters
    ----------
    store : Store or path-like
        The reference store; opened read-only (nothing is ever written to it).
    probe : str, default "test"
        The probe set whose predictions are compared.
    progress_method : {"angle", "bhattacharyya"}, default "angle"

    Attributes
    ----------
    picture : Picture
        The reference's picture (:func:`deepmanifold.analysis.build_picture`).
    fingerprint : str
        Fingerprint of the probe set the reference was recorded on.
    labels : ndarray, shape (n,)

    Raises
    ------
    ValueError, StoreError
        No store at that path, or no run of it can be embedded on ``probe``.
    """

    def __init__(self, store: Store | str | os.PathLike, probe: str = "test", *, progress_method: str = "angle"):
        from deepmanifold.analysis.embedding import embed_store

        self.store = store if isinstance(store, Store) else Store(store, read_only=True)
        self.probe = probe
        found = embed_store(self.store, probe, progress_method=progress_method)
        self.picture = found.picture
        self.fingerprint = found.fingerprint
        self.labels = found.labels
        self.progress_method = found.progress_method
        self._embedding = found.embedding
        # Read and prepare the embedded checkpoints once: placing a model compares it with all of them.
        self._prepared = PreparedModels(np.asarray(found.models[:], dtype=np.float32))
        self._owner = np.concatenate([np.full(len(r.steps), i) for i, r in enumerate(self.picture.runs)])
        self._index = np.concatenate([np.arange(len(r.steps)) for r in self.picture.runs])

    def __repr__(self) -> str:
        return (f"ReferencePicture({str(self.store.root)!r}, probe={self.probe!r}: {len(self.picture.runs)} runs, "
                f"{self._prepared.shape[0]} checkpoints)")

    @property
    def n_checkpoints(self) -> int:
        """Number ``T`` of embedded checkpoints."""
        return self._prepared.shape[0]

    @property
    def model_shape(self) -> tuple[int, int]:
        """``(n, C)``: samples of the probe set and classes, the shape of one model's log-probabilities."""
        return self._prepared.shape[1:]

    def check_fingerprint(self, fingerprint: str, *, what: str = "the run's probe set") -> None:
        """Raise ``ValueError`` unless ``fingerprint`` is the reference's probe set."""
        if fingerprint != self.fingerprint:
            raise ValueError(f"{what} (fingerprint {fingerprint[:12]}) is not the reference's {self.probe!r} probe "
                             f"set (fingerprint {self.fingerprint[:12]}, {len(self.labels)} samples) in "
                             f"{self.store.root}: a model is placed only on the samples the reference was "
                             "recorded on, in the same order")

    def matching_probe(self, fingerprints: Mapping[str, str]) -> str:
        """The name of the probe set among ``fingerprints`` (name -> fingerprint) that is the reference's.

        Raises
        ------
        ValueError
            None matches: the message names the reference's probe set and the given ones.
        """
        for name, fp in fingerprints.items():
            if fp == self.fingerprint:
                return name
        given = ", ".join(f"{name} ({fp[:12]})" for name, fp in fingerprints.items()) or "none"
        raise ValueError(f"no probe set of the run is the reference's {self.probe!r} probe set (fingerprint "
                         f"{self.fingerprint[:12]}, {len(self.labels)} samples) in {self.store.root}; the run's "
                         f"probe sets: {given}. Record the run on the reference's probes (same data, seed and "
                         "probe sizes) to place it")

    def check_models(self, logp) -> np.ndarray:
        """``logp`` as float32 ``(K, n, C)`` on the reference's probe set, or the error that names it."""
        lp = np.asarray(logp, dtype=np.float32)
        if lp.ndim != 3 or lp.shape[1:] != self.model_shape:
            raise ValueError(f"log-probabilities of shape {lp.shape}; the reference's probe set needs "
                             f"(K, {self.model_shape[0]}, {self.model_shape[1]})")
        return lp

    def distances(self, logp) -> np.ndarray:
        """Intensive Bhattacharyya distances of ``K`` models ``(K, n, C)`` to the embedded checkpoints, ``(K, T)``.

        Columns follow :attr:`picture`'s runs, each run's embedded checkpoints in order.
        """
        return self._prepared.distances(self.check_models(logp))

    def paired_distances(self, logp, index) -> np.ndarray:
        """Distances of model ``k`` of ``logp`` ``(K, n, C)`` to the embedded checkpoints ``index[k]``
        (shape ``(K, J)``, columns as in :meth:`distances`): :meth:`PreparedModels.paired_distances`."""
        return self._prepared.paired_distances(self.check_models(logp), index)

    def place(self, logp, distances=None) -> Placement:
        """Place one model given its log-probabilities ``(n, C)`` on the reference's probe set.

        ``distances`` (shape ``(T,)``): its :meth:`distances` row, when the caller has it.
        """
        lp = np.asarray(logp, dtype=np.float32)
        if lp.ndim != 2 or lp.shape != self._prepared.shape[1:]:
            raise ValueError(f"log-probabilities of shape {lp.shape}; the reference's probe set needs "
                             f"{self._prepared.shape[1:]} (samples, classes)")
        if not np.isfinite(lp).all():
            raise ValueError("log-probabilities must be finite to be placed")
        d = self.distances(lp[None])[0] if distances is None else np.asarray(distances, dtype=np.float64)
        if d.shape != (self.n_checkpoints,):
            raise ValueError(f"distances must have one value per embedded checkpoint ({self.n_checkpoints}), "
                             f"got shape {d.shape}")
        nearest = int(np.argmin(d))
        run = self.picture.runs[int(self._owner[nearest])]
        return Placement(
            coords=self._embedding.transform(d),
            progress=float(geometry.progress(lp, self.labels, log=True, method=self.progress_method)),
            accuracy=float(np.mean(lp.argmax(axis=1) == self.labels)),
            nearest_run=run.run_id,
            nearest_index=int(self._index[nearest]),
            distance=float(d[nearest]),
        )

    def place_run(self, logp) -> list[Placement]:
        """Place every checkpoint of a run, ``logp`` of shape ``(K, n, C)``."""
        return [self.place(lp) for lp in np.asarray(logp)]
