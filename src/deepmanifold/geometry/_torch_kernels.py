"""Torch tile kernel for Bhattacharyya distances (CUDA, or CPU for testing).

Same math as the numba kernel: per sample, ``BC_i`` of all pairs of a tile is a
batched matrix product of square roots; coefficients below ``floor`` are raised
to it (the clamping rule of :mod:`deepmanifold.geometry.divergences`), ``-log``
is accumulated in float64 and the distance clipped at 0. Tiles are moved to the
device, the result comes back to the host as a NumPy array.
"""

from __future__ import annotations

import numpy as np


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (torch is imported only when asked)."""
    import torch

    return bool(torch.cuda.is_available())


def bhattacharyya_tile(A: np.ndarray, B: np.ndarray, floor: float, *, device: str = "cpu",
                       upper: bool = False, sample_chunk: int | None = None):
    """``(d, count)`` for row roots ``A`` (n, R, C) and column roots ``B`` (n, K, C).

    ``d[r, k] = max(-(1/n) sum_i log max(A[i, r] . B[i, k], floor), 0)`` as float64
    NumPy; ``count`` is the number of clamped (pair, sample) terms, restricted
    to the strict upper triangle when ``upper`` (A and B are the same models).
    The products run in the dtype of ``A`` (float64 for exact results) and the
    log-sums in float64.
    """
    import torch

    dev = torch.device(device)
    n, R, _ = A.shape
    K = B.shape[1]
    if sample_chunk is None:
        sample_chunk = max(1, (1 << 24) // max(1, R * K))  # ~16M coefficients per chunk
    At = torch.as_tensor(A).to(dev)
    Bt = torch.as_tensor(B).to(dev).transpose(1, 2)  # (n, C, K)
    log_sum = torch.zeros((R, K), dtype=torch.float64, device=dev)
    below = torch.zeros((R, K), dtype=torch.int64, device=dev)
    for s0 in range(0, n, sample_chunk):
        bc = torch.bmm(At[s0:s0 + sample_chunk], Bt[s0:s0 + sample_chunk])
        below += (bc < floor).sum(dim=0)
        log_sum += torch.log(bc.to(torch.float64).clamp_(min=floor)).sum(dim=0)
    if upper:
        below = torch.triu(below, 1)
    d = (-log_sum / n).clamp_(min=0.0).cpu().numpy()
    return d, int(below.sum().item())
