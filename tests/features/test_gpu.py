"""The GPU paths agree with the CPU ones (skipped without CUDA)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from deepmanifold.features import RFMClassifier, RFMRegressor, agop, nfa
from deepmanifold.models import build_model

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@needs_cuda
@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_rfm_on_the_gpu_matches_the_cpu(solver):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 8))
    y = X[:, 0] * X[:, 1] + 0.1 * rng.standard_normal(400)
    fits = {d: RFMRegressor(n_iter=2, solver=solver, device=d, random_state=0).fit(X, y) for d in ("cpu", "cuda")}
    np.testing.assert_allclose(fits["cuda"].M_, fits["cpu"].M_, atol=1e-6)
    np.testing.assert_allclose(fits["cuda"].predict(X[:50]), fits["cpu"].predict(X[:50]), atol=1e-5)
    labels = (y > 0).astype(int)
    probs = {d: RFMClassifier(n_iter=1, device=d, random_state=0).fit(X, labels).predict_proba(X[:50])
             for d in ("cpu", "cuda")}
    np.testing.assert_allclose(probs["cuda"], probs["cpu"], atol=1e-5)


@needs_cuda
@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_agop_and_nfa_on_the_gpu_match_the_cpu(arch):
    torch.manual_seed(0)
    model = build_model(arch, input_shape=(1, 8, 8), n_classes=10).eval()
    X = torch.rand(64, 1, 8, 8)
    on_gpu = copy.deepcopy(model).cuda()
    np.testing.assert_allclose(agop(on_gpu, X.cuda()), agop(model, X), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(nfa(on_gpu, X.cuda()).pearson, nfa(model, X).pearson, atol=1e-4)
