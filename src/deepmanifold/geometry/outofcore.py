r"""Out-of-core distance matrices: blocks on disk, streamed by InPCA.

A ``T x T`` distance matrix between ``T`` models is written to a Zarr array in
``B x B`` tiles (one Zarr chunk each). Only the upper-triangle tiles are
computed (with :func:`pairwise_distances`); each is written together with its
mirror image, so the stored matrix is exactly symmetric with a zero diagonal.
After every tile a small JSON manifest (``deepmanifold.json`` inside the Zarr
directory, replaced atomically) records it as done, so an interrupted
computation resumes from the tiles already on disk.

InPCA of a :class:`DiskDistanceMatrix` never loads the matrix: the row means,
the exact ``||W||_F^2`` and every product ``W X`` (see
:func:`deepmanifold.geometry.inpca`) stream row panels of ``B`` rows, so the
memory is ``O(B T)`` (a 1024-row float32 panel of a 50,000-model matrix is
200 MB) plus the ``O(T k)`` solver state.

Storage: ``T^2`` values of ``dtype`` (float32 by default: 10 GB for
``T = 50,000``), uncompressed by default because Bhattacharyya distances
hardly compress and every InPCA pass reads the whole matrix.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from . import _eigen
from .distances import pairwise_distances
from .divergences import FLOOR
from .validation import check_model_stack

__all__ = ["DiskDistanceMatrix", "compute_distance_matrix_on_disk", "inpca_out_of_core"]

MANIFEST = "deepmanifold.json"
_FORMAT = 1


def _zarr():
    import zarr  # imported lazily: only the out-of-core mode needs it

    return zarr


def _fingerprint(X, T: int) -> str:
    """Cheap identity check of the models: shape, dtype and first/last model."""
    h = hashlib.sha1()
    h.update(repr((tuple(X.shape), str(np.asarray(X[0]).dtype))).encode())
    for i in {0, T // 2, T - 1}:
        h.update(np.ascontiguousarray(np.asarray(X[i])).tobytes())
    return h.hexdigest()


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def compute_distance_matrix_on_disk(
    X,
    path,
    *,
    block_size: int = 1024,
    log: bool = False,
    metric: str = "bhattacharyya",
    floor: float = FLOOR,
    dtype="float32",
    compressors=None,
    callback: Callable | None = None,
    resume: bool = True,
) -> "DiskDistanceMatrix":
    r"""Write the ``T x T`` distance matrix of ``X`` to a Zarr array, tile by tile.

    Parameters
    ----------
    X : array_like, shape (T, n, C)
        Model probabilities; anything sliceable along axis 0 that yields
        arrays (``np.memmap``, a Zarr/HDF5 array, ...). Only two blocks of
        ``block_size`` models are in memory at a time.
    path : str or path-like
        Directory of the Zarr (v3) array; created if needed.
    block_size : int, default 1024
        Tile (and Zarr chunk) edge ``B``; the last tile of a row is ragged.
        Memory: two ``(B, n, C)`` blocks, one ``B x B`` float64 tile and one
        ``B x T`` panel when streaming.
    log, metric, floor
        As for :func:`pairwise_distances`.
    dtype : {"float32", "float64"}, default "float32"
        Storage type (float32 halves the disk and I/O; relative rounding
        ``6e-8``).
    compressors : optional
        Passed to :func:`zarr.create_array` (default None: uncompressed).
    callback : callable, optional
        ``callback("distances", done, total)`` after every written tile
        (``done`` counts tiles already on disk from an earlier run too). An
        exception raised by it interrupts the computation; completed tiles
        stay recorded.
    resume : bool, default True
        If ``path`` holds a manifest for the same ``X`` and parameters,
        compute only the missing tiles. A manifest for different parameters
        raises ``ValueError``. ``resume=False`` starts afresh (overwrites).

    Returns
    -------
    DiskDistanceMatrix

    Notes
    -----
    ``ceil(T/B)(ceil(T/B) + 1)/2`` tiles are computed (the upper triangle);
    off-diagonal tiles are written twice (``D[I, J]`` and ``D[J, I] =
    D[I, J]^T``), so the stored matrix is exactly symmetric. A tile is marked
    done only after both writes, so a crash mid-tile recomputes that tile.
    """
    if isinstance(block_size, bool) or not isinstance(block_size, numbers.Integral) or block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    X, (T, _, _) = check_model_stack(X, "X")
    B = int(block_size)
    nb = -(-T // B)
    path = Path(path)
    params = {
        "format": _FORMAT, "T": T, "block_size": B, "metric": metric, "log": bool(log),
        "floor": float(floor), "dtype": dtype.name, "fingerprint": _fingerprint(X, T),
    }
    manifest_path = path / MANIFEST
    array, manifest = _open_or_create(path, params, resume=resume, compressors=compressors)
    done = {tuple(t) for t in manifest["done"]}
    total = nb * (nb + 1) // 2
    if callback is not None and done:
        callback("distances", len(done), total)
    for I in range(nb):
        rows = slice(I * B, min(T, (I + 1) * B))
        todo = [J for J in range(I, nb) if (I, J) not in done]
        if not todo:
            continue
        XI = np.asarray(X[rows])
        for J in todo:
            cols = slice(J * B, min(T, (J + 1) * B))
            if J == I:
                tile = pairwise_distances(XI, log=log, metric=metric, floor=floor)
            else:
                tile = pairwise_distances(XI, np.asarray(X[cols]), log=log, metric=metric, floor=floor)
            tile = tile.astype(dtype, copy=False)
            array[rows, cols] = tile
            if J != I:
                array[cols, rows] = np.ascontiguousarray(tile.T)
            done.add((I, J))
            manifest["done"] = sorted(done)
            manifest["complete"] = len(done) == total
            _write_json(manifest_path, manifest)
            if callback is not None:
                callback("distances", len(done), total)
    return DiskDistanceMatrix(path)


def _open_or_create(path: Path, params: dict, *, resume: bool, compressors):
    """The Zarr array and manifest at ``path``: resumed if they match ``params``, else new."""
    zarr = _zarr()
    manifest_path = path / MANIFEST
    if resume and manifest_path.exists():
        with open(manifest_path) as f:
            manifest = json.load(f)
        stored = {key: manifest.get(key) for key in params}
        if stored != params:
            diff = {key: (stored[key], params[key]) for key in params if stored[key] != params[key]}
            raise ValueError(f"{path} holds a distance matrix with different parameters "
                             f"(stored, requested): {diff}; pass resume=False to overwrite")
        return zarr.open_array(str(path), mode="r+"), manifest
    path.mkdir(parents=True, exist_ok=True)
    if manifest_path.exists():
        manifest_path.unlink()
    T, B = params["T"], params["block_size"]
    array = zarr.create_array(str(path), shape=(T, T), chunks=(B, B), dtype=params["dtype"],
                              compressors=compressors, fill_value=0.0, overwrite=True)
    manifest = dict(params, done=[], complete=False)
    _write_json(manifest_path, manifest)
    return array, manifest


class _ZarrSource(_eigen.PanelSource):
    """Row panels of a Zarr array, the next one read while the current one is used."""

    def __init__(self, array, block_size: int):
        self.array = array
        self.n = array.shape[0]
        self.block = block_size

    def panels(self, rows=None):
        rows = rows or self.block
        starts = list(range(0, self.n, rows))
        if not starts:
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            read = lambda s: self.array[s:min(self.n, s + rows), :]  # noqa: E731
            future = pool.submit(read, starts[0])
            for i, s in enumerate(starts):
                panel = future.result()
                if i + 1 < len(starts):
                    future = pool.submit(read, starts[i + 1])
                yield s, min(self.n, s + rows), panel


class DiskDistanceMatrix:
    """A symmetric ``T x T`` distance matrix stored as Zarr tiles.

    Obtain one from :func:`compute_distance_matrix_on_disk` or open an existing
    directory with ``DiskDistanceMatrix(path)``. Pass it to
    :func:`~deepmanifold.geometry.inpca` (or use :func:`inpca_out_of_core`).

    Attributes
    ----------
    path : Path
    shape : tuple (T, T)
    dtype : numpy.dtype
    block_size : int
    complete : bool
        Every tile has been written.
    nbytes_on_disk : int
        Bytes of the chunk files.
    """

    def __init__(self, path):
        self.path = Path(path)
        with open(self.path / MANIFEST) as f:
            self._manifest = json.load(f)
        self.array = _zarr().open_array(str(self.path), mode="r")
        self.shape = tuple(self.array.shape)
        self.dtype = np.dtype(self._manifest["dtype"])
        self.block_size = int(self._manifest["block_size"])
        self.complete = bool(self._manifest.get("complete", False))

    def __repr__(self) -> str:
        return (f"DiskDistanceMatrix({str(self.path)!r}, shape={self.shape}, dtype={self.dtype.name}, "
                f"block_size={self.block_size}, complete={self.complete})")

    @property
    def n_blocks(self) -> int:
        return -(-self.shape[0] // self.block_size)

    def missing_blocks(self) -> list[tuple[int, int]]:
        """Upper-triangle tiles ``(I, J)``, ``I <= J``, not yet written."""
        done = {tuple(t) for t in self._manifest["done"]}
        nb = self.n_blocks
        return [(I, J) for I in range(nb) for J in range(I, nb) if (I, J) not in done]

    @property
    def nbytes_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def __getitem__(self, key):
        return self.array[key]

    def to_numpy(self) -> np.ndarray:
        """The whole matrix in memory (small ``T`` only)."""
        self._require_complete()
        return np.asarray(self.array[:, :])

    def _require_complete(self):
        if not self.complete:
            raise ValueError(f"{self.path}: the distance matrix is incomplete "
                             f"({len(self.missing_blocks())} tiles missing); resume "
                             "compute_distance_matrix_on_disk first")

    def _source(self) -> _ZarrSource:
        return _ZarrSource(self.array, self.block_size)

    def _cached(self, key, compute):
        stats = self._manifest.get("stats", {})
        if key not in stats:
            stats[key] = compute()
            self._manifest["stats"] = stats
            try:  # best effort: a read-only directory just recomputes next time
                _write_json(self.path / MANIFEST, self._manifest)
            except OSError:
                pass
        return stats[key]

    def row_means(self) -> np.ndarray:
        """Row means ``r`` of the stored matrix (one streaming pass, then cached), shape (T,)."""
        self._require_complete()
        T = self.shape[0]
        return np.asarray(self._cached("row_means", lambda: (self._source().row_sums() / T).tolist()))

    def centred_sq_norm(self) -> float:
        """Exact ``||W||_F^2`` of ``W = -1/2 J D J`` over the whole matrix (one streaming pass, cached)."""
        r = self.row_means()
        return float(self._cached("centred_sq_norm", lambda: self._source().centred_sq_norm(r)))

    def _inpca_source(self, callback=None):
        self._require_complete()
        r = self.row_means()
        if callback is not None:
            callback("row_means", 1, 1)
        total = self.centred_sq_norm()
        if callback is not None:
            callback("centred_sq_norm", 1, 1)
        return self._source(), r, total


def inpca_out_of_core(path, n_components: int = 3, **kwargs):
    """InPCA of the distance matrix stored at ``path``; see :func:`inpca`.

    Equivalent to ``inpca(DiskDistanceMatrix(path), n_components, **kwargs)``
    (solver ``"randomized"`` by default: fewest passes over the disk).
    """
    from .embedding import inpca

    return inpca(DiskDistanceMatrix(path), n_components, **kwargs)
