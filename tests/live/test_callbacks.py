"""Recording users' own loops: the plain-loop schedule and the PyTorch Lightning callback, each on a real run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepmanifold.live import CheckpointSchedule
from deepmanifold.models import build_model
from deepmanifold.store import Store
from deepmanifold.store.live import live_runs
from deepmanifold.training import Recorder, checkpoint_steps


def _predictions(model, probe_inputs) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        out = torch.log_softmax(model(probe_inputs), dim=1).numpy()
    model.train()
    return out


def test_plain_loop_records_at_the_checkpoint_steps(digits, tmp_path):
    ds, probes = digits
    torch.manual_seed(0)
    model = build_model("mlp", ds.input_shape, ds.n_classes, width=16)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    recorder = Recorder(tmp_path / "s", probes, {"arch": "mlp", "optimizer": "sgd", "seed": 0}, "loop", dataset=ds)
    batch, epochs = 64, 2
    per_epoch = len(ds.y_train) // batch
    schedule = CheckpointSchedule(recorder, total_steps=epochs * per_epoch, checkpoints=8, steps_per_epoch=per_epoch)
    assert schedule(model, 0)
    gen = torch.Generator().manual_seed(0)
    step = 0
    for _ in range(epochs):
        order = torch.randperm(len(ds.y_train), generator=gen)
        for b in range(per_epoch):
            idx = order[b * batch:(b + 1) * batch]
            loss = torch.nn.functional.cross_entropy(model(ds.x_train[idx]), ds.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            recorded = schedule(model, step)
            assert recorded == (step in schedule.steps)
    final = _predictions(model, probes["test"].inputs(ds))
    result = recorder.close()
    np.testing.assert_array_equal(result.steps, checkpoint_steps(epochs * per_epoch, 8))
    np.testing.assert_allclose(result.epochs, result.steps / per_epoch)
    np.testing.assert_allclose(result.logp["test"][-1], final, atol=1e-6)  # the model as the loop left it
    assert result.metrics["test_acc"][-1] > 0.5 and Store(tmp_path / "s").has_run("loop")
    assert not schedule(model, step)  # recorded already
    with pytest.raises(ValueError, match="past the 42 steps"):
        schedule(model, 43)
    with pytest.raises(ValueError, match="total_steps must be an integer >= 1"):
        CheckpointSchedule(Recorder(None, probes, {}, dataset=ds), total_steps=0)


def _module(ds, fail_at: int | None = None):
    """A LightningModule around the zoo's MLP (PyTorch Lightning is the optional extra `lightning`)."""
    pl = pytest.importorskip("pytorch_lightning")

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = build_model("mlp", ds.input_shape, ds.n_classes, width=16)

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            if fail_at is not None and self.global_step == fail_at:
                raise RuntimeError("bad batch")
            x, y = batch
            return torch.nn.functional.cross_entropy(self(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    return Module()


def _fit(ds, recorder, module, epochs=2):
    import pytorch_lightning as pl

    from deepmanifold.live.lightning import LightningRecorder

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(ds.x_train, ds.y_train), batch_size=64,
                                         shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(0))
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[LightningRecorder(recorder, checkpoints=8)])
    trainer.fit(module, loader)
    return trainer, len(loader)


LIGHTNING_WARNINGS = pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated")


@LIGHTNING_WARNINGS
def test_lightning_callback_records_a_fit(digits, tmp_path):
    ds, probes = digits
    module = _module(ds)
    recorder = Recorder(tmp_path / "s", probes, {"arch": "mlp", "optimizer": "sgd", "seed": 0}, "pl", dataset=ds)
    trainer, per_epoch = _fit(ds, recorder, module)
    assert recorder.closed and Store(tmp_path / "s").has_run("pl") and live_runs(tmp_path / "s") == []
    result = recorder.result
    np.testing.assert_array_equal(result.steps, checkpoint_steps(2 * per_epoch, 8))
    assert result.steps[-1] == trainer.global_step
    np.testing.assert_allclose(result.epochs[-1], 2.0)
    np.testing.assert_allclose(result.logp["test"][-1], _predictions(module, probes["test"].inputs(ds)), atol=1e-6)
    assert result.metrics["test_acc"][-1] > 0.5 > result.metrics["test_acc"][0]


@LIGHTNING_WARNINGS
def test_lightning_fit_that_raises_commits_nothing(digits, tmp_path):
    ds, probes = digits
    recorder = Recorder(tmp_path / "s", probes, {"arch": "mlp"}, "pl", dataset=ds)
    with pytest.raises(RuntimeError, match="bad batch"):
        _fit(ds, recorder, _module(ds, fail_at=5))
    (run,) = live_runs(tmp_path / "s")
    assert run.status == "failed" and "bad batch" in run.state["message"] and run.n_checkpoints >= 2
    assert not Store(tmp_path / "s").has_run("pl")
