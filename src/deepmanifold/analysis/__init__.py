"""The study's questions on top of geometry and the store.

- :func:`build_picture` -- every checkpoint of a store in one InPCA picture.
- :mod:`.trajectories` -- runs resampled at equal progress, distances between them,
  tube widths, distance to the geodesic, dendrograms of configurations.
- :mod:`.factors` -- which training factors change the trajectory, with intervals.
- :mod:`.dimensionality`, :mod:`.agreement`, :mod:`.averaging`, :mod:`.speed`,
  :mod:`.corners` -- the other questions of the study.
- :func:`analyze_store` -- all of them, each claim judged by a written rule.
"""

from .agreement import mantel, procrustes_residual, train_test_agreement
from .averaging import average_models, bhattacharyya_centroid, mean_model
from .corners import corner_convergence
from .dimensionality import DimensionalityReport, dimensionality, permutation_surrogate
from .embedding import build_picture, usable_runs
from .factors import DEFAULT_FACTORS, FactorEffect, FactorReport, factor_effects, factor_predictability
from .findings import Claim, Findings, analyze_store
from .picture import Picture, RunTrace
from .speed import progress_milestones, same_path, spearman, speed_by_width
from .trajectories import (Resampled, TrajectorySet, config_dendrogram, distance_to_geodesic_by_progress,
                           mean_trajectory, resample_by_progress, trajectory_distance_matrix, tube_width)

__all__ = [
    "Claim", "DEFAULT_FACTORS", "DimensionalityReport", "FactorEffect", "FactorReport", "Findings", "Picture",
    "Resampled", "RunTrace", "TrajectorySet", "analyze_store", "average_models", "bhattacharyya_centroid",
    "build_picture", "config_dendrogram", "corner_convergence", "dimensionality",
    "distance_to_geodesic_by_progress", "factor_effects", "factor_predictability", "mantel", "mean_model",
    "mean_trajectory", "permutation_surrogate", "procrustes_residual", "progress_milestones",
    "resample_by_progress", "same_path", "spearman", "speed_by_width", "train_test_agreement",
    "trajectory_distance_matrix", "tube_width", "usable_runs",
]
