"""Tests of probe sets: fixed, ordered samples and the fingerprint that identifies them."""

import hashlib

import numpy as np
import pytest
import torch

from deepmanifold.data import Dataset, ProbeSet, load_dataset, load_digits, make_probes, probe_fingerprint


@pytest.fixture(scope="module")
def ds():
    return load_digits(seed=0)


@pytest.fixture(scope="module")
def ds_other_split():
    return load_digits(seed=1)


def _sha256_reference(name, split, indices, labels):
    """The fingerprint's byte layout, written out independently (a format pin:
    stored runs are compared by fingerprint, so it must not drift)."""
    payload = (
        b"deepmanifold-probe-v1\x00"
        + name.encode() + b"\x00"
        + split.encode() + b"\x00"
        + b"".join(int(i).to_bytes(8, "little", signed=True) for i in indices)
        + b"\x00"
        + b"".join(int(v).to_bytes(8, "little", signed=True) for v in labels)
    )
    return hashlib.sha256(payload).hexdigest()


# --------------------------------------------------------------------------- make_probes

def test_sizes_order_labels(ds):
    probes = make_probes(ds, n_train=100, n_test=37, seed=0)
    assert set(probes) == {"train", "test"}
    for split, n, y in (("train", 100, ds.y_train), ("test", 37, ds.y_test)):
        p = probes[split]
        assert p.name == split and p.split == split
        assert len(p) == n
        assert p.indices.dtype == np.int64 and p.labels.dtype == np.int64
        assert np.all(np.diff(p.indices) > 0)  # sorted and unique
        assert p.indices.min() >= 0 and p.indices.max() < len(y)
        assert np.array_equal(p.labels, y.numpy()[p.indices])


def test_none_and_oversized_mean_whole_split(ds):
    probes = make_probes(ds, n_train=None, n_test=10_000)
    assert np.array_equal(probes["train"].indices, np.arange(1347))
    assert np.array_equal(probes["test"].indices, np.arange(450))
    assert np.array_equal(probes["test"].labels, ds.y_test.numpy())
    # Default: 500 training samples, whole test split.
    default = make_probes(ds)
    assert len(default["train"]) == 500 and len(default["test"]) == 450


def test_probes_drawn_from_train_size_subsample():
    ds = load_dataset("digits", train_size=120)
    probes = make_probes(ds, n_train=500, n_test=None)
    assert len(probes["train"]) == 120  # clipped to the subsample
    assert torch.equal(probes["train"].inputs(ds), ds.x_train)


def test_empty_and_negative_sizes(ds):
    probes = make_probes(ds, n_train=0, n_test=3)
    assert len(probes["train"]) == 0 and len(probes["test"]) == 3
    assert probes["train"].inputs(ds).shape == (0, 1, 8, 8)
    with pytest.raises(ValueError, match="-1"):
        make_probes(ds, n_train=-1)


def test_seeded_and_independent_streams(ds):
    a = make_probes(ds, n_train=50, n_test=50, seed=4)
    b = make_probes(ds, n_train=50, n_test=50, seed=4)
    c = make_probes(ds, n_train=50, n_test=50, seed=5)
    for split in ("train", "test"):
        assert np.array_equal(a[split].indices, b[split].indices)
        assert a[split] == b[split] and hash(a[split]) == hash(b[split])
        assert not np.array_equal(a[split].indices, c[split].indices)
        assert a[split].fingerprint != c[split].fingerprint
    # The train subset does not depend on how many test samples are asked for.
    d = make_probes(ds, n_train=50, n_test=7, seed=4)
    assert np.array_equal(a["train"].indices, d["train"].indices)


def test_probe_fingerprint_matches_stored(ds):
    probes = make_probes(ds, n_train=20, n_test=20, seed=2)
    for split, p in probes.items():
        x = (ds.x_train if split == "train" else ds.x_test).numpy()[p.indices]
        assert p.fingerprint == probe_fingerprint("digits", split, p.indices, p.labels, inputs=x)
        # The inputs are part of it: the same indices and labels of other pixels differ.
        assert p.fingerprint != probe_fingerprint("digits", split, p.indices, p.labels, inputs=x + 1)
        assert len(p.fingerprint) == 64 and set(p.fingerprint) <= set("0123456789abcdef")


# --------------------------------------------------------------------------- fingerprint

IDX = np.array([0, 3, 5, 11], dtype=np.int64)
LAB = np.array([2, 2, 7, 0], dtype=np.int64)


def test_fingerprint_independent_recomputation():
    assert probe_fingerprint("digits", "train", IDX, LAB) == _sha256_reference(
        "digits", "train", IDX, LAB
    )
    assert probe_fingerprint("dïgits", "test", IDX[:0], LAB[:0]) == _sha256_reference(
        "dïgits", "test", [], []
    )


def test_fingerprint_depends_on_values_not_dtypes():
    ref = probe_fingerprint("digits", "train", IDX, LAB)
    assert probe_fingerprint("digits", "train", IDX.astype(np.int32), LAB.astype(">i8")) == ref
    assert probe_fingerprint("digits", "train", list(IDX), list(LAB)) == ref


@pytest.mark.parametrize(
    "name, split, idx, lab",
    [
        ("digitz", "train", IDX, LAB),
        ("digits", "test", IDX, LAB),
        ("digits", "train", np.array([0, 3, 5, 12]), LAB),
        ("digits", "train", np.array([1, 3, 5, 11]), LAB),
        ("digits", "train", IDX, np.array([2, 2, 7, 1])),
        ("digits", "train", IDX, np.array([3, 2, 7, 0])),
        ("digits", "train", IDX[:3], LAB[:3]),
        ("digits", "train", IDX[::-1], LAB[::-1]),  # order matters
    ],
)
def test_fingerprint_changes_with_any_input(name, split, idx, lab):
    assert probe_fingerprint(name, split, idx, lab) != probe_fingerprint("digits", "train", IDX, LAB)


# --------------------------------------------------------------------------- ProbeSet

def test_inputs_are_the_indexed_samples(ds):
    probes = make_probes(ds, n_train=30, n_test=30, seed=1)
    tr, te = probes["train"], probes["test"]
    assert torch.equal(tr.inputs(ds), ds.x_train[torch.tensor(tr.indices)])
    assert torch.equal(te.inputs(ds), ds.x_test[torch.tensor(te.indices)])
    for i, k in enumerate(te.indices):  # and in probe order
        assert torch.equal(te.inputs(ds)[i], ds.x_test[int(k)])


def test_inputs_reject_another_split_of_the_dataset(ds, ds_other_split):
    probes = make_probes(ds, n_train=None, n_test=None)
    for p in probes.values():
        with pytest.raises(ValueError, match="labels do not match"):
            p.inputs(ds_other_split)


def test_inputs_reject_a_too_small_dataset(ds):
    probe = make_probes(ds, n_train=None, n_test=None)["test"]
    small = Dataset(
        name="digits",
        x_train=ds.x_train[:10],
        y_train=ds.y_train[:10],
        x_test=ds.x_test[:10],
        y_test=ds.y_test[:10],
        n_classes=10,
    )
    with pytest.raises(ValueError, match="10 samples"):
        probe.inputs(small)


def test_probeset_equality_uses_name_and_fingerprint(ds):
    p = make_probes(ds, n_train=10, n_test=10)["train"]
    renamed = ProbeSet("extra", p.split, p.indices, p.labels, p.fingerprint)
    assert renamed != p
    same = ProbeSet("train", "train", p.indices.copy(), p.labels.copy(), p.fingerprint)
    assert same == p and hash(same) == hash(p)
    assert p != "train"


def test_probeset_is_read_only(ds):
    p = make_probes(ds, n_train=10, n_test=10)["train"]
    with pytest.raises(ValueError):
        p.indices[0] = 5
    with pytest.raises(ValueError):
        p.labels[0] = 5
    with pytest.raises(AttributeError):
        p.name = "other"


@pytest.mark.parametrize(
    "split, idx, lab, match",
    [
        ("valid", [0, 1], [0, 1], "split"),
        ("train", [0, 1, 2], [0, 1], "equal length"),
        ("train", [[0, 1]], [[0, 1]], "1-D"),
    ],
)
def test_probeset_validation(split, idx, lab, match):
    with pytest.raises(ValueError, match=match):
        ProbeSet("p", split, np.array(idx), np.array(lab), "0" * 64)


def test_probe_copies_caller_arrays_and_rejects_negative_indices():
    idx, labels = np.arange(3), np.zeros(3, dtype=np.int64)
    probe = ProbeSet("x", "train", idx, labels, "f" * 64)
    idx[0] = 7  # the caller's array stays writable and the probe does not change
    assert probe.indices.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="non-negative"):
        ProbeSet("n", "train", np.array([-1]), np.array([0]), "f" * 64)
