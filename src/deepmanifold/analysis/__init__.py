"""The study's questions on top of geometry and the store.

- :mod:`.checkpoints` -- which runs and checkpoints of a store are compared, their
  predictions as one lazy stack, and their distance matrix.
- :func:`build_picture` -- every checkpoint of a store in one InPCA picture.
- :mod:`.trajectories` -- runs resampled at equal progress on one grid, distances between
  them (also without resampling: Fréchet), tube widths, distance to the geodesic, dendrograms.
- The claims, each measurement with its rule and judge beside it: :mod:`.dimensionality`
  (one manifold), :mod:`.factors` (architecture against the rest), :mod:`.speed` (wider,
  faster, same path), :mod:`.corners` (far starts join the manifold), :mod:`.agreement`
  (train and test give one picture); :mod:`.claims` collects them, :mod:`.verdicts` is
  what a rule gives.
- Descriptions: :mod:`.averaging` (means of final models), :mod:`.outliers` (runs left
  apart), :mod:`.tangent` (the tangent experiment), :mod:`.paths` (trajectory-level InPCA,
  distance to the geodesic by group, the joint train+test embedding, the heatmap).
- :func:`analyze_store` -- all of them on a store, every claim judged on both probe sets.
"""

from .agreement import EqualProgressAgreement, Mantel, equal_progress_agreement, mantel
from .averaging import (FinalModelAverages, ModelAverages, average_final_models, average_models,
                        bhattacharyya_centroid, mean_model)
from .checkpoints import (MAX_CHECKPOINT_MODELS, CheckpointDistances, checkpoint_distances, checkpoint_selection,
                          stacked_predictions, usable_runs)
from .claims import CLAIMS, RULES, Claim
from .corners import CornerBand, corner_band, corner_convergence
from .dimensionality import DimensionalityReport, ManifoldEvidence, manifold_evidence
from .embedding import build_picture
from .factors import FactorAnalysis, FactorEffect, FactorReport, factor_analysis, factor_effects
from .findings import SCHEMA_VERSION, Analyses, Findings, ProbeFindings, Trajectories, analyze_store
from .outliers import OutlierFilter, train_error_outliers
from .paths import geodesic_distance_by_group, joint_embedding, trajectory_heatmap, trajectory_inpca
from .picture import Picture, RunTrace
from .speed import Milestones, SpeedAnalysis, progress_milestones, speed_analysis, speed_by_width
from .tangent import TangentPicture, tangent_picture
from .trajectories import (Resampled, TrajectorySet, config_dendrogram, distance_to_geodesic_by_progress,
                           mean_trajectory, resample_by_progress, trajectory_distance_matrix, tube_width)
from .verdicts import Judgement

__all__ = [
    "Analyses", "CLAIMS", "CheckpointDistances", "Claim", "CornerBand", "DimensionalityReport",
    "EqualProgressAgreement", "FactorAnalysis", "FactorEffect", "FactorReport", "FinalModelAverages", "Findings",
    "Judgement", "MAX_CHECKPOINT_MODELS", "ManifoldEvidence", "Mantel", "Milestones", "ModelAverages",
    "OutlierFilter", "Picture", "ProbeFindings", "RULES", "Resampled", "RunTrace", "SCHEMA_VERSION",
    "SpeedAnalysis", "TangentPicture", "Trajectories", "TrajectorySet", "analyze_store", "average_final_models",
    "average_models", "bhattacharyya_centroid", "build_picture", "checkpoint_distances", "checkpoint_selection",
    "config_dendrogram", "corner_band", "corner_convergence", "distance_to_geodesic_by_progress",
    "equal_progress_agreement", "factor_analysis", "factor_effects", "geodesic_distance_by_group",
    "joint_embedding", "manifold_evidence", "mantel", "mean_model", "mean_trajectory", "progress_milestones",
    "resample_by_progress", "speed_analysis", "speed_by_width", "stacked_predictions", "tangent_picture",
    "train_error_outliers", "trajectory_distance_matrix", "trajectory_heatmap", "trajectory_inpca", "tube_width",
    "usable_runs",
]
