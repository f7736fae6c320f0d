"""The study's questions on top of geometry and the store.

- :mod:`.checkpoints` -- which runs and checkpoints of a store are compared, their
  predictions as one lazy stack, and their distance matrix.
- :func:`build_picture` -- every checkpoint of a store in one InPCA picture.
- :mod:`.trajectories` -- runs resampled at equal progress, distances between them,
  tube widths, distance to the geodesic, dendrograms of configurations.
- :mod:`.factors` -- which training factors change the trajectory, with intervals.
- :mod:`.dimensionality`, :mod:`.agreement`, :mod:`.averaging`, :mod:`.speed`,
  :mod:`.corners` -- the other questions of the study.
- :mod:`.claims` -- the study's claims, their written rules and the judges.
- :func:`analyze_store` -- all of them, each claim measured and judged.
"""

from .agreement import (Mantel, ProcrustesFit, ProcrustesSummary, TrainTestAgreement, mantel, procrustes_fit,
                        procrustes_residual, train_test_agreement)
from .averaging import average_models, bhattacharyya_centroid, mean_model
from .checkpoints import (MAX_CHECKPOINT_MODELS, CheckpointDistances, checkpoint_distances, checkpoint_selection,
                          stacked_predictions, usable_runs)
from .claims import CLAIMS, RULES, ArchitectureEvidence, Claim, SpeedEvidence
from .corners import corner_convergence
from .dimensionality import DimensionalityReport, dimensionality, permutation_surrogate
from .embedding import build_picture
from .factors import (DEFAULT_FACTORS, FactorEffect, FactorPredictability, FactorReport, factor_effects,
                      factor_predictability)
from .findings import SCHEMA_VERSION, Analyses, Findings, Trajectories, analyze_store
from .picture import Picture, RunTrace
from .speed import (Milestones, RunProgress, SamePath, Spearman, SpeedByWidth, progress_milestones, same_path,
                    spearman, speed_by_width)
from .trajectories import (Resampled, TrajectorySet, config_dendrogram, distance_to_geodesic_by_progress,
                           mean_trajectory, resample_by_progress, trajectory_distance_matrix, tube_width)

__all__ = [
    "Analyses", "ArchitectureEvidence", "CLAIMS", "CheckpointDistances", "Claim", "DEFAULT_FACTORS",
    "DimensionalityReport", "FactorEffect", "FactorPredictability", "FactorReport", "Findings",
    "MAX_CHECKPOINT_MODELS", "Mantel", "Milestones", "Picture", "ProcrustesFit", "ProcrustesSummary", "RULES",
    "Resampled", "RunProgress", "RunTrace", "SCHEMA_VERSION", "SamePath", "Spearman", "SpeedByWidth",
    "SpeedEvidence", "TrainTestAgreement", "Trajectories", "TrajectorySet", "analyze_store", "average_models",
    "bhattacharyya_centroid", "build_picture", "checkpoint_distances", "checkpoint_selection", "config_dendrogram",
    "corner_convergence", "dimensionality", "distance_to_geodesic_by_progress", "factor_effects",
    "factor_predictability", "mantel", "mean_model", "mean_trajectory", "permutation_surrogate", "procrustes_fit",
    "procrustes_residual", "progress_milestones", "resample_by_progress", "same_path", "spearman",
    "speed_by_width", "stacked_predictions", "train_test_agreement", "trajectory_distance_matrix", "tube_width",
    "usable_runs",
]
