"""The recorder's layer measurements ``"capacity"``, ``"infoplane"`` and ``"collapse"``.

A run whose config says ``measurements = ["capacity", "infoplane", "collapse"]`` (any of
them) records at every checkpoint, per probed layer (:func:`representation_layers`: every
``nn.Linear`` and ``nn.Conv2d`` after its activation, or the modules a config's
``measurement_options`` name), on a class-balanced sample of one probe set
(``samples_per_class`` of each class, the same samples at every checkpoint, eval mode):

``capacity_alpha``, ``capacity_radius``, ``capacity_dimension``, ``capacity_center_correlation`` : (K, L)
    Mean-field manifold capacity α_M, radius R_M and dimension D_M of the class manifolds,
    and the correlation of their centres (:func:`manifold_capacity`).
``infoplane_ixt_binning``, ``infoplane_ity_binning``, ``infoplane_ixt_kde``, ``infoplane_ity_kde`` : (K, L)
    I(X;T) and I(T;Y) in bits, by binning and by the pairwise-distance bound
    (:func:`information_plane`; X is the sample, uniform over the ones drawn).
``collapse_nc1``, ``collapse_nc2_equinorm``, ``collapse_nc2_equiangle``, ``collapse_nc3``, ``collapse_nc4``, ``collapse_effective_rank`` : (K, L)
    Neural collapse (:func:`neural_collapse`; NC4 against the network's own decisions,
    NC3 for the layer the final linear classifier reads, NaN elsewhere) and the effective
    rank (:func:`effective_rank`).

A quantity that cannot be computed at a layer (constant or non-finite activations, a
class with too few samples) is stored as NaN and the reason is kept in the run's info
(``measurement_info[<name>]["nan"]``, with the layer names under ``"layers"``); the other
layers and the predictions are recorded as usual.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from deepmanifold.probes._layers import class_balanced_sample, layer_representations, representation_layers
from deepmanifold.training.measurements import Probe
from deepmanifold.utils import check_int

__all__ = ["CapacityMeasurement", "CollapseMeasurement", "InformationPlaneMeasurement"]


class _LayerMeasurement:
    """What the three layer measurements share: the sample, the layers, the NaN bookkeeping."""

    name = ""
    needs_grad = False
    keys: tuple[str, ...] = ()

    def __init__(self, probe: str = "train", samples_per_class: int = 50, layers: Sequence[str] | None = None,
                 batch_size: int = 256, every: int = 1):
        if not isinstance(probe, str):
            raise ValueError(f"probe must be a probe set's name, got {probe!r}")
        if layers is not None:
            if isinstance(layers, str):
                layers = [layers]
            if not isinstance(layers, (list, tuple)) or not layers or not all(isinstance(n, str) for n in layers):
                raise ValueError(f"layers must be a non-empty list of module names, got {layers!r}")
            layers = list(layers)
        self.probe = probe
        self.samples_per_class = check_int(samples_per_class, "samples_per_class")
        self.layers = layers
        self.batch_size = check_int(batch_size, "batch_size")
        #: Evaluated at every ``every``-th checkpoint and the last (NaN between; the recorder's Notes).
        self.every = check_int(every, "every")
        #: JSON facts the recorder stores with the run: layer names, why values are NaN.
        self.info: dict = {"layers": None, "samples_per_class": self.samples_per_class, "nan": {}}

    def check(self, model: nn.Module) -> None:
        """Raise ``ValueError`` if the layers to probe are not in ``model`` (the sweep's preflight)."""
        representation_layers(model, self.layers)

    def _sample(self, model: nn.Module, probes: Mapping[str, Probe], extra_hooks: Callable | None = None):
        if not probes:
            raise ValueError(f"the {self.name} measurement needs a probe set")
        chosen = probes.get(self.probe) or next(iter(probes.values()))
        idx = class_balanced_sample(chosen.labels, self.samples_per_class)
        modules = representation_layers(model, self.layers)
        self._modules = modules
        reps, outputs = layer_representations(model, chosen.inputs[torch.as_tensor(idx, device=chosen.inputs.device)],
                                              modules, batch_size=self.batch_size)
        if self.info["layers"] is None:
            self.info["layers"] = list(reps)
            self.info["probe"] = chosen.name
            self.info["n_samples"] = int(len(idx))
        return reps, chosen.labels[idx].astype(np.int64), outputs

    def _nan(self, layer: str, key: str, why: str) -> None:
        self.info["nan"].setdefault(f"{layer}: {key}", why)

    def _per_layer(self, reps: Mapping[str, np.ndarray], compute: Callable[[str, np.ndarray], Mapping[str, float]]
                   ) -> dict[str, np.ndarray]:
        out = {key: np.full(len(reps), np.nan, dtype=np.float32) for key in self.keys}
        for i, (layer, X) in enumerate(reps.items()):
            if not np.isfinite(X).all():
                for key in self.keys:
                    self._nan(layer, key, f"{int((~np.isfinite(X)).sum())} non-finite activations")
                continue
            for key, value in compute(layer, X).items():
                out[key][i] = value
        return out

    def _guard(self, layer: str, keys: Sequence[str], fn: Callable[[], Mapping[str, float]]) -> Mapping[str, float]:
        """``fn()``, or NaN for ``keys`` with the ValueError's message kept as the reason."""
        try:
            return fn()
        except ValueError as exc:
            for key in keys:
                self._nan(layer, key, str(exc))
            return {key: math.nan for key in keys}


class CapacityMeasurement(_LayerMeasurement):
    """Mean-field manifold capacity of the class manifolds at every probed layer.

    Parameters
    ----------
    probe : str, default "train"
        Probe set whose samples are used (the first probe set when it has no such one).
    samples_per_class : int, default 50
        Points per class manifold (``M``; Cohen et al. 2020 used 50).
    layers : list of str, optional
        Modules whose outputs are probed (default: :func:`representation_layers`).
    n_t : int, default 200
        Gaussian samples per manifold of the mean-field estimate.
    kappa : float, default 0
        Margin.
    batch_size : int, default 256
    every : int, default 1
        Evaluate at the first checkpoint, every ``every``-th after it and the last; the
        rows between are NaN.
    center_restarts : int, default 10
        Random starts of the centre-subspace search (:func:`manifold_capacity`); most of
        the cost: fewer make it cheaper, at the price of the search's own variability.

    Notes
    -----
    Cost per evaluation, one core, 50 samples per class, 5 layers (benchmarks/README.md,
    "Layer measurements"): 0.19-0.34 s for the digits and Fashion-MNIST MLPs and the digits
    All-CNN, 0.52 s for the Fashion-MNIST All-CNN (12,544 units in its first layer); most
    of it is the centre-subspace search, the anchor points cost ~11 µs per Gaussian sample.

    The Gaussian samples are drawn from the same seed at every checkpoint, so that the
    curves over training carry no sampling noise from one checkpoint to the next.
    """

    name = "capacity"
    keys = ("alpha", "radius", "dimension", "center_correlation")

    def __init__(self, probe: str = "train", samples_per_class: int = 50, layers: Sequence[str] | None = None,
                 n_t: int = 200, kappa: float = 0.0, batch_size: int = 256, every: int = 1,
                 center_restarts: int = 10):
        super().__init__(probe, samples_per_class, layers, batch_size, every)
        self.n_t = check_int(n_t, "n_t")
        self.center_restarts = check_int(center_restarts, "center_restarts")
        if isinstance(kappa, bool) or not isinstance(kappa, numbers.Real) or not 0 <= kappa < math.inf:
            raise ValueError(f"kappa must be a number >= 0, got {kappa!r}")
        self.kappa = float(kappa)

    def measure(self, model: nn.Module, probes: Mapping[str, Probe]) -> dict[str, np.ndarray]:
        from deepmanifold.probes._capacity import manifold_capacity

        reps, labels, _ = self._sample(model, probes)
        classes = np.unique(labels)

        def compute(layer, X):
            def run():
                r = manifold_capacity([X[labels == c] for c in classes], kappa=self.kappa, n_t=self.n_t,
                                      random_state=0, center_restarts=self.center_restarts)
                return {"alpha": r.capacity, "radius": r.radius, "dimension": r.dimension,
                        "center_correlation": r.center_correlation}
            return self._guard(layer, self.keys, run)

        return self._per_layer(reps, compute)


class InformationPlaneMeasurement(_LayerMeasurement):
    """I(X;T) and I(T;Y) at every probed layer, by binning and by the pairwise-distance bound.

    Parameters
    ----------
    probe, samples_per_class, layers, batch_size, every
        As :class:`CapacityMeasurement`.
    n_bins : int, default 30
        Bins per unit: over the activation function's range for tanh and sigmoid layers,
        over the layer's observed range at that checkpoint otherwise.
    noise_variance : float, optional
        σ² of the pairwise-distance bound (default: :func:`information_plane`'s).

    Notes
    -----
    Cost per evaluation, one core, 50 samples per class, 5 layers (benchmarks/README.md,
    "Layer measurements"): 0.007-0.03 s for the digits and Fashion-MNIST MLPs, 0.08 s for
    the digits All-CNN, 0.67 s for the Fashion-MNIST All-CNN (the pairwise kernel of its
    wide layers); it grows as the samples squared times the layers' widths.
    """

    name = "infoplane"
    keys = ("ixt_binning", "ity_binning", "ixt_kde", "ity_kde")

    def __init__(self, probe: str = "train", samples_per_class: int = 50, layers: Sequence[str] | None = None,
                 n_bins: int = 30, noise_variance: float | None = None, batch_size: int = 256, every: int = 1):
        super().__init__(probe, samples_per_class, layers, batch_size, every)
        self.n_bins = check_int(n_bins, "n_bins", low=2)
        if noise_variance is not None and (isinstance(noise_variance, bool)
                                           or not isinstance(noise_variance, numbers.Real)
                                           or not 0 < noise_variance < math.inf):
            raise ValueError(f"noise_variance must be a positive number, got {noise_variance!r}")
        self.noise_variance = None if noise_variance is None else float(noise_variance)

    def measure(self, model: nn.Module, probes: Mapping[str, Probe]) -> dict[str, np.ndarray]:
        from deepmanifold.probes._information import information_plane

        reps, labels, _ = self._sample(model, probes)
        kde_options = {} if self.noise_variance is None else {"noise_variance": self.noise_variance}

        def compute(layer, X):
            bounds = _BOUNDED.get(type(self._modules[layer]))
            binned = self._guard(layer, ("ixt_binning", "ity_binning"), lambda: _mi(
                information_plane(X, labels, method="binning", n_bins=self.n_bins, bin_range=bounds), "binning"))
            kde = self._guard(layer, ("ixt_kde", "ity_kde"), lambda: _mi(
                information_plane(X, labels, method="kde", **kde_options), "kde"))
            return {**binned, **kde}

        return self._per_layer(reps, compute)


#: Activations whose range is bounded: their layers are binned over it (as Shwartz-Ziv &
#: Tishby binned tanh units over (-1, 1)), the others over the range observed.
_BOUNDED = {nn.Tanh: (-1.0, 1.0), nn.Sigmoid: (0.0, 1.0)}


def _mi(result, method: str) -> dict[str, float]:
    return {f"ixt_{method}": float(np.ravel(result.i_xt)[0]), f"ity_{method}": float(np.ravel(result.i_ty)[0])}


class CollapseMeasurement(_LayerMeasurement):
    """Neural collapse NC1 to NC4 and the effective rank at every probed layer.

    Parameters
    ----------
    probe, samples_per_class, layers, batch_size, every
        As :class:`CapacityMeasurement`.

    Notes
    -----
    NC4 compares the nearest-class-centre rule at each layer with the network's own
    decisions on the same samples. NC3 needs the classifier that reads the layer: the
    model's last ``nn.Linear``, for the layer whose representation is exactly that
    classifier's input; it is NaN at the other layers.

    Cost per evaluation, one core, 50 samples per class, 5 layers (benchmarks/README.md,
    "Layer measurements"): 0.003-0.03 s for the digits and Fashion-MNIST MLPs, 0.09 s for
    the digits All-CNN, 0.49 s for the Fashion-MNIST All-CNN (the Gram of its wide layers).
    """

    name = "collapse"
    keys = ("nc1", "nc2_equinorm", "nc2_equiangle", "nc3", "nc4", "effective_rank")

    def measure(self, model: nn.Module, probes: Mapping[str, Probe]) -> dict[str, np.ndarray]:
        from deepmanifold.probes._collapse import effective_rank, neural_collapse

        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        head = linears[-1] if linears else None
        seen: list[torch.Tensor] = []
        handle = head.register_forward_pre_hook(
            lambda _m, args: seen.append(args[0].detach().reshape(args[0].shape[0], -1).float().cpu())
        ) if head is not None else None
        try:
            reps, labels, outputs = self._sample(model, probes)
        finally:
            if handle is not None:
                handle.remove()
        head_input = torch.cat(seen).numpy() if seen else None
        decisions = outputs.argmax(axis=1)

        def compute(layer, X):
            reads = (head is not None and head_input is not None and head_input.shape == X.shape
                     and np.array_equal(head_input, X))
            classifier = None
            if reads:
                W = head.weight.detach().double().cpu().numpy()
                b = None if head.bias is None else head.bias.detach().double().cpu().numpy()
                classifier = (W, b)
            nc_keys = self.keys[:5]

            def collapse():
                r = neural_collapse(X, labels, classifier, predictions=None if reads else decisions)
                for note in r.notes:
                    self._nan(layer, note.split(":")[0], note)
                if not reads:
                    self._nan(layer, "nc3", "no linear classifier reads this layer")
                return {key: getattr(r, key) for key in nc_keys}

            values = dict(self._guard(layer, nc_keys, collapse))
            values.update(self._guard(layer, ("effective_rank",), lambda: {"effective_rank": effective_rank(X)}))
            return values

        return self._per_layer(reps, compute)
