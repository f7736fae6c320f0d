"""Theory beside practice: closed forms of deep learning's limits, to hold trained networks against.

- Infinite width: :func:`nngp`, :func:`ntk` (fully connected ReLU and erf networks, any
  depth), :func:`kernel_regression`, :func:`linearized_trajectory` (gradient flow of an
  infinitely wide network) with :func:`probabilities_from_outputs` and
  :func:`fit_temperature`, :func:`empirical_ntk` and :func:`kernel_distance` of a torch
  model; :func:`record_ntk_run` stores the kernel limit's path as a run ``"ntk"``;
  :class:`NTKMeasurement`, the recorder's ``"ntk"``, records how far a network's kernel
  moves from its start while it trains.
- Deep linear networks (Saxe, McClelland & Ganguli 2014, 2019): :func:`io_modes`,
  :func:`mode_strengths`, :func:`half_times`, :func:`linear_learning_curve`,
  :func:`mode_projections`, :func:`effective_initial_strengths`,
  :func:`predict_mode_learning`, :func:`crossing_times`, :func:`hierarchical_data`.
- Signal propagation (Poole et al. 2016; Schoenholz et al. 2017): :func:`q_star`,
  :func:`chi_1`, :func:`critical_sigma_w2`, :func:`depth_scales`, :func:`correlation_map`.
- The exponential learning rate (Li & Arora 2020): :func:`exp_lr_alpha`,
  :func:`exp_lr_schedule`.

Names are imported on first use, so ``import deepmanifold.theory`` stays light.
"""

from __future__ import annotations

from deepmanifold.utils import lazy_exports

_WHERE = {
    "nngp": "_kernels", "ntk": "_kernels", "nngp_and_ntk": "_kernels", "kernel_regression": "_kernels",
    "NeuralKernels": "_kernels", "gaussian_expectations": "_kernels",
    "linearized_trajectory": "_linearized", "LinearizedTrajectory": "_linearized",
    "probabilities_from_outputs": "_linearized", "fit_temperature": "_linearized", "TemperatureFit": "_linearized",
    "empirical_ntk": "_empirical", "kernel_distance": "_empirical",
    "record_ntk_run": "ntk_runs", "NTKRunResult": "ntk_runs", "NTKMeasurement": "measurement",
    "io_modes": "_deep_linear", "IOModes": "_deep_linear", "mode_strengths": "_deep_linear",
    "half_times": "_deep_linear", "linear_learning_curve": "_deep_linear", "mode_projections": "_deep_linear",
    "effective_initial_strengths": "_deep_linear", "predict_mode_learning": "_deep_linear",
    "ModeLearningPrediction": "_deep_linear", "crossing_times": "_deep_linear", "hierarchical_data": "_deep_linear",
    "q_star": "_signal", "chi_1": "_signal", "length_map": "_signal", "correlation_map": "_signal",
    "critical_sigma_w2": "_signal", "order_chaos_boundary": "_signal", "depth_scales": "_signal",
    "DepthScales": "_signal",
    "exp_lr_alpha": "_exp_lr", "exp_lr_schedule": "_exp_lr",
}

__all__ = sorted(_WHERE)

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
