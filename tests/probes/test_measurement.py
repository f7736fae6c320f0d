"""The layer measurements record, per checkpoint and layer, what the array functions say of the model then."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from deepmanifold.models import build_model
from deepmanifold.probes import (CollapseMeasurement, class_balanced_sample, effective_rank, layer_representations,
                                 neural_collapse, representation_layers)
from deepmanifold.store import Store
from deepmanifold.training import Recorder
from deepmanifold.training.config import validate_config
from deepmanifold.training.measurements import get_measurement


def _probes(n=60, C=3):
    g = torch.Generator().manual_seed(0)
    return {"train": (torch.rand(n, 1, 4, 4, generator=g), torch.arange(n) % C),
            "test": (torch.rand(n // 2, 1, 4, 4, generator=g), torch.arange(n // 2) % C)}


def _model(C=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12, bias=False), nn.BatchNorm1d(12), nn.ReLU(),
                         nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, C))


def _train(model, x, y, steps=5):
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    model.train()
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_default_layers_are_taken_after_their_activation():
    model = _model()
    layers = representation_layers(model)
    assert list(layers) == ["1", "4", "6"]
    assert layers["1"] is model[3] and layers["4"] is model[5] and layers["6"] is model[6]  # ReLU, Tanh, head
    mixer = build_model("convmixer", (1, 8, 8), 10, width=8, depth=1)
    chosen = representation_layers(mixer)
    assert all(isinstance(chosen[name], nn.GELU) for name in chosen if name != "head.2")
    assert chosen["head.2"] is mixer.head[2]


def test_named_layers_and_unknown_names():
    model = _model()
    assert representation_layers(model, ["2", "4"]) == {"2": model[2], "4": model[4]}
    with pytest.raises(ValueError, match=r"unknown layer 'nope'.*'1', '4', '6'"):
        representation_layers(model, ["nope"])
    with pytest.raises(ValueError, match="no nn.Linear or nn.Conv2d"):
        representation_layers(nn.Sequential(nn.ReLU()))


def test_representations_are_the_post_activation_outputs():
    model = _model().eval()
    x = torch.rand(10, 1, 4, 4)
    reps, out = layer_representations(model, x, batch_size=3)
    with torch.no_grad():
        h1 = model[3](model[2](model[1](model[0](x))))
        h2 = model[5](model[4](h1))
        np.testing.assert_allclose(reps["1"], h1.numpy(), atol=1e-6)
        np.testing.assert_allclose(reps["4"], h2.numpy(), atol=1e-6)
        np.testing.assert_allclose(out, model(x).numpy(), atol=1e-6)
    assert all(not m._forward_hooks for m in model.modules())  # hooks removed


def test_a_shared_activation_module_is_refused():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 4), relu, nn.Linear(4, 4), relu, nn.Linear(4, 2))
    with pytest.raises(ValueError, match="runs 2 times per forward pass"):
        layer_representations(model, torch.rand(3, 1, 4, 4))


def test_class_balanced_sample_takes_the_first_of_each_class():
    labels = np.array([2, 0, 2, 1, 0, 2, 2])
    np.testing.assert_array_equal(class_balanced_sample(labels, 2), [0, 1, 2, 3, 4])
    with pytest.raises(ValueError, match="samples_per_class"):
        class_balanced_sample(labels, 0)


def test_collapse_is_recorded_per_checkpoint_and_layer(tmp_path):
    probes, model = _probes(), _model()
    x, y = probes["train"]
    measurement = CollapseMeasurement(samples_per_class=15)
    snapshots = []
    with Recorder(tmp_path / "s", probes, {"arch": "mlp", "seed": 0}, run_id="r", measurements=[measurement]) as rec:
        for step in (0, 5, 10):
            if step:
                _train(model, x, y)
            snapshots.append(copy.deepcopy(model).eval())
            rec.checkpoint(model, step)
    store = Store(tmp_path / "s")
    record = store.record("r")
    assert record.info["measurement_info"]["collapse"]["layers"] == ["1", "4", "6"]
    idx = class_balanced_sample(y.numpy(), 15)
    labels = y.numpy()[idx]
    nc1, nc3, nc4 = (store.array("r", f"collapse_{k}") for k in ("nc1", "nc3", "nc4"))
    erank = store.array("r", "collapse_effective_rank")
    assert nc1.shape == (3, 3)
    for k, snap in enumerate(snapshots):
        reps, out = layer_representations(snap, x[idx])
        decisions = out.argmax(1)
        for j, name in enumerate(["1", "4"]):
            ref = neural_collapse(reps[name], labels, predictions=decisions)
            assert nc1[k, j] == pytest.approx(ref.nc1, rel=1e-4)
            assert nc4[k, j] == pytest.approx(ref.nc4)
            assert erank[k, j] == pytest.approx(effective_rank(reps[name]), rel=1e-4)
        head = snap[6]
        ref = neural_collapse(reps["4"], labels, (head.weight.detach().double().numpy(),
                                                   head.bias.detach().double().numpy()))
        assert nc3[k, 1] == pytest.approx(ref.nc3, rel=1e-4)  # the head reads the Tanh layer
        assert math.isnan(nc3[k, 0]) and math.isnan(nc3[k, 2])
    assert "no linear classifier" in record.info["measurement_info"]["collapse"]["nan"]["1: nc3"]


def test_constant_activations_record_nan_with_the_reason_and_the_predictions(tmp_path):
    probes, model = _probes(), _model()
    with torch.no_grad():
        model[4].weight.zero_()
        model[4].bias.fill_(0.5)  # the Tanh layer is constant: no between-class variance, no rank
    with Recorder(tmp_path / "s", probes, {"arch": "mlp", "seed": 0}, run_id="r",
                  measurements=[CollapseMeasurement(samples_per_class=10)]) as rec:
        rec.checkpoint(model.eval(), 0)
        rec.checkpoint(model.eval(), 1)
    store = Store(tmp_path / "s")
    nc1, erank = store.array("r", "collapse_nc1"), store.array("r", "collapse_effective_rank")
    assert np.isnan(nc1[:, 1]).all() and np.isnan(erank[:, 1]).all()
    assert np.isfinite(nc1[:, 0]).all()
    nan = store.record("r").info["measurement_info"]["collapse"]["nan"]
    assert "class means coincide" in nan["4: nc1"] and "do not vary" in nan["4: effective_rank"]
    assert store.logp("r", "train").shape[0] == 2


def test_an_unknown_layer_drops_the_measurement_not_the_run(tmp_path):
    probes, model = _probes(), _model()
    with Recorder(tmp_path / "s", probes, {"arch": "mlp", "seed": 0}, run_id="r",
                  measurements=[CollapseMeasurement(layers=["9"])]) as rec:
        rec.checkpoint(model.eval(), 0)
    store = Store(tmp_path / "s")
    assert "unknown layer '9'" in store.record("r").info["measurement_errors"]["collapse"]
    assert store.logp("r", "test").shape == (1, 30, 3)


def test_options_come_from_the_config_and_bad_ones_are_refused_before_training():
    base = {"arch": "mlp", "arch_options": {}, "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0,
            "batch_size": 8, "epochs": 1, "seed": 0, "checkpoints": 2, "schedule": "constant"}
    cfg = validate_config({**base, "measurements": ["collapse"],
                           "measurement_options": {"collapse": {"samples_per_class": 7}}})
    assert cfg["measurement_options"] == {"collapse": {"samples_per_class": 7}}
    assert get_measurement("collapse", cfg["measurement_options"]["collapse"]).samples_per_class == 7
    with pytest.raises(ValueError, match="samples_per_class must be an integer"):
        validate_config({**base, "measurements": ["collapse"],
                         "measurement_options": {"collapse": {"samples_per_class": 0}}})
    with pytest.raises(ValueError, match="unexpected keyword argument 'bins'"):
        validate_config({**base, "measurements": ["infoplane"], "measurement_options": {"infoplane": {"bins": 3}}})
    with pytest.raises(ValueError, match="not in config\\['measurements'\\]"):
        validate_config({**base, "measurement_options": {"capacity": {}}})


def test_capacity_and_information_plane_are_recorded_per_checkpoint_and_layer(tmp_path):
    from deepmanifold.probes import (CapacityMeasurement, InformationPlaneMeasurement, information_plane,
                                     manifold_capacity)

    probes, model = _probes(), _model()
    x, y = probes["train"]
    snapshots = []
    with Recorder(tmp_path / "s", probes, {"arch": "mlp", "seed": 0}, run_id="r",
                  measurements=[CapacityMeasurement(samples_per_class=12, n_t=30),
                                InformationPlaneMeasurement(samples_per_class=12, n_bins=5)]) as rec:
        for step in (0, 5):
            if step:
                _train(model, x, y)
            snapshots.append(copy.deepcopy(model).eval())
            rec.checkpoint(model, step)
    store = Store(tmp_path / "s")
    idx = class_balanced_sample(y.numpy(), 12)
    labels = y.numpy()[idx]
    alpha, radius = store.array("r", "capacity_alpha"), store.array("r", "capacity_radius")
    ixt, ity = store.array("r", "infoplane_ixt_binning"), store.array("r", "infoplane_ity_kde")
    assert alpha.shape == ixt.shape == (2, 3)
    for k, snap in enumerate(snapshots):
        reps, _ = layer_representations(snap, x[idx])
        for j, name in enumerate(["1", "4", "6"]):
            X = reps[name]
            ref = manifold_capacity([X[labels == c] for c in range(3)], n_t=30, random_state=0)
            assert alpha[k, j] == pytest.approx(ref.capacity, rel=1e-5)
            assert radius[k, j] == pytest.approx(ref.radius, rel=1e-5)
            bounds = (-1.0, 1.0) if name == "4" else None  # the Tanh layer is binned over tanh's range
            binned = information_plane(X, labels, method="binning", n_bins=5, bin_range=bounds)
            assert ixt[k, j] == pytest.approx(float(binned.i_xt[0]), rel=1e-5)
            assert ity[k, j] == pytest.approx(float(information_plane(X, labels, method="kde").i_ty[0]), rel=1e-5)


class _Log(nn.Module):
    def forward(self, x):
        return torch.log(x)  # -inf where the ReLU before it is 0


class _Finite(nn.Module):
    def forward(self, x):
        return torch.nan_to_num(x, neginf=-30.0)


def test_non_finite_activations_record_nan_with_the_reason(tmp_path):
    probes = _probes()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), _Log(), _Finite(), nn.Linear(12, 3))
    with torch.no_grad():
        model[1].bias[:6] = -100.0  # six units are always 0 after the ReLU: log gives -inf
    measurement = CollapseMeasurement(layers=["3", "4"], samples_per_class=10)
    with Recorder(tmp_path / "s", probes, {"arch": "mlp", "seed": 0}, run_id="r", measurements=[measurement]) as rec:
        rec.checkpoint(model.eval(), 0)
    store = Store(tmp_path / "s")
    nc1 = store.array("r", "collapse_nc1")
    assert np.isnan(nc1[0, 0]) and np.isfinite(nc1[0, 1])
    assert "non-finite activations" in store.record("r").info["measurement_info"]["collapse"]["nan"]["3: nc1"]


def test_every_measures_the_first_every_kth_and_the_last_checkpoint(tmp_path):
    probes, model = _probes(), _model()
    x, y = probes["train"]
    steps = [0, 1, 2, 3, 4, 5, 7]
    with Recorder(tmp_path / "s", probes, {"arch": "mlp", "seed": 0}, run_id="r", last_step=7,
                  measurements=[CollapseMeasurement(samples_per_class=10, every=3)]) as rec:
        for step in steps:
            if step:
                _train(model, x, y, steps=1)
            rec.checkpoint(model.eval(), step)
            if step == 7:
                idx = class_balanced_sample(y.numpy(), 10)
                reps, out = layer_representations(model.eval(), x[idx])
                last = neural_collapse(reps["1"], y.numpy()[idx], predictions=out.argmax(1)).nc1
    nc1 = Store(tmp_path / "s").array("r", "collapse_nc1")
    measured = np.isfinite(nc1).all(axis=1)
    np.testing.assert_array_equal(measured, [True, False, False, True, False, False, True])  # 0, 3 and the last
    assert nc1[-1, 0] == pytest.approx(last, rel=1e-4)
    assert Store(tmp_path / "s").logp("r", "train").shape[0] == 7  # predictions at every checkpoint
