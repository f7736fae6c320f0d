"""Which deep networks train, against mean-field theory's depth scale (Schoenholz et al. 2017).

Reads a store of mean-field MLPs (architecture ``mf_mlp``, e.g.
examples/fashion_mnist_trainability.toml), computes each network's correlation depth scale
``ξ_c`` from its activation, ``σ_w²`` and ``σ_b²`` (:func:`deepmanifold.theory.depth_scales`),
and prints, per run, its depth against ``6 ξ_c`` (the theory's trainability boundary) and
its final train-probe accuracy; "trained" means above ``--threshold``. With ``--out`` it
writes the phase diagram (``ξ_c`` over ``(σ_w², σ_b²)``, the order/chaos boundary) with the
runs drawn on it as an HTML page (plotly is bundled).

    python examples/trainability.py runs/fashion_mnist_trainability [--threshold 0.5] [--out phase.html]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from deepmanifold.models import model_knobs
from deepmanifold.report.theory_figures import phase_diagram_figure
from deepmanifold.store import Store
from deepmanifold.theory import depth_scales


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    parser.add_argument("--threshold", type=float, default=0.5, help="train accuracy counted as trained")
    parser.add_argument("--out", type=Path, help="write the phase diagram with the runs to this HTML file")
    args = parser.parse_args()
    store = Store(args.store)
    records, _ = store.records()
    rows = []
    for rec in records:
        if rec.config.get("arch") != "mf_mlp":
            continue
        o = {**model_knobs("mf_mlp"), **rec.config["arch_options"]}  # knobs the spec left at their defaults
        scales = depth_scales(o.get("activation", "tanh"), float(o["sigma_w2"]), float(o["sigma_b2"]))
        acc = float(store.metrics(rec.run_id)["train_acc"][-1]) if rec.status == "complete" else math.nan
        rows.append((float(o["sigma_w2"]), float(o["sigma_b2"]), int(o["depth"]), scales.xi_c, acc, rec.status))
    rows.sort()
    print("| σ_w² | depth | ξ_c | 6 ξ_c | predicted | train accuracy | trained |")
    print("|---|---|---|---|---|---|---|")
    agree = 0
    for w, _, depth, xi, acc, status in rows:
        predicted = depth < 6 * xi
        trained = acc > args.threshold
        agree += predicted == trained
        print(f"| {w:g} | {depth} | {xi:.3g} | {6 * xi:.3g} | {'trains' if predicted else 'does not'} | "
              f"{acc:.3f}{'' if status == 'complete' else ' (' + status + ')'} | {'yes' if trained else 'no'} |")
    print(f"theory and practice agree on {agree} of {len(rows)} runs")
    if args.out:
        import plotly

        runs = [(w, b, f"depth {d}: train acc {a:.2f}", a) for w, b, d, _, a, _ in rows]
        fig = phase_diagram_figure("tanh", runs=runs, value_title="train accuracy")
        js = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text()
        args.out.write_text(f"<html><head><meta charset='utf-8'><script>{js}</script></head><body>"
                            f"<div id='f'></div><script>Plotly.newPlot('f', {json.dumps(fig['data'])}, "
                            f"{json.dumps(fig['layout'])});</script></body></html>")
        print(f"phase diagram: {args.out}")


if __name__ == "__main__":
    main()
