"""A small Vision Transformer (Dosovitskiy et al. 2021), any input size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._common import check_positive_ints, check_positive_number

__all__ = ["ViT"]


class _Block(nn.Module):
    """Pre-norm transformer block: ``x + MHA(LN(x))``, then ``x + MLP(LN(x))``."""

    def __init__(self, width: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """Small Vision Transformer.

    The input is zero-padded on the bottom/right to a multiple of the patch size,
    cut into non-overlapping ``p_h x p_w`` patches by a linear patch embedding
    (``Conv2d`` with kernel = stride = patch), plus learned positional embeddings
    (one per patch, truncated-normal std 0.02); then ``depth`` pre-norm blocks
    (multi-head self-attention via :class:`torch.nn.MultiheadAttention`, then an
    MLP ``Linear -> GELU -> Linear`` with ``mlp_ratio * width`` hidden units, each
    with a residual connection); then a final LayerNorm, **mean pooling over the
    patch tokens** (no class token) and a linear head. No dropout.

    The patch is ``p_h = min(patch_size, H)``, ``p_w = min(patch_size, W)``: clipped
    per axis, so 8x8 digits and ``1 x 200`` vectors (``1 x p`` patches) work.

    Parameters
    ----------
    input_shape : tuple (C_in, H, W)
    n_classes : int
    width : int
        Embedding dimension; must be divisible by ``heads``.
    depth : int
        Number of transformer blocks (>= 1).
    heads : int
        Attention heads.
    patch_size : int
        Patch side length (clipped to the input size per axis).
    mlp_ratio : float
        MLP hidden units per embedding dimension (hidden = ``round(mlp_ratio * width)``,
        at least 1).
    """

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int, width: int = 64,
                 depth: int = 4, heads: int = 4, patch_size: int = 4,
                 mlp_ratio: float = 2.0) -> None:
        super().__init__()
        check_positive_ints(width=width, depth=depth, heads=heads, patch_size=patch_size)
        check_positive_number("mlp_ratio", mlp_ratio)
        if width % heads != 0:
            raise ValueError(f"width ({width}) must be divisible by heads ({heads})")
        c, h, w = input_shape
        self.patch = (min(patch_size, h), min(patch_size, w))
        self.pad = (-h % self.patch[0], -w % self.patch[1])
        self.n_tokens = ((h + self.pad[0]) // self.patch[0]) * ((w + self.pad[1]) // self.patch[1])
        self.embed = nn.Conv2d(c, width, kernel_size=self.patch, stride=self.patch)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.n_tokens, width))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        hidden = max(1, round(mlp_ratio * width))
        self.blocks = nn.Sequential(*(_Block(width, heads, hidden) for _ in range(depth)))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, n_classes)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> patch tokens with positional embeddings (B, N, width)."""
        if any(self.pad):
            x = F.pad(x, (0, self.pad[1], 0, self.pad[0]))
        return self.embed(x).flatten(2).transpose(1, 2) + self.pos_embed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> logits (B, n_classes)."""
        z = self.norm(self.blocks(self.tokens(x)))
        return self.head(z.mean(dim=1))
