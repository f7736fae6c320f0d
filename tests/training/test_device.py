"""Where a run trains: device resolution, the CPU default, and CUDA against the CPU when a GPU exists."""

import numpy as np
import pytest
import torch

from deepmanifold.data import load_digits, make_probes
from deepmanifold.training import augment_batch, resolve_device, train_run

CFG = dict(arch="mlp", arch_options=dict(width=16, depth=2), optimizer="sgd", lr=0.1, momentum=0.9,
           weight_decay=1e-4, batch_size=64, epochs=2, seed=3, checkpoints=6, schedule="cosine")

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(scope="module")
def ds():
    return load_digits(seed=0)


@pytest.fixture(scope="module")
def probes(ds):
    return make_probes(ds, n_train=60, n_test=50, seed=0)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected and resolve_device(None).type == expected
    for bad in ("tpu", "gpu", 3):
        with pytest.raises(ValueError, match="device must be 'auto', 'cpu' or 'cuda"):
            resolve_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no CUDA GPU"):
            resolve_device("cuda")
    else:
        with pytest.raises(ValueError, match="GPU"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_cpu_is_the_default_and_recorded(ds, probes):
    a = train_run(CFG, ds, probes)
    b = train_run(CFG, ds, probes, device="cpu")
    assert a.device == b.device == "cpu"
    for name in a.logp:
        np.testing.assert_array_equal(a.logp[name], b.logp[name])


def test_sweep_with_a_missing_gpu_fails_before_training(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from deepmanifold.sweeps import SpecError, load_spec, run_sweep

    spec = tmp_path / "s.toml"
    spec.write_text('[sweep]\nname = "s"\nstore = "st"\n[train]\nepochs = 1\n[grid]\narch = ["mlp"]\n'
                    'optimizer = ["sgd"]\n[optimizer.sgd]\nlr = 0.1\nmomentum = 0.9\n')
    with pytest.raises(SpecError, match="no CUDA GPU"):
        run_sweep(load_spec(spec), store=tmp_path / "st", device="cuda")
    assert not (tmp_path / "st").exists()


@cuda
def test_cuda_run_follows_the_cpu_run(ds, probes):
    cfg = dict(CFG, augmentation="none")
    cpu = train_run(cfg, ds, probes, device="cpu")
    gpu = train_run(cfg, ds, probes, device="cuda")
    assert gpu.device.startswith("cuda")
    np.testing.assert_array_equal(cpu.steps, gpu.steps)
    # same init, same minibatches: predictions agree up to GPU rounding
    np.testing.assert_allclose(np.exp(gpu.logp["test"]), np.exp(cpu.logp["test"]), atol=2e-3)


@cuda
def test_augmentation_draws_do_not_depend_on_the_device():
    x = torch.randn(5, 1, 8, 8)
    a = augment_batch(x, crop=True, hflip=True, generator=torch.Generator().manual_seed(0))
    b = augment_batch(x.cuda(), crop=True, hflip=True, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b.cpu())
