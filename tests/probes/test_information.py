"""The information plane's estimators against planted answers, brute force and closed forms;
the 12-bit task's symmetries."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from deepmanifold.probes import _information
from deepmanifold.probes._information import InformationPlane, information_plane
from deepmanifold.probes._twelve_bit import icosahedron_vertices, twelve_bit_task

METHODS = ("binning", "kde")


def entropy_bits(values) -> float:
    counts = np.array(list(Counter(values).values()), dtype=float)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


# --- binning --------------------------------------------------------------------------------


def test_invertible_layer_keeps_log_n_bits_and_all_of_y():
    # X: the 64 points of an 8 x 8 grid; T = 2X + 1 is invertible and, binned with one
    # bin per grid step, puts every sample in its own bin.
    grid = np.stack(np.meshgrid(np.arange(8), np.arange(8)), axis=-1).reshape(-1, 2).astype(float)
    T = 2 * grid + 1
    labels = (np.arange(64) % 3 == 0).astype(int)  # unbalanced: p(1) = 22/64
    plane = information_plane(T, labels, n_bins=8, bin_range=(0, 16))
    assert plane.i_xt[0] == pytest.approx(6.0, abs=1e-12)
    assert plane.h_x == pytest.approx(6.0)
    assert plane.h_y == pytest.approx(entropy_bits(labels.tolist()))
    assert plane.i_ty[0] == pytest.approx(plane.h_y, abs=1e-12)


def test_constant_layer_carries_nothing():
    labels = np.repeat([0, 1, 2], 10)
    for method in METHODS:
        plane = information_plane(np.full((30, 4), 0.7), labels, method)
        assert plane.i_xt[0] == pytest.approx(0.0, abs=1e-9)
        assert plane.i_ty[0] == pytest.approx(0.0, abs=1e-9)
    # zero range under the default bin_range: one bin, not a division by zero
    assert information_plane(np.zeros((5, 1)), [0, 1, 0, 1, 0]).bin_ranges.tolist() == [[0.0, 0.0]]


def test_layer_that_determines_y_carries_h_y_and_one_that_ignores_it_none():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 400)
    determined = labels[:, None] + 0.1 * rng.random((400, 1))  # bins of width 0.25 separate classes
    plane = information_plane(determined, labels, n_bins=4, bin_range=(0, 4))
    assert plane.i_xt[0] == pytest.approx(plane.h_y) and plane.i_ty[0] == pytest.approx(plane.h_y)
    # T independent of Y by construction: each class holds the same multiset of T values
    T = np.tile(np.arange(5.0), 4)[:, None]
    plane = information_plane(T, np.repeat(np.arange(4), 5), n_bins=5)
    assert plane.i_xt[0] == pytest.approx(math.log2(5)) and plane.i_ty[0] == pytest.approx(0.0, abs=1e-12)


def brute_force_binning(H, labels, n_bins, low, high):
    """``(I(X;T), I(T;Y))`` by the definitions: edges, Python tuples, Counter."""
    inner_edges = np.linspace(low, high, n_bins + 1)[1:-1]
    patterns = [tuple(np.digitize(row, inner_edges)) for row in H]
    h_t = entropy_bits(patterns)
    h_t_given_y = 0.0
    for y in set(labels):
        members = [t for t, label in zip(patterns, labels) if label == y]
        h_t_given_y += len(members) / len(labels) * entropy_bits(members)
    return h_t, h_t - h_t_given_y


@pytest.mark.parametrize("seed", range(5))
def test_binning_matches_brute_force_count(seed):
    rng = np.random.default_rng(seed)
    n, d = 300, int(rng.integers(1, 5))
    H = np.tanh(rng.normal(size=(n, d)) * rng.uniform(0.5, 3))
    labels = rng.integers(0, 3, n)
    n_bins = int(rng.integers(2, 12))
    plane = information_plane([H, H[:, :1]], labels, n_bins=n_bins, bin_range=(-1, 1))
    for k, layer in enumerate([H, H[:, :1]]):
        expected = brute_force_binning(layer, labels.tolist(), n_bins, -1, 1)
        assert (plane.i_xt[k], plane.i_ty[k]) == pytest.approx(expected, abs=1e-10)
    # default range: each layer's own observed range
    default = information_plane(H, labels, n_bins=n_bins)
    assert default.i_xt[0] == pytest.approx(brute_force_binning(H, labels.tolist(), n_bins, H.min(), H.max())[0])


def test_binning_of_wide_layers_in_several_blocks(monkeypatch):
    rng = np.random.default_rng(1)
    H = rng.integers(0, 3, size=(500, 40)).astype(float)
    H[250:] = H[:250]  # every pattern twice
    labels = rng.integers(0, 2, 500)
    whole = information_plane(H, labels, n_bins=3)
    monkeypatch.setattr(_information, "_BIN_ELEMENTS", 40 * 7)  # 7 rows per block
    blocked = information_plane(H, labels, n_bins=3)
    assert whole.i_xt[0] == pytest.approx(math.log2(250)) and blocked.i_xt[0] == whole.i_xt[0]
    assert blocked.i_ty[0] == whole.i_ty[0]


def test_values_outside_bin_range_fall_in_the_edge_bins():
    T = np.array([[-5.0], [-1.0], [0.9], [7.0]])
    plane = information_plane(T, [0, 0, 1, 1], n_bins=2, bin_range=(-1, 1))
    assert plane.i_xt[0] == pytest.approx(1.0)  # {-5, -1} and {0.9, 7}


# --- KDE --------------------------------------------------------------------------------------


def test_kde_two_points_closed_form():
    delta, sigma2 = 0.3, 0.05
    T = np.array([[0.0, 0.0], [delta, 0.0]])
    expected = 1.0 - math.log2(1.0 + math.exp(-delta**2 / (2 * sigma2)))
    plane = information_plane(T, [0, 1], "kde", noise_variance=sigma2)
    assert plane.i_xt[0] == pytest.approx(expected, rel=1e-6)
    assert plane.i_ty[0] == pytest.approx(expected, rel=1e-6)  # Y identifies the point
    same = information_plane(T, [1, 1], "kde", noise_variance=sigma2)
    assert same.i_ty[0] == pytest.approx(0.0, abs=1e-7) and same.h_y == 0.0


def test_kde_limits_of_the_noise_variance():
    rng = np.random.default_rng(2)
    n = 64
    T = np.column_stack([np.arange(n) * 0.05, rng.normal(size=n)])  # distinct, >= 0.05 apart
    labels = np.arange(n) % 2
    tiny = information_plane(T, labels, "kde", noise_variance=1e-8)
    assert tiny.i_xt[0] == pytest.approx(math.log2(n), abs=1e-9)
    assert tiny.i_ty[0] == pytest.approx(1.0, abs=1e-9)
    huge = information_plane(T, labels, "kde", noise_variance=1e12)
    assert huge.i_xt[0] == pytest.approx(0.0, abs=1e-6) and huge.i_ty[0] == pytest.approx(0.0, abs=1e-6)
    # in between, I(X;T) decreases with the noise
    values = [information_plane(T, labels, "kde", noise_variance=s).i_xt[0] for s in (1e-3, 1e-2, 1e-1, 1.0)]
    assert all(a > b for a, b in zip(values, values[1:]))


def brute_force_kde(H, labels, sigma2):
    """The pairwise bound by its definition, one pair at a time on exact differences."""
    n = len(H)
    K = np.array([[math.exp(-float(((H[i] - H[j]) ** 2).sum()) / (2 * sigma2)) for j in range(n)]
                  for i in range(n)])
    i_xt = -np.mean(np.log(K.mean(axis=1)))
    h_given_y = 0.0
    for y in np.unique(labels):
        members = labels == y
        i_y = -np.mean(np.log(K[np.ix_(members, members)].mean(axis=1)))
        h_given_y += members.mean() * i_y
    return i_xt / math.log(2), (i_xt - h_given_y) / math.log(2)


def test_kde_matches_brute_force_across_blocks(monkeypatch):
    rng = np.random.default_rng(3)
    H = rng.normal(size=(90, 3)) * 0.4 + 2.0  # off-centre, as real activations are
    labels = rng.integers(0, 3, 90)
    expected = brute_force_kde(H, labels, 0.1)
    assert information_plane(H, labels, "kde").i_xt[0] == pytest.approx(expected[0], rel=1e-5)
    monkeypatch.setattr(_information, "_BLOCK_ELEMENTS", 90 * 7)  # 7 rows per block, ragged end
    plane = information_plane(H, labels, "kde", noise_variance=0.1)
    assert (plane.i_xt[0], plane.i_ty[0]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_i_ty_is_at_most_i_xt_and_h_y(method):
    rng = np.random.default_rng(4)
    for _ in range(5):
        n = int(rng.integers(20, 200))
        labels = rng.integers(0, int(rng.integers(2, 5)), n)
        H = rng.normal(size=(n, 3)) * rng.uniform(0.01, 2) + labels[:, None] * rng.uniform(0, 1)
        plane = information_plane({"a": H, "b": np.round(H)}, labels, method, n_bins=4)
        assert np.all(plane.i_ty <= np.minimum(plane.i_xt, plane.h_y) + 1e-9)
        assert np.all(plane.i_xt <= plane.h_x + 1e-9)
        if method == "binning":
            assert np.all(plane.i_ty >= 0)


# --- the result ------------------------------------------------------------------------------


def test_layers_are_named_and_the_result_is_read_only():
    rng = np.random.default_rng(5)
    H = rng.normal(size=(50, 2))
    labels = rng.integers(0, 2, 50)
    named = information_plane({"fc1": H, "fc2": H[:, :1]}, labels)
    assert isinstance(named, InformationPlane) and named.layers == ("fc1", "fc2")
    assert named.i_xt.shape == named.i_ty.shape == (2,) and named.bin_ranges.shape == (2, 2)
    assert named.layer("fc2") == (named.i_xt[1], named.i_ty[1])
    with pytest.raises(KeyError, match="fc3"):
        named.layer("fc3")
    with pytest.raises(ValueError):
        named.i_xt[0] = 1.0
    assert information_plane([H, H], labels).layers == (0, 1)
    assert information_plane(H, labels).layers == (0,)
    kde = information_plane(H, labels, "kde", noise_variance=0.2)
    assert kde.noise_variance == 0.2 and kde.n_bins is None and kde.bin_ranges is None
    # bin ranges per layer, by position or by name
    per_layer = information_plane({"fc1": H, "fc2": H}, labels, bin_range={"fc1": (-9, 9), "fc2": (-1, 1)})
    assert per_layer.bin_ranges.tolist() == [[-9, 9], [-1, 1]]
    assert information_plane([H, H], labels, bin_range=[(-9, 9), (-1, 1)]).i_xt.tolist() == per_layer.i_xt.tolist()


def test_torch_tensors_and_string_labels():
    torch = pytest.importorskip("torch")
    H = torch.linspace(0, 1, 8).reshape(8, 1).requires_grad_()
    plane = information_plane(H * 1, np.array(list("aabbccdd")), n_bins=8)
    assert plane.i_xt[0] == pytest.approx(3.0) and plane.i_ty[0] == pytest.approx(2.0)


@pytest.mark.parametrize("call, message", [
    (lambda H, y: information_plane(H, y[:-1]), "labels has length 9"),
    (lambda H, y: information_plane(H[:1], y[:1]), "at least 2 samples"),
    (lambda H, y: information_plane(H[:, 0], y), r"expected shape \(n, d\)"),
    (lambda H, y: information_plane(H[:, :0], y), "no units"),
    (lambda H, y: information_plane([H, H[:5]], y), "same samples"),
    (lambda H, y: information_plane([], y), "no layers"),
    (lambda H, y: information_plane(H, y, "histogram"), "method must be one of"),
    (lambda H, y: information_plane(H, y.astype(float)), "integer, boolean or string"),
    (lambda H, y: information_plane(H, y[:, None]), r"labels: expected shape \(n,\)"),
    (lambda H, y: information_plane(H, y, n_bins=0), "n_bins"),
    (lambda H, y: information_plane(H, y, n_bins=2.5), "n_bins"),
    (lambda H, y: information_plane(H, y, bin_range=(1, 1)), "low < high"),
    (lambda H, y: information_plane(H, y, bin_range=(0, np.inf)), "low < high"),
    (lambda H, y: information_plane([H, H, H], y, bin_range=[(0, 1), (0, 1)]), "one pair per layer"),
    (lambda H, y: information_plane([H, H], y, bin_range={0: (0, 1)}), "mapping"),
    (lambda H, y: information_plane({"a": H, "b": H}, y, bin_range={"a": (0, 1)}), r"no range for the layers \['b'\]"),
    (lambda H, y: information_plane(H, y, bin_range=("low", "high")), "expected None"),
    (lambda H, y: information_plane(H, y, "kde", noise_variance=0.0), "noise_variance"),
    (lambda H, y: information_plane(H, y, "kde", noise_variance=float("nan")), "noise_variance"),
    (lambda H, y: information_plane(H, y, "kde", noise_variance="big"), "noise_variance"),
])
def test_bad_inputs(call, message):
    H = np.arange(30, dtype=float).reshape(10, 3)
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match=message):
        call(H, y)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_activations_are_named(bad):
    H = np.zeros((6, 3))
    H[4, 2] = bad
    for method in METHODS:
        with pytest.raises(ValueError, match=r"activations\['fc2'\]: sample 4, unit 2"):
            information_plane({"fc1": np.zeros((6, 1)), "fc2": H}, [0, 1] * 3, method)


# --- the 12-bit task -------------------------------------------------------------------------


def rotation(axis, angle):
    """Rodrigues' rotation matrix."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * K @ K


def vertex_permutation(V, R):
    """``p`` with ``R v_i = v_{p[i]}``; fails unless ``R`` maps the vertex set onto itself."""
    p = np.argmax((V @ R.T) @ V.T, axis=1)
    np.testing.assert_allclose(V[p], V @ R.T, atol=1e-12)
    return p


@pytest.fixture(scope="module")
def rotations():
    """Generators of the icosahedron's rotation group as permutations of the vertices."""
    V = icosahedron_vertices()
    G = V @ V.T
    edge = np.isclose(G, 1 / math.sqrt(5))
    assert np.allclose(np.linalg.norm(V, axis=1), 1) and np.all(edge.sum(axis=1) == 5)  # regular icosahedron
    neighbours = np.flatnonzero(edge[0])
    a = neighbours[0]
    b = next(j for j in neighbours if edge[a, j])  # vertices 0, a, b make a face
    generators = [
        vertex_permutation(V, rotation(V[0], 2 * math.pi / 5)),  # about a vertex
        vertex_permutation(V, rotation(V[0] + V[a] + V[b], 2 * math.pi / 3)),  # about a face
        vertex_permutation(V, rotation(V[0] + V[a], math.pi)),  # about an edge
    ]
    # they generate the whole rotation group (order 60)
    group, frontier = {tuple(range(12))}, [np.arange(12)]
    while frontier:
        new = []
        for p in frontier:
            for g in generators:
                if tuple(p[g]) not in group:
                    group.add(tuple(p[g]))
                    new.append(p[g])
        frontier = new
    assert len(group) == 60
    return generators


def codes(X):
    return (np.asarray(X).astype(np.int64) << np.arange(11, -1, -1)).sum(axis=1)


def test_twelve_bit_task_patterns_and_balance():
    X, y = twelve_bit_task()
    assert X.shape == (4096, 12) and X.dtype == np.float32 and y.shape == (4096,) and y.dtype == np.int64
    assert set(np.unique(X)) == {0.0, 1.0} and set(np.unique(y)) == {0, 1}
    assert np.array_equal(codes(X), np.arange(4096))  # all patterns, binary order
    assert abs(y.mean() - 0.5) < 0.01 and y.sum() == 2064


def test_twelve_bit_labels_are_rotation_invariant(rotations):
    X, y = twelve_bit_task()
    for p in rotations:
        # the pattern rotated: the bit of vertex i moves to vertex p[i]
        rotated = np.empty_like(X)
        rotated[:, p] = X
        assert np.array_equal(y[codes(rotated)], y)
    assert np.array_equal(y[codes(1 - X)], y)  # and invariant to flipping every bit
    # planted failure: a rule that is not invariant (bit 0 alone) is caught by the same check
    not_invariant = X[:, 0].astype(int)
    rotated = np.empty_like(X)
    rotated[:, rotations[1]] = X  # the face rotation moves vertex 0
    assert not np.array_equal(not_invariant[codes(rotated)], not_invariant)


def test_twelve_bit_random_state_shuffles_rows_only():
    X, y = twelve_bit_task()
    Xs, ys = twelve_bit_task(random_state=3)
    order = codes(Xs)
    assert not np.array_equal(order, np.arange(4096)) and np.array_equal(np.sort(order), np.arange(4096))
    assert np.array_equal(ys, y[order])
    assert np.array_equal(twelve_bit_task(random_state=3)[0], Xs)


def test_the_example_runs(tmp_path, capsys):
    """examples/information_plane_12bit.py end to end on a few epochs, figure included."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "information_plane_12bit.py"
    spec = importlib.util.spec_from_file_location("information_plane_12bit", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main(["--seeds", "0", "--epochs", "3", "--points", "3", "--out", str(tmp_path / "plane.html")])
    out = capsys.readouterr().out
    assert "tanh  binning      5     3" in out and "relu  kde          5     3" in out
    assert (tmp_path / "plane.html").stat().st_size > 0
