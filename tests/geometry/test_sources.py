import numpy as np
import pytest

from deepmanifold.geometry.sources import ModelStack


def test_model_stack_slices_across_arrays():
    a, b, c = (np.full((k, 2, 3), float(k)) for k in (2, 3, 4))
    s = ModelStack([a, b, c])
    full = np.concatenate([a, b, c])
    assert s.shape == (9, 2, 3) and len(s) == 9 and s.dtype == np.float64
    for lo, hi in [(0, 9), (1, 4), (2, 5), (5, 9), (3, 3), (-2, None)]:
        np.testing.assert_array_equal(s[lo:hi], full[lo:hi])
    np.testing.assert_array_equal(s[4], full[4])
    np.testing.assert_array_equal(s[-1], full[-1])
    np.testing.assert_array_equal(np.asarray(s), full)
    with pytest.raises(IndexError):
        s[9]
    with pytest.raises(ValueError):
        s[::2]


def test_model_stack_rejects_mismatched_arrays():
    with pytest.raises(ValueError):
        ModelStack([np.zeros((2, 3, 4)), np.zeros((2, 3, 5))])
    with pytest.raises(ValueError):
        ModelStack([])


def test_slices_of_memory_maps_are_copies_read_from_the_files(tmp_path):
    rng = np.random.default_rng(0)
    parts = [rng.normal(size=(k, 4, 3)).astype(np.float32) for k in (3, 5)]
    maps = []
    for i, part in enumerate(parts):
        np.save(tmp_path / f"{i}.npy", part)
        maps.append(np.load(tmp_path / f"{i}.npy", mmap_mode="r"))
    s = ModelStack(maps)
    for lo, hi in [(0, 2), (1, 6), (3, 8)]:
        got = s[lo:hi]
        np.testing.assert_array_equal(got, np.concatenate(parts)[lo:hi])
        # In memory, detached from the mapping: its pages could be (and are) dropped.
        assert type(got) is np.ndarray and got.flags.owndata
