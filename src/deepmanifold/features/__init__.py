"""Feature learning: what a network uses of its input, and kernel machines that learn features.

Average gradient outer product (AGOP) and the Neural Feature Ansatz (Radhakrishnan et al.,
Science 383, 2024; docs/method.md §9):

- :func:`agop` -- the AGOP of a network with respect to its input or to one layer's input
  (patch AGOP for convolutions), exact or sketched; :func:`layer_agops` -- every layer's at once.
- :func:`weight_gram` -- ``WᵀW`` of a linear or convolutional layer; :func:`matrix_power_psd`;
  :func:`resolve_layers` -- a model's weight layers by name.
- :func:`nfa` -- per layer, the correlation of ``WᵀW`` with ``AGOP^α``, BatchNorm gains folded
  into ``W`` (:func:`following_batchnorms`; :class:`NFAResult`, :class:`LayerNFA`).
- :class:`NFAMeasurement` -- the recorder's measurement ``"nfa"``: NFA correlations per layer
  and the input AGOP's diagonal and leading eigenvectors at every checkpoint.

Recursive Feature Machines, scikit-learn estimators:

- :class:`RFMRegressor`, :class:`RFMClassifier` -- kernel ridge regression with a Mahalanobis
  kernel whose matrix is the AGOP of the previous fit.
- :func:`record_rfm_run` -- an RFM's iterations written into a store as a run, so the
  report draws its path beside the networks'.

Names are imported on first use, so ``import deepmanifold.features`` stays light.
"""

from __future__ import annotations

from deepmanifold.utils import lazy_exports

_WHERE = {
    "agop": "_agop", "layer_agops": "_agop", "weight_gram": "_agop", "matrix_power_psd": "_agop",
    "resolve_layers": "_agop",
    "nfa": "_nfa", "NFAResult": "_nfa", "LayerNFA": "_nfa", "following_batchnorms": "_nfa",
    "NFAMeasurement": "measurement",
    "RFMRegressor": "rfm", "RFMClassifier": "rfm",
    "record_rfm_run": "rfm_runs",
}

__all__ = sorted(_WHERE)

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
