"""On-the-fly data augmentation of training minibatches (never of probe sets, docs/method.md §1)."""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ..data import AUGMENTATION_OPS

__all__ = [
    "AUGMENTATION_MODES",
    "augment_batch",
    "crop_padding",
    "dataset_augmentations",
]

#: Values of the ``augmentation`` config key (what a run applies; the operations a
#: dataset allows are :data:`deepmanifold.data.AUGMENTATION_OPS`).
AUGMENTATION_MODES: tuple[str, ...] = ("none", "simple")
#: What a dataset without an ``augmentations`` attribute allows.
_DEFAULT_OPS: tuple[str, ...] = ("crop",)


def crop_padding(height: int, width: int) -> tuple[int, int]:
    """Zero padding ``(p_h, p_w)`` of the random crop for ``height x width`` images.

    ``p = floor(size / 8 + 1/2)`` per side (round half up): 4 px for 32, 1 px for 8,
    0 (no crop) below 4 px.
    """
    return (int(height) + 4) // 8, (int(width) + 4) // 8


def dataset_augmentations(dataset: Any) -> tuple[str, ...]:
    """The augmentation operations ``dataset`` allows, validated.

    Reads ``dataset.augmentations`` (a tuple of values from :data:`AUGMENTATION_OPS`);
    a dataset without that attribute allows ``("crop",)``.
    """
    ops = getattr(dataset, "augmentations", _DEFAULT_OPS)
    if isinstance(ops, str) or not isinstance(ops, Sequence):
        raise ValueError(
            f"dataset.augmentations must be a tuple of values from {AUGMENTATION_OPS}, got {ops!r}"
        )
    bad = [op for op in ops if op not in AUGMENTATION_OPS]
    if bad:
        raise ValueError(
            f"dataset.augmentations has unknown operation(s) {bad}; allowed: {AUGMENTATION_OPS}"
        )
    return tuple(op for op in AUGMENTATION_OPS if op in ops)


def augment_batch(
    x: torch.Tensor,
    *,
    crop: bool,
    hflip: bool,
    generator: torch.Generator,
) -> torch.Tensor:
    """Random crop with zero padding and/or random horizontal flip, vectorised per batch.

    Parameters
    ----------
    x : torch.Tensor, shape (B, C_in, H, W)
        Training minibatch (normalised inputs; padding is with zeros, i.e. with the
        training mean).
    crop : bool
        Random translation: pad every side by :func:`crop_padding` ``(p_h, p_w)`` with
        zeros, then take the ``H x W`` window at offsets ``dy in [0, 2 p_h]``,
        ``dx in [0, 2 p_w]`` drawn uniformly and independently per image.
    hflip : bool
        Mirror the (cropped) image left-right with probability 1/2, per image.
    generator : torch.Generator
        Source of all randomness. Draw order per call: ``dy`` then ``dx`` (each
        ``torch.randint(0, 2p + 1, (B,))``) if ``crop``, then ``flip``
        (``torch.randint(0, 2, (B,))``, 1 = flipped) if ``hflip``.

    Returns
    -------
    torch.Tensor, same shape and dtype as ``x``
        ``out[b, c, i, j] = padded[b, c, dy_b + i, dx_b + (W - 1 - j if flip_b else j)]``.
        ``x`` itself is not modified.
    """
    if not (crop or hflip):
        return x
    b, _, h, w = x.shape
    ph, pw = crop_padding(h, w) if crop else (0, 0)
    if crop:
        dy = torch.randint(0, 2 * ph + 1, (b,), generator=generator)
        dx = torch.randint(0, 2 * pw + 1, (b,), generator=generator)
    else:
        dy = torch.zeros(b, dtype=torch.int64)
        dx = torch.zeros(b, dtype=torch.int64)
    cols = torch.arange(w).expand(b, w)
    if hflip:
        flip = torch.randint(0, 2, (b,), generator=generator).bool()
        cols = torch.where(flip[:, None], (w - 1) - cols, cols)
    # The draws above come from the (CPU) generator whatever x's device, so a run sees
    # the same augmentations on a GPU; only the indices move to x's device.
    dev = x.device
    rows = (dy[:, None] + torch.arange(h)[None, :]).to(dev)  # (B, H)
    cols = (dx[:, None] + cols).to(dev)  # (B, W)
    padded = F.pad(x, (pw, pw, ph, ph)) if (ph or pw) else x
    bi = torch.arange(b, device=dev)[:, None, None, None]
    ci = torch.arange(x.shape[1], device=dev)[None, :, None, None]
    return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]
