"""The training losses a run may minimise.

- ``"cross_entropy"`` (default): ``−log softmax(f(x))_y``, the study's loss.
- ``"squared"``: ``½ Σ_c (f_c(x) − [c = y])²``, half the squared distance of the outputs
  from the one-hot label, the loss of deep linear theory (Saxe et al. 2014) and of the
  kernel limit (:func:`deepmanifold.theory.linearized_trajectory`).

Both are averaged over the minibatch. What a run records does not depend on the loss:
the probes' predicted distributions are ``softmax(f(x))`` either way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LOSSES", "TrainingLoss", "per_sample_loss"]

#: Names of the training losses (config key ``loss``).
LOSSES: tuple[str, ...] = ("cross_entropy", "squared")


def per_sample_loss(name: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Loss ``name`` of each sample, shape (N,), from ``logits`` (N, C) and ``labels`` (N,)."""
    if name == "cross_entropy":
        return F.cross_entropy(logits, labels, reduction="none")
    if name == "squared":
        target = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
        return 0.5 * ((logits - target) ** 2).sum(dim=-1)
    raise ValueError(f"unknown loss {name!r}; supported: {', '.join(LOSSES)}")


class TrainingLoss(nn.Module):
    """The minibatch mean of :func:`per_sample_loss` ``name``."""

    def __init__(self, name: str = "cross_entropy") -> None:
        super().__init__()
        if name not in LOSSES:
            raise ValueError(f"unknown loss {name!r}; supported: {', '.join(LOSSES)}")
        self.name = name

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return per_sample_loss(self.name, logits, labels).mean()

    def extra_repr(self) -> str:
        return repr(self.name)
