"""Out-of-core distance matrices: equality with in-memory InPCA, and resumption."""

import json

import numpy as np
import pytest

from deepmanifold.geometry import inpca, pairwise_distances
from deepmanifold.geometry.outofcore import (
    MANIFEST,
    DiskDistanceMatrix,
    compute_distance_matrix_on_disk,
    inpca_out_of_core,
)


class Interrupt(Exception):
    pass


@pytest.fixture
def X(rng, models):
    return models(rng, 300, 16, 4, concentration=0.4)


def test_out_of_core_equals_in_memory(tmp_path, X):
    M = compute_distance_matrix_on_disk(X, tmp_path / "d", block_size=64, dtype="float64")  # ragged: 300 = 4*64 + 44
    D = pairwise_distances(X)
    assert M.complete and M.missing_blocks() == [] and M.shape == (300, 300)
    np.testing.assert_allclose(M.to_numpy(), D, rtol=1e-13, atol=1e-15)
    ref = inpca(D, 5, solver="dense")
    for res in (inpca(M, 5, random_state=0), inpca_out_of_core(tmp_path / "d", 5, solver="lanczos")):
        np.testing.assert_allclose(res.eigenvalues, ref.eigenvalues, rtol=1e-8)
        np.testing.assert_allclose(res.coords, ref.coords, atol=1e-8 * np.abs(ref.coords).max())
        assert res.total_sq_norm == pytest.approx(ref.total_sq_norm, rel=1e-10)  # exact, streamed
        np.testing.assert_allclose(res.explained_stress, ref.explained_stress, rtol=1e-9)
        np.testing.assert_allclose(res.transform(D[:3]), ref.transform(D[:3]), atol=1e-8)
        assert res.transform(D[:0]).shape == (0, 5)
    assert np.allclose(DiskDistanceMatrix(tmp_path / "d").row_means(), D.mean(axis=1))


def test_float32_storage(tmp_path, X):
    M = compute_distance_matrix_on_disk(X, tmp_path / "d", block_size=128)
    assert M.dtype == np.float32 and M[:2, :2].dtype == np.float32
    ref = inpca(pairwise_distances(X), 3, solver="dense")
    np.testing.assert_allclose(inpca(M, 3).eigenvalues, ref.eigenvalues, rtol=1e-5)


def test_resume_after_interruption(tmp_path, X):
    nb = 5
    total = nb * (nb + 1) // 2
    calls = []

    def stop_after(k):
        def progress(stage, done, tot):
            calls.append(done)
            assert tot == total
            if done == k:
                raise Interrupt
        return progress

    with pytest.raises(Interrupt):
        compute_distance_matrix_on_disk(X, tmp_path / "d", block_size=64, callback=stop_after(6))
    partial = DiskDistanceMatrix(tmp_path / "d")
    assert not partial.complete and len(partial.missing_blocks()) == total - 6
    with pytest.raises(ValueError, match="incomplete"):
        inpca(partial, 3)
    # a different X does not silently resume
    with pytest.raises(ValueError, match="different parameters"):
        compute_distance_matrix_on_disk(X[::-1], tmp_path / "d", block_size=64)

    computed = []
    resumed = compute_distance_matrix_on_disk(
        X, tmp_path / "d", block_size=64, callback=lambda s, done, tot: computed.append(done))
    assert computed[0] == 6 and computed[1:] == list(range(7, total + 1))  # only the missing tiles
    clean = compute_distance_matrix_on_disk(X, tmp_path / "clean", block_size=64)
    np.testing.assert_array_equal(resumed.to_numpy(), clean.to_numpy())
    manifest = json.loads((tmp_path / "d" / MANIFEST).read_text())
    assert manifest["complete"] and len(manifest["done"]) == total
    np.testing.assert_allclose(inpca(resumed, 3, random_state=0).eigenvalues,
                               inpca(clean, 3, random_state=0).eigenvalues, rtol=1e-12)


def test_resume_false_overwrites(tmp_path, X):
    compute_distance_matrix_on_disk(X[:100], tmp_path / "d", block_size=64)
    M = compute_distance_matrix_on_disk(X, tmp_path / "d", block_size=64, resume=False)
    assert M.shape == (300, 300) and M.complete


def test_memmap_input(tmp_path, X):
    mm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float64, shape=X.shape)
    mm[:] = X
    mm.flush()
    M = compute_distance_matrix_on_disk(np.load(tmp_path / "X.npy", mmap_mode="r"), tmp_path / "d",
                                        block_size=100, dtype="float64")
    np.testing.assert_allclose(M.to_numpy(), pairwise_distances(X), rtol=1e-13, atol=1e-15)
