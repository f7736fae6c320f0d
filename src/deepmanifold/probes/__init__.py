"""Inside the layers while they learn: measurements of a network's representations.

Functions on arrays, usable without a network (any framework's activations):

- :func:`manifold_capacity` -- the mean-field capacity α_M, radius R_M, dimension D_M and
  centre correlation of class manifolds (Chung, Lee & Sompolinsky, Phys. Rev. X 2018;
  Cohen, Chung, Lee & Sompolinsky, Nat. Commun. 2020); :func:`simulated_capacity`, its
  check by linear programs on random dichotomies.
- :func:`information_plane` -- I(X;T) and I(T;Y) per layer, by binning (Shwartz-Ziv &
  Tishby 2017) or by the pairwise-distance upper bound (Kolchinsky & Tracey 2017; Saxe et
  al. 2018); :func:`twelve_bit_task`, the original study's data.
- :func:`neural_collapse` -- NC1 to NC4 (Papyan, Han & Donoho, PNAS 2020);
  :func:`effective_rank` (Roy & Vetterli 2007).

On a network: :func:`representation_layers` chooses the layers (every ``nn.Linear`` and
``nn.Conv2d``, taken after its activation), :func:`layer_representations` captures their
outputs, and the recorder's measurements ``"capacity"``, ``"infoplane"`` and ``"collapse"``
(:mod:`deepmanifold.probes.measurement`) record every quantity per layer at every
checkpoint. docs/method.md §10 has the formulas.

Names are imported on first use, so ``import deepmanifold.probes`` stays light.
"""

from __future__ import annotations

from deepmanifold.utils import lazy_exports

_WHERE = {
    "manifold_capacity": "_capacity", "simulated_capacity": "_capacity", "CapacityResult": "_capacity",
    "SimulatedCapacity": "_capacity",
    "information_plane": "_information", "InformationPlane": "_information",
    "twelve_bit_task": "_twelve_bit", "icosahedron_vertices": "_twelve_bit",
    "neural_collapse": "_collapse", "NeuralCollapse": "_collapse", "effective_rank": "_collapse",
    "representation_layers": "_layers", "layer_representations": "_layers", "class_balanced_sample": "_layers",
    "CapacityMeasurement": "measurement", "InformationPlaneMeasurement": "measurement",
    "CollapseMeasurement": "measurement",
}

__all__ = sorted(_WHERE)

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
