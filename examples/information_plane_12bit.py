"""The information plane of Shwartz-Ziv & Tishby's 12-bit networks, tanh against ReLU.

Saxe et al. (2018) found that the compression Shwartz-Ziv & Tishby (2017) saw -- a layer's
I(X;T) rising, then falling while I(T;Y) keeps rising -- comes from the tanh units
saturating: with binning, the tanh network's last hidden layers compress and the same
network with ReLU units does not. This script repeats that on the 12-bit task
(:func:`deepmanifold.probes.twelve_bit_task`, a reconstruction of the original data):

- networks 12-10-7-5-4-3-2, tanh or ReLU hidden units, softmax output, weights drawn from a
  normal of standard deviation ``1/sqrt(fan_out)`` truncated at two standard deviations,
  zero biases, Adam at learning rate 4e-4, minibatches of 256, cross-entropy, 85 % of the
  4096 patterns for training: the setting of Saxe et al.'s code for this network
  (github.com/artemyk/ibsgd, IBnet_SaveActivations.ipynb), which ran 10 000 epochs;
- every seed trains one tanh and one ReLU network from the same initial weights and on the
  same minibatches, all networks at once as a batch of independent networks (the same
  arithmetic as one at a time, a fraction of the overhead);
- each hidden layer's activations on all 4096 patterns recorded at log-spaced epochs, and
  I(X;T), I(T;Y) in bits on all 4096 patterns (X uniform over them, as both studies did)
  by :func:`deepmanifold.probes.information_plane`:

  * binning, 30 bins per unit: tanh units over (-1, 1) (Shwartz-Ziv & Tishby), ReLU units
    over (0, the layer's largest activation over all recorded epochs) -- one range for the
    whole run, so that the bins do not move with the epoch; ``--bin-width 0.07`` bins
    every unit by ``floor(a / 0.07)`` instead, as Saxe et al.'s code did for this network
    (IBnet_ComputeMI.ipynb);
  * the KDE upper bound with noise variance σ² = 1e-3, the value of the same notebook.

A layer *compresses* when its I(X;T) falls from its peak to the end of training by at least
0.5 bit and by at least 10 % of the peak. The table gives, per activation, estimator and
hidden layer, I(X;T) at epoch 0, at its peak and at the end, compression = peak − final
(mean ± standard deviation over the seeds), the median epoch of the peak, the final
I(T;Y), and in how many seeds the layer compresses. With either estimator the tanh
network's last hidden layer compresses by several bits in every seed, the ReLU network's
by at most a few tenths of a bit (times on one CPU core)::

    python examples/information_plane_12bit.py                      # 3 seeds, 4000 epochs: ~3 min
    python examples/information_plane_12bit.py --seeds 0 1 2 3 4 --epochs 10000 --out plane.html  # ~8 min
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from deepmanifold.probes import information_plane, twelve_bit_task

HIDDEN = (10, 7, 5, 4, 3)
ACTIVATIONS = ("tanh", "relu")
TRAIN_FRACTION = 0.85
BATCH_SIZE = 256
LEARNING_RATE = 4e-4
N_BINS = 30
NOISE_VARIANCE = 1e-3
# A layer compresses when I(X;T) falls from its peak by at least this many bits and this
# fraction of the peak.
MIN_DROP_BITS = 0.5
MIN_DROP_FRACTION = 0.1


def record_epochs(epochs: int, points: int) -> np.ndarray:
    """0 (the initial network) and ``points`` log-spaced epochs from 1 to ``epochs``."""
    return np.unique(np.concatenate([[0], np.round(np.geomspace(1, epochs, points)).astype(int)]))


class Networks:
    """One tanh and one ReLU 12-10-7-5-4-3-2 network per seed, evaluated as one batch.

    Networks are ordered (seed 0 tanh, seed 0 ReLU, seed 1 tanh, ...); network ``k``'s
    weights are slice ``k`` of every ``(n, fan_in, fan_out)`` tensor. A seed's two networks
    start from the same weights, drawn from ``torch.Generator().manual_seed(seed)``, so that
    they differ only in their units, and no network depends on which other seeds train.
    """

    def __init__(self, seeds: list[int]):
        sizes = (12, *HIDDEN, 2)
        generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.is_tanh = torch.tensor([a == "tanh" for _ in seeds for a in ACTIVATIONS]).view(-1, 1, 1)
        self.weights, self.biases = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            std = 1.0 / math.sqrt(fan_out)
            W = torch.empty(len(seeds), fan_in, fan_out)
            for k, generator in enumerate(generators):
                torch.nn.init.trunc_normal_(W[k], 0.0, std, -2 * std, 2 * std, generator=generator)
            self.weights.append(W.repeat_interleave(len(ACTIVATIONS), dim=0).requires_grad_())
            self.biases.append(torch.zeros(len(W) * len(ACTIVATIONS), 1, fan_out, requires_grad=True))

    def parameters(self) -> list[torch.Tensor]:
        return self.weights + self.biases

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits ``(n, m, 2)`` of inputs ``(n, m, 12)`` and the hidden layers' activations."""
        hidden = []
        h = x
        for k, (W, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, W)
            if k < len(HIDDEN):
                h = torch.where(self.is_tanh, torch.tanh(h), torch.relu(h))
                hidden.append(h)
        return h, hidden


def train(seeds: list[int], epochs: int, points: int, log_every: int = 500):
    """Train one tanh and one ReLU network per seed; record every hidden layer.

    Seed ``s`` fixes the split (``numpy.random.default_rng(s)``), the initial weights and
    the minibatch order, all shared by its two networks.

    Returns
    -------
    recorded : list of list of ndarray
        ``recorded[e][l]``: hidden layer ``l``'s activations ``(n_networks, 4096, width)``
        at epoch ``when[e]``; networks ordered as in :class:`Networks`.
    when : ndarray of int
        The recorded epochs (:func:`record_epochs`).
    labels : ndarray, shape (4096,)
    accuracy : ndarray, shape (n_networks, 2)
        Final train and test accuracy.
    seconds : float
        Training time.
    """
    torch.set_num_threads(1)
    X, y = twelve_bit_task()
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    n_patterns = len(y)
    n_train = round(TRAIN_FRACTION * n_patterns)
    # Per seed: one split and one minibatch order per epoch, shared by its two networks.
    splits = torch.stack([torch.from_numpy(np.random.default_rng(s).permutation(n_patterns)) for s in seeds])
    train_index = splits[:, :n_train]
    shufflers = [torch.Generator().manual_seed(10_000 + s) for s in seeds]
    nets = Networks(seeds)
    n_nets = len(nets.is_tanh)
    optimizer = torch.optim.Adam(nets.parameters(), lr=LEARNING_RATE, foreach=True)
    when = record_epochs(epochs, points)
    recorded = []
    everything = X.expand(n_nets, -1, -1)

    def record():
        with torch.no_grad():
            logits, hidden = nets.forward(everything)
        recorded.append([h.numpy().copy() for h in hidden])
        return (logits.argmax(-1) == y).float()

    start = time.perf_counter()
    correct = record()
    for epoch in range(1, epochs + 1):
        shuffles = torch.stack([torch.randperm(n_train, generator=g) for g in shufflers])
        order = train_index.gather(1, shuffles).repeat_interleave(len(ACTIVATIONS), dim=0)
        for b in range(0, n_train, BATCH_SIZE):
            index = order[:, b:b + BATCH_SIZE]
            logits, _ = nets.forward(X[index])
            # Sum of the networks' mean losses: each network gets its own gradient.
            loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), y[index], reduction="none")
            optimizer.zero_grad(set_to_none=True)
            loss.mean(dim=1).sum().backward()
            optimizer.step()
        if epoch in when:
            correct = record()
        if log_every and epoch % log_every == 0:
            print(f"  epoch {epoch:>6}  {time.perf_counter() - start:7.1f} s", flush=True)
    seconds = time.perf_counter() - start
    train_mask = torch.zeros(n_nets, n_patterns, dtype=torch.bool).scatter_(
        1, train_index.repeat_interleave(len(ACTIVATIONS), dim=0), True)
    accuracy = np.array([[correct[k][train_mask[k]].mean().item(), correct[k][~train_mask[k]].mean().item()]
                         for k in range(n_nets)])
    return recorded, when, y.numpy(), accuracy, seconds


def binning_options(layers_over_time, activation: str, bin_width: float | None) -> dict:
    """``n_bins`` and one ``bin_range`` per layer, fixed for the whole run.

    Without ``bin_width``: 30 bins, over (-1, 1) for tanh and over (0, the layer's largest
    activation over all recorded epochs) for ReLU. With it: bins of that width aligned on
    its multiples, i.e. the bin of ``a`` is ``floor(a / bin_width)`` as in Saxe et al.'s
    code; every layer gets the same number of bins (enough for the widest), and the bins
    past a layer's own range stay empty.
    """
    n_layers = len(layers_over_time[0])
    low = [min(float(layers[l].min()) for layers in layers_over_time) for l in range(n_layers)]
    high = [max(float(layers[l].max()) for layers in layers_over_time) for l in range(n_layers)]
    if bin_width is None:
        if activation == "tanh":
            return dict(n_bins=N_BINS, bin_range=[(-1.0, 1.0)] * n_layers)
        return dict(n_bins=N_BINS, bin_range=[(0.0, h or 1.0) for h in high])
    start = [math.floor(lo / bin_width) * bin_width for lo in low]
    n_bins = max(math.floor((h - s) / bin_width) + 1 for s, h in zip(start, high))
    return dict(n_bins=n_bins, bin_range=[(s, s + n_bins * bin_width) for s in start])


def information_trajectories(recorded, labels, n_nets: int, bin_width: float | None = None):
    """``{(method, net): (i_xt, i_ty)}``, each ``(n_epochs, n_layers)`` in bits."""
    out = {}
    n_layers = len(HIDDEN)
    for k in range(n_nets):
        activation = ACTIVATIONS[k % len(ACTIVATIONS)]
        layers_over_time = [[epoch[l][k] for l in range(n_layers)] for epoch in recorded]
        for method, options in (("binning", binning_options(layers_over_time, activation, bin_width)),
                                ("kde", dict(noise_variance=NOISE_VARIANCE))):
            planes = [information_plane(layers, labels, method, **options) for layers in layers_over_time]
            out[method, k] = (np.array([p.i_xt for p in planes]), np.array([p.i_ty for p in planes]))
    return out


def compresses(peak: np.ndarray, final: np.ndarray) -> np.ndarray:
    drop = peak - final
    return (drop >= MIN_DROP_BITS) & (drop >= MIN_DROP_FRACTION * peak)


def table(trajectories, seeds, when) -> str:
    n_seeds = len(seeds)
    lines = [f"{'act':<5} {'method':<8} {'layer':>5} {'width':>5}  {'epoch 0':>13}  {'peak I(X;T)':>13}  "
             f"{'final I(X;T)':>13}  "
             f"{'compression':>13}  {'peak epoch':>10}  {'final I(T;Y)':>12}  {'compress':>8}"]
    for a, activation in enumerate(ACTIVATIONS):
        for method in ("binning", "kde"):
            nets = [s * len(ACTIVATIONS) + a for s in range(n_seeds)]
            i_xt = np.stack([trajectories[method, k][0] for k in nets])  # (seeds, epochs, layers)
            i_ty = np.stack([trajectories[method, k][1] for k in nets])
            peak, final = i_xt.max(axis=1), i_xt[:, -1]
            peak_epoch = when[i_xt.argmax(axis=1)]
            drop = peak - final
            hits = compresses(peak, final).sum(axis=0)
            for l, width in enumerate(HIDDEN):
                lines.append(
                    f"{activation:<5} {method:<8} {l + 1:>5} {width:>5}  {_pm(i_xt[:, 0, l])}  {_pm(peak[:, l])}  "
                    f"{_pm(final[:, l])}  "
                    f"{_pm(drop[:, l])}  {int(np.median(peak_epoch[:, l])):>10}  {i_ty[:, -1, l].mean():>12.3f}  "
                    f"{hits[l]:>4}/{n_seeds:<3}")
    return "\n".join(lines)


def _pm(values: np.ndarray) -> str:
    return f"{values.mean():6.2f} ± {values.std():4.2f}"


def figure(trajectories, seeds, when, path: str) -> None:
    """Information-plane trajectories (seed 0), one panel per activation and method."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    panels = [(a, m) for m in ("binning", "kde") for a in range(len(ACTIVATIONS))]
    fig = make_subplots(rows=2, cols=2, subplot_titles=[f"{ACTIVATIONS[a]}, {m}" for a, m in panels],
                        horizontal_spacing=0.08, vertical_spacing=0.12)
    for p, (a, method) in enumerate(panels):
        i_xt, i_ty = trajectories[method, a]  # seed 0's network of this activation
        for l in range(len(HIDDEN)):
            fig.add_trace(go.Scatter(
                x=i_xt[:, l], y=i_ty[:, l], mode="lines+markers", name=f"layer {l + 1}", legendgroup=str(l),
                showlegend=p == 0, marker=dict(color=np.log10(when + 1), colorscale="Viridis", size=6),
                line=dict(width=1), text=[f"epoch {e}" for e in when]), row=p // 2 + 1, col=p % 2 + 1)
        fig.update_xaxes(title_text="I(X;T) [bits]", row=p // 2 + 1, col=p % 2 + 1)
        fig.update_yaxes(title_text="I(T;Y) [bits]", row=p // 2 + 1, col=p % 2 + 1)
    fig.update_layout(title=f"12-10-7-5-4-3-2 on the 12-bit task, seed {seeds[0]} (colour: log10 epoch)",
                      height=900, width=1100)
    fig.write_html(path, include_plotlyjs=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=4000)
    parser.add_argument("--points", type=int, default=30, help="log-spaced epochs recorded (plus epoch 0)")
    parser.add_argument("--bin-width", type=float, help="bins of this width (Saxe et al.'s code: 0.07) "
                        "instead of 30 bins per unit")
    parser.add_argument("--out", help="write the information-plane figure (plotly HTML) here")
    args = parser.parse_args(argv)

    print(f"training {len(args.seeds)} tanh + {len(args.seeds)} ReLU networks, {args.epochs} epochs, "
          f"seeds {args.seeds}", flush=True)
    recorded, when, labels, accuracy, train_seconds = train(args.seeds, args.epochs, args.points)
    start = time.perf_counter()
    trajectories = information_trajectories(recorded, labels, len(accuracy), args.bin_width)
    mi_seconds = time.perf_counter() - start
    for k, (train_acc, test_acc) in enumerate(accuracy):
        print(f"seed {args.seeds[k // 2]} {ACTIVATIONS[k % 2]:<4}: train accuracy {train_acc:.3f}, "
              f"test accuracy {test_acc:.3f}")
    binning = f"bins of width {args.bin_width:g}" if args.bin_width else f"{N_BINS} bins"
    print(f"\ntraining {train_seconds:.0f} s, information {mi_seconds:.0f} s; {len(when)} recorded epochs; "
          f"binning: {binning}, KDE σ² = {NOISE_VARIANCE:g}; compress: drop >= {MIN_DROP_BITS} bit "
          f"and >= {MIN_DROP_FRACTION:.0%} of the peak\n")
    print(table(trajectories, args.seeds, when))
    if args.out:
        figure(trajectories, args.seeds, when, args.out)
        print(f"\nfigure: {args.out}")


if __name__ == "__main__":
    main()
