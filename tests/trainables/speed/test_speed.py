"""Speed trials on the tiny ResNet: export, DeepSparse compile and output check, timing, row."""

from __future__ import annotations

import os
import time

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")

import numpy as np
import pytest
import torch

from common import columns as C
from trainables import models
from trainables import speed as S
from trainables.entry.context import TrialContext
from trainables.models import masks

ARCH = "resnet_tiny"


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.build_model(ARCH, 10).eval()


def test_prune_random_hits_target_exactly_and_leaves_input_alone():
    model = _model()
    pruned = S.prune_random(model, 0.9, seed=1)
    assert masks.global_sparsity(model) == 0.0
    names = masks.prunable_names(pruned)
    zeros, total = masks.count_zeros(dict(pruned.named_parameters()), names)
    assert zeros == round(0.9 * total)
    with pytest.raises(ValueError, match="fraction"):
        S.prune_random(model, 90, seed=0)


@pytest.mark.parametrize("target", [0.5, 0.9, 0.98])
def test_prune_random_uniform_keeps_the_stem_dense_and_the_rest_equal(target):
    model = _model()
    pruned = S.prune_random(model, target, seed=2, profile="uniform")
    names = masks.prunable_names(pruned)
    params = dict(pruned.named_parameters())
    zeros, total = masks.count_zeros(params, names)
    assert zeros == round(target * total)
    assert torch.count_nonzero(params[names[0]]) == params[names[0]].numel()  # the stem
    # Every other layer at the same sparsity, up to the one weight of rounding.
    rest = sum(params[n].numel() for n in names[1:])
    for n in names[1:]:
        layer_zeros = int((params[n] == 0).sum())
        assert abs(layer_zeros - zeros * params[n].numel() / rest) <= 1, n


def test_prune_random_global_follows_the_initialisation_scale():
    # Two layers with weights of different scales: one global threshold empties the small one.
    model = torch.nn.Sequential(torch.nn.Linear(100, 1, bias=False), torch.nn.Linear(100, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.linspace(0.01, 0.02, 100))
        model[1].weight.copy_(torch.linspace(1.0, 2.0, 100))
    glob = S.prune_random(model, 0.5, profile="global")
    assert torch.count_nonzero(glob[0].weight) == 0 and torch.count_nonzero(glob[1].weight) == 100
    uni = S.prune_random(model, 0.5, profile="uniform")  # first layer = stem, left dense
    assert torch.count_nonzero(uni[0].weight) == 100 and torch.count_nonzero(uni[1].weight) == 0
    with pytest.raises(ValueError, match="profile"):
        S.prune_random(model, 0.5, profile="layerwise")


def test_macs_share_matches_a_hand_count():
    # 1x1 conv 3 -> 2 on a 2x2 image: 3 * 2 * 4 = 24 multiply-adds, half of the weights zero.
    # Linear 8 -> 4: 32 multiply-adds, 8 of its weights zero. (12 + 24) / (24 + 32).
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 2, 1, bias=False), torch.nn.Flatten(), torch.nn.Linear(8, 4)
    )
    with torch.no_grad():
        model[0].weight.view(-1)[:3] = 0
        model[2].weight.view(-1)[:8] = 0
    assert S.macs_share(model, image_size=2) == pytest.approx(36 / 56)
    assert S.macs_share(torch.nn.Conv2d(3, 4, 3, groups=1), 5) == pytest.approx(1.0)


def test_onnx_sparsity_counts_weights_the_exporter_stored_once(tmp_path):
    # The exporter stores identical tensors once (two all-zero convs -> one initializer and an
    # Identity): every conv must still count, as in PyTorch.
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=1),
        torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1),
    ).eval()
    with torch.no_grad():
        model[1].weight.zero_()
        model[3].weight.zero_()
    path = tmp_path / "zeros.onnx"
    torch.onnx.export(model, (torch.randn(1, 3, 8, 8),), str(path), dynamo=False,
                      opset_version=17)
    expected = 100.0 * 2 * 8 * 8 * 9 / (3 * 8 * 9 + 2 * 8 * 8 * 9)
    assert S.onnx_sparsity(path) == pytest.approx(expected)


def test_export_compile_and_outputs_match(tmp_path):
    sparse = S.prune_random(models.backbone(_model(), ARCH), 0.9, seed=0).eval()
    path = S.export_backbone_onnx(sparse, ARCH, tmp_path / "tiny.onnx", image_size=32)
    assert path.is_file() and not list(tmp_path.glob("*.tmp-*"))
    assert S.onnx_sparsity(path) == pytest.approx(90.0, abs=0.5)
    for batch in (1, 4):  # one dynamic-batch file serves every engine batch
        engine = S.compile_deepsparse(path, batch, num_cores=1)
        assert S.check_outputs_match(sparse, path, engine, atol=1e-3) < 1e-3
    other = S.prune_random(models.backbone(_model(seed=1), ARCH), 0.9, seed=0)
    with pytest.raises(ValueError, match="differs from PyTorch"):
        S.check_outputs_match(other, path, engine)


def test_onnx_sparsity_of_dense_export_is_zero(tmp_path):
    path = S.export_backbone_onnx(_model(), ARCH, tmp_path / "dense.onnx")
    assert S.onnx_sparsity(path) == 0.0
    with pytest.raises(FileNotFoundError):
        S.onnx_sparsity(tmp_path / "missing.onnx")


def test_time_fn_counts_calls_and_orders_percentiles():
    calls = []

    def fake() -> None:
        calls.append(1)
        time.sleep(0.002)

    stats = S.time_fn(fake, warmup=2, reps=5)
    assert len(calls) == 7 and stats.reps == 5
    assert 2.0 <= stats.p10_ms <= stats.median_ms <= stats.p90_ms
    with pytest.raises(ValueError):
        S.time_fn(fake, warmup=0, reps=0)


SPEED_COLUMNS = [
    C.DS_MS_B1, C.DS_MS_B64, C.DS_DENSE_MS_B64, C.ORT_DENSE_MS_B64, C.TORCH_DENSE_MS_B64,
    C.SPEEDUP_INFERENCE, C.EPOCH_TIME_S, C.DENSE_EPOCH_TIME_S, C.SPEEDUP_EPOCH,
    C.ORT_DENSE_EPOCH_TIME_S, C.TORCH_DENSE_EPOCH_TIME_S, C.SPEEDUP_EPOCH_VS_ORT,
    C.SPEEDUP_EPOCH_VS_TORCH,
]


def tiny_spec(**overrides) -> S.SpeedSpec:
    kwargs = dict(
        arch=ARCH, method="magnitude", sparsity=90, batch=8, warmup=1, reps=2, num_cores=1,
        online_images=24, online_batches=2,
    )
    kwargs.update(overrides)
    return S.SpeedSpec(**kwargs)


def test_speed_trial_row_has_every_column():
    row = S.speed_trial(tiny_spec())
    for col in (*C.REQUIRED, *SPEED_COLUMNS, C.WEIGHTS, C.SPARSITY_MEASURED, C.BATCH,
                C.CPU_MODEL, C.NUM_CORES, C.DEEPSPARSE_ISA, C.DEEPSPARSE_VERSION):
        assert col in row, col
    for col in SPEED_COLUMNS:
        assert np.isfinite(row[col]) and row[col] > 0, col
    assert row[C.MODE] == "speed" and row[C.STATUS] == "finished"
    assert row[C.WEIGHTS] == "random" and row[C.NUM_CORES] == 1 and row[C.BATCH] == 8
    assert row[C.SPARSITY_PROFILE] == "uniform" and 0 < row[C.MACS_SHARE] < 0.2
    assert row[C.SPARSITY_MEASURED] == pytest.approx(90.0, abs=0.5)
    assert row[C.EPOCH_EXTRAPOLATED] and row[C.EPOCH_BATCHES] == 3
    # Synthetic images have no test split: the online runs time, but have no accuracy.
    assert 0 <= row[C.LOADER_SHARE] <= 1 and 0 <= row[C.DENSE_LOADER_SHARE] <= 1
    assert row[C.LOADER_WORKERS] == S.SpeedSpec.loader_workers and row[C.ONLINE_EPOCHS] == 1
    for col in (C.ONLINE_ACCURACY, C.DENSE_ONLINE_ACCURACY, C.ONLINE_ACCURACY_GAP):
        assert np.isnan(row[col]), col
    assert row[C.DEEPSPARSE_ISA].split(",")[0] in {"avx2", "avx512", "neon", "sve"}


def test_speed_trial_times_a_given_sparse_model():
    sparse = S.prune_random(_model(seed=3), 0.8, seed=0)
    row = S.speed_trial(tiny_spec(sparsity=80, load_model=lambda: sparse, online_baselines=False))
    assert row[C.WEIGHTS] == "trained" and row[C.SPARSITY_PROFILE] == "trained"
    assert row[C.SPARSITY_MEASURED] == pytest.approx(80.0, abs=1.0)


def test_speed_spec_validates():
    with pytest.raises(ValueError, match="percent"):
        tiny_spec(sparsity=0.9)
    with pytest.raises(ValueError, match="arch"):
        tiny_spec(arch="vgg")
    with pytest.raises(ValueError, match="profile"):
        tiny_spec(profile="layerwise")


def test_study_files_know_the_same_profiles():
    from search_spaces.schema import RANDOM_PROFILES

    assert RANDOM_PROFILES == S.PRUNE_PROFILES


def test_speed_defaults_are_the_study_defaults(tmp_path):
    """A SpeedSpec, or a speed trial spec without params, runs what a study runs by default."""
    from search_spaces.schema import SpeedSettings
    from search_spaces.trial import TrialSpec
    from trainables.entry.speed import speed_spec_from

    study = SpeedSettings()
    bare = TrialSpec(stage="speed", method="random_uniform", sparsity=90, arch=ARCH,
                     dataset="synthetic", seed=0, params=(("weights", "random"),))
    for spec in (S.SpeedSpec(arch=ARCH, method="gmp", sparsity=90),
                 speed_spec_from(bare, TrialContext(out_dir=str(tmp_path)))):
        assert spec.batch == max(study.batch_sizes)
        assert (spec.warmup, spec.reps) == (study.warmup, study.reps)
        assert spec.online_batches == study.online_batches
        assert spec.loader_workers == study.loader_workers
        assert S.trial.online_setup(spec, 32, 1).recipe.epochs == study.online_epochs
        assert spec.profile == study.random_profile


def test_a_backbone_trial_trains_online_on_its_datasets_splits(tmp_path):
    """The grid's recipe, epoch rule and augmentation reach the SpeedSpec; the dataset's
    own splits, class count and mirror rule come from the registry (digits: no flip)."""
    from search_spaces.recipe import Recipe
    from search_spaces.trial import TrialSpec
    from trainables.entry.speed import speed_spec_from

    recipe = Recipe(epochs=2, lr=0.05, batch_size=16, milestones=(10, 20))
    trial = TrialSpec(stage="speed", method="gmp", sparsity=90, arch=ARCH, dataset="digits",
                      seed=0, recipe=recipe, num_classes=10, metric="top1", image_size=32,
                      params=(("batch_sizes", (1, 16)), ("online_dataset", "digits"),
                              ("loader_workers", 3), ("epoch_selection", "top1"),
                              ("crop_scale", (0.6, 1.0)), ("weights", "trained")))
    spec = speed_spec_from(trial, TrialContext(out_dir=str(tmp_path)))
    assert (len(spec.online_dataset()), len(spec.online_test())) == (1257, 540)
    assert (spec.online_classes, spec.online_metric, spec.online_hflip) == (10, "top1", False)
    assert spec.online_recipe == recipe and spec.online_epoch_selection == "top1"
    assert spec.online_crop_scale == (0.6, 1.0) and spec.loader_workers == 3
    setup = S.trial.online_setup(spec, 32, 2)
    assert (setup.recipe.batch_size, setup.recipe.epochs, setup.loader_workers) == (16, 2, 3)
