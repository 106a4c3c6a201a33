"""The training engine: its step against a hand-written SGD loop, its hooks, its metrics."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainables.training.engine import (
    Hooks,
    Precision,
    cycle,
    evaluate,
    predict,
    tensor_batches,
    train_one_epoch,
)


def _data(n: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, generator=g), torch.randint(0, 3, (n,), generator=g)


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))


def test_evaluate_is_top1_and_mean_per_class_percent():
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1, 1, 1])
    loader = DataLoader(TensorDataset(x, y), batch_size=3)
    assert evaluate(model, loader, "cpu") == pytest.approx(75.0)  # 3 of 4 right
    # class 0: 1/1, class 1: 2/3 -> (100 + 66.67) / 2
    assert evaluate(model, loader, "cpu", metric="mean_per_class", num_classes=2) == (
        pytest.approx(250 / 3))
    pred, target = predict(model, loader, "cpu")
    assert pred.tolist() == [0, 1, 0, 1] and target.tolist() == [0, 1, 1, 1]
    assert not model.training


def test_an_epoch_equals_the_hand_written_sgd_loop():
    x, y = _data()
    ours, theirs = _model(), _model()
    opt_a = torch.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    opt_b = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    stats = train_one_epoch(ours, opt_a, tensor_batches(x, y, 8, torch.Generator().manual_seed(1)),
                            "cpu")
    losses = []
    order = torch.randperm(24, generator=torch.Generator().manual_seed(1))
    for i in range(0, 24, 8):
        idx = order[i : i + 8]
        loss = F.cross_entropy(theirs(x[idx]), y[idx])
        opt_b.zero_grad()
        loss.backward()
        opt_b.step()
        losses.append(float(loss.detach()) * 8)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)
    assert stats.steps == 3 and stats.samples == 24
    assert stats.loss == pytest.approx(sum(losses) / 24, rel=1e-6)


def test_hooks_run_in_order_and_steps_bound_an_endless_iterator():
    x, y = _data()
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (s + 1))
    events: list[str] = []

    def before(loss: torch.Tensor) -> None:
        assert all(p.grad is not None for p in model.parameters())  # gradients are there
        events.append("before")

    def after() -> bool:
        events.append(f"after lr={opt.param_groups[0]['lr']:.3f}")
        return False

    batches = cycle(DataLoader(TensorDataset(x, y), batch_size=8))
    stats = train_one_epoch(model, opt, batches, "cpu", scheduler=sched, steps=5,
                            hooks=Hooks(before_step=before, after_step=after))
    assert stats.steps == 5 and not stats.stopped
    assert events[:4] == ["before", "after lr=0.050", "before", "after lr=0.033"]


def test_after_step_can_stop_the_loop_and_forward_can_be_replaced():
    x, y = _data()
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = []
    hooks = Hooks(after_step=lambda: len(calls) == 2,
                  forward=lambda net, images: calls.append(1) or net(images))
    stats = train_one_epoch(model, opt, DataLoader(TensorDataset(x, y), batch_size=4), "cpu",
                            hooks=hooks)
    assert stats.stopped and stats.steps == 2


def test_train_mode_hook_keeps_chosen_layers_in_eval():
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    bn_stats = copy.deepcopy(model[1].running_mean)
    x, y = _data()

    def frozen_bn(net: nn.Module) -> None:
        net.train()
        net[1].eval()

    train_one_epoch(model, torch.optim.SGD(model.parameters(), lr=0.1),
                    DataLoader(TensorDataset(x, y), batch_size=8), "cpu",
                    hooks=Hooks(train_mode=frozen_bn))
    assert torch.equal(model[1].running_mean, bn_stats)


def test_channels_last_and_bfloat16_autocast_train_a_conv_net():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 2))
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 2, (8,))
    before = copy.deepcopy(model.state_dict())
    stats = train_one_epoch(model, torch.optim.SGD(model.parameters(), lr=0.1),
                            DataLoader(TensorDataset(x, y), batch_size=4), "cpu",
                            precision=Precision(channels_last=True, amp=True))
    assert stats.steps == 2 and torch.isfinite(torch.tensor(stats.loss))
    assert not torch.equal(model[0].weight, before["0.weight"])
    acc = evaluate(model, [(x, y)], "cpu", precision=Precision(channels_last=True, amp=True))
    assert 0.0 <= acc <= 100.0


def test_empty_loader_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        next(cycle(DataLoader(TensorDataset(torch.zeros(0, 2), torch.zeros(0)), batch_size=2)))
    with pytest.raises(ValueError, match="no batches"):
        evaluate(nn.Linear(2, 2), [], "cpu")


def test_epoch_selection_picks_by_top1_by_metric_or_the_last_epoch():
    from trainables.training.engine import epoch_record

    # (metric, top1) per epoch: the metric peaks at epoch 1, top-1 at epoch 2
    epochs = [(60.0, 50.0), (55.0, 70.0), (58.0, 65.0)]
    picked = {}
    for rule in ("metric", "top1", "last"):
        history: list[dict] = []
        for i, (metric, top1) in enumerate(epochs, 1):
            history.append(epoch_record(i, 1.0, metric, history, top1=top1, select=rule))
        picked[rule] = (history[-1]["best_epoch"], history[-1]["accuracy_best"])
        assert history[-1]["accuracy_last"] == 58.0
    # the reported accuracy is always the dataset's metric, at the epoch the rule picks
    assert picked == {"metric": (1, 60.0), "top1": (2, 55.0), "last": (3, 58.0)}
    with pytest.raises(ValueError, match="epoch selection"):
        epoch_record(1, 1.0, 1.0, [], select="best")


def test_epoch_selection_by_metric_keeps_the_first_of_equal_epochs():
    from trainables.training.engine import epoch_record

    history: list[dict] = []
    for i, acc in enumerate([40.0, 50.0, 50.0, 45.0], 1):
        history.append(epoch_record(i, 1.0, acc, history))
    assert history[-1]["best_epoch"] == 2 and history[-1]["top1"] == 45.0
