"""The recorder's measurement ``"nfa"``: feature learning at every checkpoint.

A run whose config says ``measurements = ["nfa"]`` records, at each checkpoint, on up to
``max_samples`` inputs of one probe set (eval mode, as the predictions):

``nfa_pearson``, ``nfa_cosine`` : (K, L)
    Per weight layer (every ``nn.Linear`` and ``nn.Conv2d`` in ``named_modules`` order),
    the Pearson correlation and the cosine similarity between ``WᵀW`` and ``AGOP^α`` of the
    network with respect to that layer's input (:func:`~deepmanifold.features.nfa`). At
    step 0 they are the initial-model baseline of the Neural Feature Ansatz.
``nfa_agop_diag`` : (K, d)
    Diagonal of the AGOP with respect to the input ``x`` (flattened, ``d = C_in·H·W``),
    divided by its trace: which input coordinates (pixels) the network's outputs are
    sensitive to. For an MLP it is the first layer's AGOP.
``nfa_agop_eigenvectors`` : (K, k, d), ``nfa_agop_eigenvalues`` : (K, k)
    The input AGOP's ``k`` leading eigenvectors (each signed so that its entry of largest
    magnitude is positive, so that checkpoints can be compared) and eigenvalues divided by
    the trace.

References: Radhakrishnan, Beaglehole, Pandit & Belkin, Science 383 (2024),
doi 10.1126/science.adi5639; docs/method.md §9.
"""

from __future__ import annotations

import numbers
from typing import Mapping

import numpy as np
from torch import nn

from deepmanifold.features._agop import layer_agops
from deepmanifold.features._nfa import nfa
from deepmanifold.training.measurements import Probe
from deepmanifold.utils import check_int

__all__ = ["NFAMeasurement"]


class NFAMeasurement:
    """Neural Feature Ansatz correlations per layer and the input AGOP, per checkpoint.

    Parameters
    ----------
    probe : str, default "train"
        Probe set whose inputs are used; the first probe set when it has no such one.
    max_samples : int, default 256
        Inputs used (the first ones of the probe set, which is a fixed random draw).
    alpha : float, default 0.5
        Power of the AGOP compared with ``WᵀW``.
    n_eigenvectors : int, default 4
        Leading eigenvectors of the input AGOP kept.
    batch_size : int, default 256

    Notes
    -----
    Cost per checkpoint: ``C`` backward passes over ``max_samples`` inputs for every layer's
    AGOP and the input's at once, and an eigendecomposition of the
    ``(d, d)`` input AGOP (``d = 784`` on Fashion-MNIST: ~0.1 s).
    """

    name = "nfa"
    needs_grad = True

    def __init__(self, probe: str = "train", max_samples: int = 256, alpha: float = 0.5,
                 n_eigenvectors: int = 4, batch_size: int = 256):
        if not isinstance(probe, str):
            raise ValueError(f"probe must be a probe set's name, got {probe!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not alpha > 0:
            raise ValueError(f"alpha must be a positive number, got {alpha!r}")
        self.probe = probe
        self.max_samples = check_int(max_samples, "max_samples")
        self.alpha = float(alpha)
        self.n_eigenvectors = check_int(n_eigenvectors, "n_eigenvectors")
        self.batch_size = check_int(batch_size, "batch_size")

    def measure(self, model: nn.Module, probes: Mapping[str, Probe]) -> dict[str, np.ndarray]:
        if not probes:
            raise ValueError("the nfa measurement needs a probe set")
        chosen = probes.get(self.probe) or next(iter(probes.values()))
        X = chosen.inputs[: self.max_samples]
        agops = layer_agops(model, X, batch_size=self.batch_size, include_input=True)  # one set of passes
        result = nfa(model, X, alpha=self.alpha, agops=agops)
        G = agops[None]
        trace = float(np.trace(G))
        scale = trace if trace > 0 else 1.0
        values, vectors = np.linalg.eigh(G)
        k = min(self.n_eigenvectors, G.shape[0])
        top = vectors[:, ::-1][:, :k].T.copy()  # (k, d), leading first
        biggest = np.abs(top).argmax(axis=1)
        top *= np.sign(top[np.arange(k), biggest])[:, None]
        return {
            "pearson": np.asarray(result.pearson, dtype=np.float32),
            "cosine": np.asarray(result.cosine, dtype=np.float32),
            "agop_diag": (np.diag(G) / scale).astype(np.float32),
            "agop_eigenvectors": top.astype(np.float32),
            "agop_eigenvalues": (values[::-1][:k] / scale).astype(np.float32),
        }
