"""analyze_store on a planted store: every claim measured, judged and written, one matrix per probe."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from deepmanifold import geometry
from deepmanifold.analysis import agreement, corners, dimensionality, factors, speed
from deepmanifold.analysis import analyze_store, build_picture
from deepmanifold.analysis.checkpoints import checkpoint_distances, usable_runs
from deepmanifold.analysis.claims import CLAIMS, RULES
from deepmanifold.analysis.findings import SCHEMA_VERSION
from deepmanifold.store import Store

C, N, K = 10, 60, 12
RNG = np.random.default_rng(0)
SAMPLE_LABELS = {"test": RNG.integers(0, C, size=N), "train": RNG.integers(0, C, size=N)}
# Each architecture learns the samples in its own order (so architectures travel different
# paths); the widths of one architecture share it, the wider one faster.
ORDER = {arch: {probe: RNG.uniform(0, 0.7, size=N) for probe in SAMPLE_LABELS} for arch in ("mlp", "cnn")}
TAU = {16: 4.0, 64: 2.0}  # epochs to progress 1 - 1/e: wider is faster
CORNER = np.full(C, 0.2 / (C - 1))  # a far start: most mass on one wrong class


def _predictions(arch, width, seed, probe, corner=False):
    """(K, N, C) probabilities of one run: sample i moves along its ignorance-truth circle
    during its own stretch of training; a corner run starts far away and joins it."""
    labels = SAMPLE_LABELS[probe]
    epochs = np.linspace(0.0, 10.0, K)
    pace = 1.0 - np.exp(-epochs / TAU[width]) + 0.002 * seed
    s = np.clip((pace[:, None] - ORDER[arch][probe][None]) / 0.3, 0.0, 1.0)
    grid = np.linspace(0.0, 1.0, 201)
    P = geometry.geodesic(labels, C, grid)[np.rint(s * 200).astype(int), np.arange(N)]
    if corner:
        far = np.tile(CORNER, (N, 1))
        far[np.arange(N), (labels + 1) % C] = 0.8
        a = np.exp(-3.0 * epochs)[:, None, None]
        P = (1 - a) * P + a * far
    return P / P.sum(-1, keepdims=True)


def planted_store(root) -> Store:
    """2 architectures x 2 widths x 2 seeds, and 2 corner runs of the narrow MLP."""
    store = Store(root)
    for probe, labels in SAMPLE_LABELS.items():
        store.put_probe(fingerprint=f"fp-{probe}", name=probe, split=probe, dataset="planted",
                        indices=np.arange(N), labels=labels)
    runs = [(a, w, s, False) for a in ("mlp", "cnn") for w in TAU for s in (0, 1)]
    runs += [("mlp", 16, s, True) for s in (0, 1)]
    for arch, width, seed, corner in runs:
        init = "corner" if corner else "default"
        label = f"{arch} w{width} / {init} / seed {seed}"
        with np.errstate(divide="ignore"):  # a learned sample has probability 0 off its class
            logp = {p: np.log(_predictions(arch, width, seed, p, corner)).astype(np.float32) for p in SAMPLE_LABELS}
        epochs = np.linspace(0.0, 10.0, K)
        store.write_run(f"{arch}-w{width}-{init}-s{seed}", status="complete",
                        config={"arch": arch, "arch_options": {"width": width}, "optimizer": "sgd", "seed": seed,
                                "init": init, "label": label},
                        metrics={"step": np.rint(epochs * 10).astype(int), "epoch": epochs},
                        logp=logp, probes={p: f"fp-{p}" for p in SAMPLE_LABELS})
    return store


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    store = planted_store(tmp_path_factory.mktemp("planted") / "store")
    return store, analyze_store(store, n_boot=200)


def test_every_claim_is_judged_by_its_rule_on_both_probes(analysed):
    _, findings = analysed
    a = findings.analyses
    for probe_findings, listed in ((a.main, findings.claims), (a.other, findings.claims_other_probe)):
        assert [c.key for c in listed] == list(CLAIMS) and all(c.rule == RULES[c.key] for c in listed)
        claims = {c.key: c for c in listed}
        # Each verdict is the module's judge applied to the measurement kept beside it.
        for key, module, result in (("manifold", dimensionality, probe_findings.manifold),
                                    ("architecture", factors, probe_findings.architecture),
                                    ("speed", speed, probe_findings.speed),
                                    ("corners", corners, probe_findings.corners)):
            judged = module.judge(result)
            assert (claims[key].verdict, claims[key].numbers) == (judged.verdict, judged.numbers), key
    assert findings.claims[-1] == findings.claims_other_probe[-1]  # train/test: one comparison of both
    assert findings.claims[-1].verdict == agreement.judge(a.train_test).verdict == "supported"
    assert (a.main.probe, a.other.probe, findings.other_probe) == ("test", "train", "train")
    # The planted corner runs are measured as corners, the others as ordinary runs.
    assert int(a.main.trajectories.is_corner.sum()) == 2 and len(a.main.trajectories.runs.run_ids) == 10
    assert a.main.corners is not None and a.main.manifold is not None


def test_findings_json_is_the_serialisation_of_the_results(analysed, tmp_path):
    _, findings = analysed
    back = json.loads(findings.write_json(tmp_path / "findings.json").read_text())
    assert back["schema_version"] == SCHEMA_VERSION and back["other_probe"] == "train"
    assert [c["verdict"] for c in back["claims"]] == [c.verdict for c in findings.claims]
    assert [c["verdict"] for c in back["claims_other_probe"]] == [c.verdict for c in findings.claims_other_probe]
    a, an = findings.analyses, back["analyses"]
    assert an["dimensionality"]["explained_stress"] == a.description.explained_stress.tolist()
    assert an["manifold"]["sharing"]["phi"] == a.main.manifold.to_dict()["sharing"]["phi"]
    assert an["factor_effects"] == a.main.architecture.effects.to_dict()
    assert an["train_test_agreement"]["r"] == a.train_test.to_dict()["r"]
    assert an["milestones"]["mlp-w16-default-s0"]["0.5"]["epoch"] == a.milestones["mlp-w16-default-s0"][0.5].epoch
    assert an["other_probe"]["probe"] == "train" and "manifold" in an["other_probe"]
    for key in ("tangent", "trajectory_inpca", "geodesic_distance_by_group", "joint_embedding", "trajectory_heatmap",
                "averaging", "outliers", "corner_band"):
        assert key in an, key
    assert an["trajectory_distances"]["grid"]["name"] == a.main.trajectories.grid.name  # which grid was used
    names = an["trajectory_distances"]["run_labels"]  # run display names
    assert len(names) == 10 and "mlp w16 / corner / seed 1" in names
    assert set(back["skipped"]) == set(findings.skipped)


def test_pictures_use_the_claims_distance_matrices(analysed):
    store, findings = analysed
    assert set(findings.pictures) == {"test", "train"}
    for probe, picture in findings.pictures.items():
        fresh = build_picture(store, probe)
        for given, own in zip(picture.runs, fresh.runs):
            np.testing.assert_array_equal(given.coords, own.coords)
    runs, _ = usable_runs(store, "test")
    D = checkpoint_distances(store, "test", runs).matrix
    emb = geometry.inpca(D, n_components=10)
    np.testing.assert_allclose(findings.analyses.description.explained_stress, emb.explained_stress, atol=1e-12)


def test_analyze_runs_without_docstrings(analysed, tmp_path):
    store, findings = analysed
    code = textwrap.dedent(f"""
        from deepmanifold.analysis import analyze_store
        from deepmanifold.store import Store
        f = analyze_store(Store({str(store.root)!r}, create=False), n_boot=200)
        print(",".join(c.verdict for c in f.claims))
    """)
    out = subprocess.run([sys.executable, "-OO", "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ",".join(c.verdict for c in findings.claims)


def test_a_store_without_usable_runs_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no usable run"):
        analyze_store(Store(tmp_path / "empty"))
