r"""The average gradient outer product (AGOP) of a PyTorch network, of its input or of a layer.

For a network ``f : R^d -> R^C`` and samples ``x_1, ..., x_n`` the AGOP is

.. math::

    G = \frac{1}{n} \sum_{i=1}^n J(x_i)^\top J(x_i), \qquad
    J(x) = \frac{\partial f}{\partial x} \in \mathbb{R}^{C \times d},

a ``(d, d)`` positive semi-definite matrix whose top eigenvectors are the input
directions the network is most sensitive to (Radhakrishnan et al., Science 2024).
The AGOP of a *layer* with weight ``W`` is taken with respect to what that weight
multiplies. Write the network as ``f(x) = g(W p_1, ..., W p_L)``, where ``p_l`` are
the vectors the layer multiplies by ``W`` (an ``nn.Linear``: its input, ``L = 1``,
or one vector per token for inputs of shape ``(n, ..., d_in)``; an ``nn.Conv2d``: the
``c_in k_h k_w`` values :func:`torch.nn.functional.unfold` gives for each of its
``L`` output locations), and ``δ_{l,c} = ∂f_c / ∂(W p_l)``. Then

.. math::

    G_W = \frac{1}{nL} \sum_{i=1}^n \sum_{l=1}^L \sum_{c=1}^C
          \nabla_{p_l} f_c \, \nabla_{p_l} f_c^\top
        = W^\top \Big( \frac{1}{nL} \sum_{i,l,c} \delta_{l,c}\, \delta_{l,c}^\top \Big) W,

of the size of :func:`weight_gram` ``W^T W``, the matrix the Neural Feature Ansatz
compares it with (:func:`deepmanifold.features.nfa`). The gradient is the one through
the layer: a skip connection around it does not contribute. Averaging over the
locations makes a convolution whose output is ``1 x 1`` give the AGOP of the
equivalent ``nn.Linear``. A grouped convolution multiplies each group's patches by
that group's filters; its groups count as further locations, so ``G_W`` is again
compared with ``W_flat^T W_flat``.

Functions
---------
:func:`agop`
    The AGOP of the input or of one layer; exact, or a randomised sketch for
    networks with many outputs.
:func:`layer_agops`
    The AGOPs of several layers from one set of backward passes.
:func:`resolve_layers`
    The ``nn.Linear`` and ``nn.Conv2d`` layers of a model, by name, as the functions
    above select them.
:func:`weight_gram`
    ``W^T W`` of a layer.
:func:`matrix_power_psd`
    ``A^alpha`` of a symmetric positive semi-definite matrix.

The model is evaluated as it is: put it in eval mode first. In train mode a
BatchNorm layer normalises each batch with its own statistics, so one sample's
outputs depend on the other samples of its batch (the per-sample Jacobians are then
not what is computed) and its running statistics are updated; dropout makes the
outputs random. Gradients come from :func:`torch.autograd.grad`: the parameters'
``.grad`` are left untouched.

References
----------
.. [1] A. Radhakrishnan, D. Beaglehole, P. Pandit, M. Belkin, "Mechanism for feature
       learning in neural networks and backpropagation-free machine learning models",
       Science 383 (6690), 1461-1467, 2024. doi:10.1126/science.adi5639
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

__all__ = ["OUTPUTS", "agop", "layer_agops", "matrix_power_psd", "resolve_layers", "weight_gram"]

#: What the AGOP differentiates: the model's outputs as they are, or their softmax.
OUTPUTS = ("logits", "probs")

_LAYER_TYPES = (nn.Linear, nn.Conv2d)


# --------------------------------------------------------------------- checks


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_outputs(outputs) -> str:
    if outputs not in OUTPUTS:
        raise ValueError(f"outputs must be one of {', '.join(map(repr, OUTPUTS))}, got {outputs!r}")
    return outputs


def _check_inputs(X) -> torch.Tensor:
    """``X`` as a real tensor of shape ``(n, ...)``, ``n >= 1``, all finite."""
    if not isinstance(X, torch.Tensor):
        X = np.asarray(X)
        if X.dtype.kind not in "biuf":
            raise ValueError(f"X must hold real numbers, got dtype {X.dtype}")
        X = torch.from_numpy(np.ascontiguousarray(X))
    if X.ndim < 2:
        raise ValueError(f"X must have shape (n, ...) with a feature axis, got shape {tuple(X.shape)}")
    if X.shape[0] < 1:
        raise ValueError(f"X must hold at least one sample, got shape {tuple(X.shape)}")
    if X.is_complex():
        raise ValueError(f"X must hold real numbers, got dtype {X.dtype}")
    if X.is_floating_point():
        bad = ~torch.isfinite(X.reshape(X.shape[0], -1)).all(dim=1)
        if bool(bad.any()):
            raise ValueError(f"X must be finite: sample {int(bad.nonzero()[0, 0])} holds NaN or inf")
    return X


def resolve_layers(model: nn.Module, layers=None) -> dict[str, nn.Module]:
    """The layers of ``model`` an AGOP is taken of, by their name in ``model.named_modules()``.

    Parameters
    ----------
    model : nn.Module
    layers : None, str, nn.Module, or iterable of str / nn.Module
        ``None``: every ``nn.Linear`` and ``nn.Conv2d`` of ``model``. Otherwise the
        layers named (or given as modules of ``model``), in the order given,
        duplicates dropped. The root module's name is ``""``.

    Returns
    -------
    dict of str to nn.Module
        In ``model.named_modules()`` order when ``layers`` is ``None``.

    Raises
    ------
    ValueError
        A name that is not a module of ``model`` (the message lists the names of its
        ``nn.Linear`` and ``nn.Conv2d`` layers), a module that is not part of
        ``model``, a layer that is neither ``nn.Linear`` nor ``nn.Conv2d``, an empty
        selection, or a model without such layers.
    """
    named = dict(model.named_modules())
    valid = [name for name, m in named.items() if isinstance(m, _LAYER_TYPES)]
    if layers is None:
        if not valid:
            raise ValueError(f"{type(model).__name__} has no nn.Linear or nn.Conv2d layer")
        return {name: named[name] for name in valid}
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    listing = ", ".join(map(repr, valid)) or "none"
    chosen: dict[str, nn.Module] = {}
    for layer in layers:
        if isinstance(layer, str):
            if layer not in named:
                raise ValueError(
                    f"unknown layer {layer!r}; the nn.Linear and nn.Conv2d layers of "
                    f"{type(model).__name__} are: {listing}"
                )
            name = layer
        elif isinstance(layer, nn.Module):
            name = next((n for n, m in named.items() if m is layer), None)
            if name is None:
                raise ValueError(
                    f"the {type(layer).__name__} given as layer is not a module of "
                    f"{type(model).__name__}; its nn.Linear and nn.Conv2d layers are: {listing}"
                )
        else:
            raise ValueError(f"a layer must be a name or an nn.Module, got {layer!r}")
        if not isinstance(named[name], _LAYER_TYPES):
            raise ValueError(
                f"layer {name!r} is a {type(named[name]).__name__}; the AGOP of a layer is "
                "defined for nn.Linear and nn.Conv2d layers"
            )
        chosen[name] = named[name]
    if not chosen:
        raise ValueError("layers selects no layer")
    return chosen


# ------------------------------------------------------------ small matrices


def weight_gram(layer: nn.Module) -> np.ndarray:
    r"""The Gram matrix ``W^T W`` of a layer's weight, summed over its output units.

    .. math::

        W^\top W = \sum_{o} w_o w_o^\top,

    with ``w_o`` the weights of output unit (filter) ``o``: the rows of an
    ``nn.Linear`` weight, or of ``W_flat = weight.reshape(c_out, -1)`` for an
    ``nn.Conv2d`` (``c_in/groups * k_h * k_w`` columns, ordered as
    :func:`torch.nn.functional.unfold` orders a patch).

    Parameters
    ----------
    layer : nn.Linear or nn.Conv2d

    Returns
    -------
    ndarray, float64
        Shape ``(d_in, d_in)`` for a Linear, ``(c_in/groups * k_h * k_w,)*2`` for a Conv2d.

    Raises
    ------
    ValueError
        ``layer`` is neither.
    """
    if not isinstance(layer, _LAYER_TYPES):
        raise ValueError(f"weight_gram needs an nn.Linear or nn.Conv2d, got {type(layer).__name__}")
    W = layer.weight.detach().to("cpu", torch.float64).reshape(layer.weight.shape[0], -1).numpy()
    return W.T @ W


def matrix_power_psd(A, alpha: float) -> np.ndarray:
    r"""``A^alpha`` of a symmetric positive semi-definite matrix, by eigendecomposition.

    .. math::

        A^\alpha = V \operatorname{diag}(\max(\lambda, 0)^\alpha) V^\top,
        \qquad A = V \operatorname{diag}(\lambda) V^\top,

    with ``A`` first symmetrised, ``(A + A^T)/2``; negative eigenvalues, which in a
    PSD matrix come only from rounding, are clipped at 0.

    Parameters
    ----------
    A : array_like, shape (d, d)
    alpha : float
        A finite power ``> 0``.

    Returns
    -------
    ndarray, shape (d, d), float64
        Symmetric PSD.

    Raises
    ------
    ValueError
        ``A`` not square or not finite; ``alpha`` not a finite number ``> 0``.

    Notes
    -----
    One ``eigh``: ``O(d^3)`` time.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)) \
            or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square matrix, got shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ValueError("A must be finite")
    w, V = np.linalg.eigh((A + A.T) / 2)
    return (V * np.clip(w, 0.0, None) ** alpha) @ V.T


# ------------------------------------------------------------- accumulation


class _InputSum:
    """``sum_i g_i g_i^T`` of the gradients with respect to the model input, flattened."""

    def __init__(self, d: int, device: torch.device):
        self.total = torch.zeros(d, d, dtype=torch.float64, device=device)

    def add(self, grad: torch.Tensor) -> None:
        g = grad.reshape(grad.shape[0], -1).to(torch.float64)
        self.total.addmm_(g.T, g)

    def result(self, count: int) -> np.ndarray:
        G = self.total / count
        return ((G + G.T) / 2).cpu().numpy()


class _LayerSum:
    """``sum W^T delta delta^T W`` over samples, locations and directions of one layer.

    ``delta`` is the gradient with respect to the layer's output. Whichever of the
    per-group ``delta delta^T`` (``c_out/groups``-square, sandwiched by that group's
    filters at the end) and the patch gradients' ``p p^T`` (``d_in``-square) is
    smaller is accumulated.
    """

    def __init__(self, module: nn.Module, device: torch.device):
        self.conv = isinstance(module, nn.Conv2d)
        self.groups = module.groups if self.conv else 1
        W = module.weight.detach().to(device, torch.float64)
        self.c_out = W.shape[0]
        self.per_group = self.c_out // self.groups
        self.W = W.reshape(self.groups, self.per_group, -1)  # (groups, c_out/groups, d_in)
        d_in = self.W.shape[2]
        self.by_output = self.per_group <= d_in
        shape = (self.groups, self.per_group, self.per_group) if self.by_output else (d_in, d_in)
        self.total = torch.zeros(shape, dtype=torch.float64, device=device)

    def rows(self, out: torch.Tensor) -> torch.Tensor:
        """A layer output (or its gradient) as ``(samples * locations, c_out)``."""
        if self.conv:
            if out.ndim != 4:
                raise ValueError(f"a Conv2d output must be (B, C, H, W), got shape {tuple(out.shape)}")
            out = out.movedim(1, -1)
        return out.reshape(-1, self.c_out)

    def locations(self, out: torch.Tensor) -> int:
        """Rows one direction adds to the sum: samples x locations x groups."""
        return self.rows(out).shape[0] * self.groups

    def add(self, grad: torch.Tensor) -> None:
        delta = self.rows(grad).to(torch.float64).reshape(-1, self.groups, self.per_group).transpose(0, 1)
        if self.by_output:
            self.total.baddbmm_(delta.transpose(1, 2), delta)
            return
        # each group's filters see that group's patch
        p = torch.bmm(delta, self.W).reshape(-1, self.W.shape[2])
        self.total.addmm_(p.T, p)

    def result(self, count: int) -> np.ndarray:
        if self.by_output:
            G = torch.einsum("god,gop,gpe->de", self.W, self.total, self.W)
        else:
            G = self.total
        G = G / count
        return ((G + G.T) / 2).cpu().numpy()


class _Capture:
    """Forward hooks that keep each layer's output as a tensor autograd can differentiate by.

    Each hook records the layer's output (made a leaf that requires grad when nothing
    upstream does) and passes a clone on, so that an in-place operation downstream
    (``ReLU(inplace=True)``) cannot rewrite the recorded tensor.
    """

    def __init__(self, layers: Mapping[str, nn.Module]):
        self.layers = dict(layers)
        self.outputs: dict[str, list[torch.Tensor]] = {}
        self.handles: list = []

    def __enter__(self) -> "_Capture":
        for name, module in self.layers.items():
            self.handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def _hook(self, name: str):
        def hook(module, args, output):
            if not output.requires_grad:
                output = output.detach().requires_grad_()
            self.outputs.setdefault(name, []).append(output)
            return output.clone()

        return hook

    def reset(self) -> None:
        self.outputs.clear()


def _model_device_dtype(model: nn.Module, X: torch.Tensor) -> tuple[torch.device, torch.dtype]:
    p = next(iter(model.parameters()), None)
    if p is not None and p.is_floating_point():
        return p.device, p.dtype
    return X.device, (X.dtype if X.is_floating_point() else torch.get_default_dtype())


def _network_outputs(out, outputs: str, batch: int) -> torch.Tensor:
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != batch:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"the model must return a tensor of shape (n, C), got {shape}")
    return torch.softmax(out, dim=1) if outputs == "probs" else out


def _directions(n_outputs: int, batch: int, sketch: int | None, rng: np.random.Generator | None,
                like: torch.Tensor) -> torch.Tensor:
    """``(m, batch, C)`` output-space directions whose gradients' outer products sum to ``J^T J``.

    Exact: the ``C`` unit vectors. Sketch: ``k`` Rademacher vectors per sample scaled by
    ``1/sqrt(k)``, drawn sample after sample so the draws do not depend on the batching.
    """
    if sketch is None:
        eye = torch.eye(n_outputs, dtype=like.dtype, device=like.device)
        return eye[:, None, :].expand(n_outputs, batch, n_outputs)
    signs = np.where(rng.random((batch, sketch, n_outputs)) < 0.5, -1.0, 1.0) / math.sqrt(sketch)
    return torch.as_tensor(signs.transpose(1, 0, 2).copy(), dtype=like.dtype, device=like.device)


def _accumulate(model: nn.Module, X: torch.Tensor, layers: Mapping[str, nn.Module] | None,
                outputs: str, batch_size: int, sketch: int | None, rng,
                skip_uncalled: bool = False, with_input: bool = False) -> dict[str | None, np.ndarray]:
    """The AGOPs of the input (``layers=None``, or ``with_input``; key ``None``) and of ``layers``
    (by name), from the same backward passes.

    With ``skip_uncalled``, layers the first forward pass does not call are left out.
    """
    device, dtype = _model_device_dtype(model, X)
    n = X.shape[0]
    sums: dict = {}
    counts: dict = {}
    with torch.enable_grad(), _Capture(layers or {}) as capture:
        for start in range(0, n, batch_size):
            xb = X[start:start + batch_size].to(device, dtype).detach().clone()
            xb.requires_grad_(layers is None or with_input)
            capture.reset()
            f = _network_outputs(model(xb), outputs, xb.shape[0])
            if not sums:
                sums = _sums(model, X, layers, capture, skip_uncalled, device, with_input)
                counts = dict.fromkeys(sums, 0)
            targets = [xb if key is None else _single_output(capture, key) for key in sums]
            for key, t in zip(sums, targets):
                counts[key] += xb.shape[0] if key is None else sums[key].locations(t)
            if not f.requires_grad:
                continue  # the outputs depend on none of the targets: zero gradients
            dirs = _directions(f.shape[1], f.shape[0], sketch, rng, f)
            for j in range(dirs.shape[0]):
                grads = torch.autograd.grad(f, targets, grad_outputs=dirs[j],
                                            retain_graph=j + 1 < dirs.shape[0], allow_unused=True)
                for key, g in zip(sums, grads):
                    if g is not None:
                        sums[key].add(g)
    return {key: s.result(counts[key]) for key, s in sums.items()}


def _sums(model: nn.Module, X: torch.Tensor, layers: Mapping[str, nn.Module] | None,
          capture: _Capture, skip_uncalled: bool, device: torch.device, with_input: bool = False) -> dict:
    """One accumulator per AGOP, once the first forward pass has shown which layers it calls."""
    sums = {None: _InputSum(math.prod(X.shape[1:]), device)} if layers is None or with_input else {}
    if layers is None:
        return sums
    if skip_uncalled:
        layers = {name: m for name, m in layers.items() if capture.outputs.get(name)}
        if not layers:
            raise ValueError(f"the forward pass of {type(model).__name__} calls none of its "
                             "nn.Linear and nn.Conv2d layers")
    return {**sums, **{name: _LayerSum(module, device) for name, module in layers.items()}}


def _single_output(capture: _Capture, name: str) -> torch.Tensor:
    calls = capture.outputs.get(name, [])
    if len(calls) != 1:
        raise ValueError(
            f"layer {name!r} was called {len(calls)} times in one forward pass; the AGOP of a "
            "layer needs a layer the forward pass calls exactly once"
        )
    return calls[0]


# ------------------------------------------------------------------ public API


def agop(model: nn.Module, X, *, layer=None, outputs: str = "logits", batch_size: int = 256,
         sketch: int | None = None, random_state=0) -> np.ndarray:
    r"""The average gradient outer product of ``model`` on ``X``, of its input or of one layer.

    Without ``layer``, the AGOP with respect to the (flattened) input,

    .. math::

        G = \frac{1}{n} \sum_i J(x_i)^\top J(x_i), \qquad J(x) = \partial f / \partial x,

    of shape ``(d, d)``, ``d = prod(X.shape[1:])``. With ``layer``, the AGOP with
    respect to what the layer's weight multiplies (the module docstring):
    ``(d_in, d_in)`` for an ``nn.Linear``, the patch AGOP of size
    ``(c_in/groups * k_h * k_w,)*2`` for an ``nn.Conv2d``, averaged over samples and
    output locations, of the size of :func:`weight_gram`.

    With ``outputs="probs"``, ``f`` is the softmax of the model's outputs, whose
    Jacobian is ``(diag(p) - p p^T) J_logits``.

    Parameters
    ----------
    model : nn.Module
        Maps ``(B, ...)`` to ``(B, C)``; evaluated as it is (put it in eval mode:
        see the module docstring). Its parameters and their ``.grad`` are not changed.
    X : torch.Tensor or array_like, shape (n, ...)
        The samples, ``n >= 1``, all finite; moved to the model's device and dtype
        one batch at a time.
    layer : None, str or nn.Module
        An ``nn.Linear`` or ``nn.Conv2d`` of ``model`` (or its name in
        ``model.named_modules()``) that the forward pass calls once.
    outputs : {"logits", "probs"}
        Differentiate the model's outputs or their softmax.
    batch_size : int
        Samples per forward pass.
    sketch : int or None
        ``None``: exact, one backward pass per output per batch. ``k``: an unbiased
        randomised estimate from ``k`` backward passes per batch (Notes).
    random_state : int, np.random.Generator or None
        Seeds the sketch's random directions (ignored when exact).

    Returns
    -------
    ndarray, float64
        Symmetric positive semi-definite (exact) or symmetric (sketch).

    Raises
    ------
    ValueError
        ``X`` empty, not real or not finite (the message names the first bad sample);
        ``outputs`` not one of :data:`OUTPUTS`; ``batch_size`` or ``sketch`` not a
        positive integer; ``layer`` not a module of ``model`` (the message lists the
        valid names), not an ``nn.Linear``/``nn.Conv2d``, or not called exactly once
        per forward pass; a model output that is not ``(B, C)``.

    Notes
    -----
    **Exact.** Per batch one forward pass and ``C`` backward passes
    (:func:`torch.autograd.grad` of ``sum_b f_c(x_b)``, whose gradient with respect to
    sample ``b``'s input is ``∇f_c(x_b)`` because samples do not interact in eval
    mode), plus an ``O(B C d^2)`` float64 product for the input AGOP, or
    ``O(B L C min(c_out, d_in)^2)`` for a layer. A loop of backward passes was
    measured faster on one CPU thread than one ``vmap``-batched pass for the zoo's
    models on 8x8 digits.

    **Sketch.** For each sample, ``k`` independent Rademacher vectors ``v`` (entries
    ``±1``): ``∂(v^T f)/∂x = J^T v`` costs one backward pass, and since
    ``E[v v^T] = I``, ``E[J^T v v^T J] = J^T J``. The estimate is
    ``Ĝ = (1/n) Σ_i (1/k) Σ_j J_i^T v_ij v_ij^T J_i``, unbiased, with

    .. math::

        \mathbb{E}\,\|\hat G - G\|_F^2 = \frac{1}{n^2 k} \sum_i \sigma^2(x_i),
        \qquad
        \sigma^2(x) = (\operatorname{tr} G_x)^2 + \|G_x\|_F^2
                      - 2 \sum_c \|\nabla f_c(x)\|^4
                    \le 2 (\operatorname{tr} G_x)^2,

    ``G_x = J(x)^T J(x)``, for the input AGOP. For a layer, with ``L`` locations and
    ``K_l = [∇_{p_l} f_1, ..., ∇_{p_l} f_C]`` (``d_in x C``, the same ``v`` shared by
    a sample's locations) and ``B_{ll'} = K_l^T K_{l'}``,

    .. math::

        \sigma^2(x) = \frac{1}{L^2} \sum_{l, l'} \Big[ (\operatorname{tr} B_{ll'})^2
            + \operatorname{tr}(B_{ll'}^2) - 2 \sum_c (B_{ll'})_{cc}^2 \Big]
            \le 2 (\operatorname{tr} G_x)^2,

    which is the first formula when ``L = 1``. The root-mean-square error thus falls
    as ``1/sqrt(n k)``, and relative to ``‖G‖_F`` it is at most
    ``sqrt(2/(n k)) * max_i tr G_{x_i} / ‖G‖_F``. Rademacher directions beat Gaussian
    ones, whose ``σ²`` lacks the ``-2 Σ_c ‖∇f_c‖⁴`` term; a single output (``C = 1``)
    is estimated exactly. A sketch pays off when ``k`` is well below ``C``.
    """
    X = _check_inputs(X)
    outputs = _check_outputs(outputs)
    batch_size = _check_positive_int("batch_size", batch_size)
    rng = None
    if sketch is not None:
        sketch = _check_positive_int("sketch", sketch)
        rng = np.random.default_rng(random_state)
    if layer is None:
        return _accumulate(model, X, None, outputs, batch_size, sketch, rng)[None]
    chosen = resolve_layers(model, [layer])
    return _accumulate(model, X, chosen, outputs, batch_size, sketch, rng)[next(iter(chosen))]


def layer_agops(model: nn.Module, X, *, layers=None, outputs: str = "logits",
                batch_size: int = 256, include_input: bool = False) -> dict[str | None, np.ndarray]:
    r"""The AGOPs of several layers of ``model`` on ``X``, exactly, from one set of backward passes.

    Each layer's AGOP is what :func:`agop` with ``layer=name`` returns (the module
    docstring gives the formula); here every layer's output is captured in one
    forward pass per batch and each of the ``C`` backward passes differentiates by
    all of them at once.

    Parameters
    ----------
    model : nn.Module
        Maps ``(B, ...)`` to ``(B, C)``; in eval mode (see the module docstring).
    X : torch.Tensor or array_like, shape (n, ...)
        The samples, ``n >= 1``, all finite.
    layers : None, str, nn.Module or iterable of them
        ``None``: every ``nn.Linear`` and ``nn.Conv2d`` that the forward pass calls,
        in ``model.named_modules()`` order; layers it never calls as modules (such as
        ``nn.MultiheadAttention``'s ``out_proj``, whose weight the attention uses
        directly) are left out. Named layers must be called exactly once.
    outputs : {"logits", "probs"}
    batch_size : int
    include_input : bool, default False
        Also the AGOP of the input (:func:`agop` without ``layer``), under the key
        ``None``, from the same backward passes.

    Returns
    -------
    dict of str (or None) to ndarray
        Layer name -> its AGOP (float64, symmetric PSD), :func:`weight_gram`'s shape;
        ``None`` -> the input's, with ``include_input``.

    Raises
    ------
    ValueError
        As :func:`agop`; also a selected layer called more than once per forward pass,
        or none of the default layers called.

    Notes
    -----
    Cost per batch: one forward and ``C`` backward passes through the whole network,
    plus ``O(B L C min(c_out, d_in)^2)`` per layer; memory: the activations of one
    batch and one ``min(c_out, d_in)``-square float64 matrix per layer.
    """
    X = _check_inputs(X)
    outputs = _check_outputs(outputs)
    batch_size = _check_positive_int("batch_size", batch_size)
    chosen = resolve_layers(model, layers)
    return _accumulate(model, X, chosen, outputs, batch_size, None, None, skip_uncalled=layers is None,
                       with_input=bool(include_input))
