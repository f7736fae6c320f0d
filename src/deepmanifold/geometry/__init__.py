"""Geometry of models in prediction space: pure math on probability arrays.

A *model* is an array of class probabilities ``(n, C)`` on a fixed, ordered set
of ``n`` samples; ``T`` models stack to ``(T, n, C)``. Works on arrays from any
framework; needs NumPy, SciPy and numba (torch for the CUDA path, zarr on disk).

- :func:`bhattacharyya`, :func:`pairwise_distances` -- intensive Bhattacharyya
  distance between two models or matching models, and between all pairs of two
  stacks (also Hellinger, Jensen-Shannon, symmetric KL), tiled over models;
  :data:`FLOOR`, :class:`ClampWarning` -- the one clamping rule of every
  Bhattacharyya coefficient (:mod:`deepmanifold.geometry.divergences`).
- :func:`inpca`, :class:`InPCAResult`, :func:`embedded_sq_distances` --
  intensive PCA with signed (time-like) axes and Gower out-of-sample projection;
  dense, Lanczos or randomised eigensolvers; weights per model; explained stress,
  fraction and distance.
- :func:`compute_distance_matrix_on_disk`, :class:`DiskDistanceMatrix`,
  :func:`inpca_out_of_core` -- the distance matrix in Zarr blocks on disk
  (resumable), InPCA streaming those blocks.
- :func:`landmark_inpca`, :func:`landmark_error` -- landmark (Nystrom) InPCA for
  millions of models, and its error against exact InPCA.
- :class:`ModelStack` -- several arrays (e.g. one memmap per run) as one model axis.
- :func:`check_probabilities`, :func:`check_distance_matrix`, :func:`check_labels`
  -- the input checks every room uses (:mod:`deepmanifold.geometry.validation`).
- :func:`ignorance`, :func:`truth`, :func:`geodesic`, :func:`progress`,
  :func:`distance_to_geodesic`, :func:`progress_and_distance` -- the
  ignorance-to-truth geodesic and where a model lies along it (progress by the
  summed Bhattacharyya angle, the reference study's definition, or by ``d_B``);
  :data:`PROGRESS_METHODS` -- the two definitions; :func:`geodesic_between` --
  the geodesic between any two models;
  :func:`geodesic_coefficients`, :func:`progress_from_coefficients`,
  :func:`distance_to_geodesic_point` -- the same from the ``2n`` numbers per
  model that locate it.

References: J. Mao et al., PNAS 121 (12), 2024; K. N. Quinn et al., PNAS 116 (28), 2019.
"""

from .distances import BACKENDS, METRICS, PRECISIONS, pairwise_distances
from .divergences import FLOOR, ClampWarning, bhattacharyya
from .geodesics import (distance_to_geodesic, distance_to_geodesic_point, geodesic, geodesic_between,
                        geodesic_coefficients, ignorance, progress, progress_and_distance,
                        progress_from_coefficients, truth)
from .sources import ModelStack
from .validation import (PROGRESS_METHODS, check_distance_matrix, check_labels, check_probabilities,
                         check_progress_method)
from .embedding import InPCAResult, embedded_sq_distances, inpca
from .landmark import LandmarkError, LandmarkInPCAResult, landmark_error, landmark_inpca
from .outofcore import DiskDistanceMatrix, compute_distance_matrix_on_disk, inpca_out_of_core

__all__ = [
    "BACKENDS",
    "FLOOR",
    "DiskDistanceMatrix",
    "LandmarkError",
    "LandmarkInPCAResult",
    "compute_distance_matrix_on_disk",
    "inpca_out_of_core",
    "landmark_error",
    "landmark_inpca",
    "METRICS",
    "ModelStack",
    "PRECISIONS",
    "PROGRESS_METHODS",
    "geodesic_coefficients",
    "progress_from_coefficients",
    "ClampWarning",
    "InPCAResult",
    "bhattacharyya",
    "check_distance_matrix",
    "check_labels",
    "check_probabilities",
    "check_progress_method",
    "distance_to_geodesic",
    "distance_to_geodesic_point",
    "embedded_sq_distances",
    "geodesic",
    "geodesic_between",
    "ignorance",
    "inpca",
    "pairwise_distances",
    "progress",
    "progress_and_distance",
    "truth",
]
