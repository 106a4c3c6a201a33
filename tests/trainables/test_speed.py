"""Speed trials on the tiny ResNet: export, DeepSparse compile and output check, timing, row."""

from __future__ import annotations

import os
import time

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")

import numpy as np
import pytest
import torch

from reports import columns as C
from trainables import masks, models
from trainables import speed as S

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


def test_online_epoch_extrapolates_from_timed_batches():
    data = S.SyntheticImages(length=20, side=36, num_classes=3)
    net = models.backbone(_model(), ARCH).eval()
    timing = S.online_linear_epoch(net, data, 3, batch_size=8, max_batches=2, image_size=32)
    assert timing.epoch_batches == 3 and timing.timed_batches == 2 and timing.extrapolated
    assert timing.seconds == pytest.approx(3 * timing.median_batch_s)
    full = S.online_linear_epoch(net, data, 3, batch_size=8, image_size=32, warmup_batches=0)
    assert not full.extrapolated and full.timed_batches == 3


SPEED_COLUMNS = [
    C.DS_MS_B1, C.DS_MS_B64, C.DS_DENSE_MS_B64, C.ORT_DENSE_MS_B64, C.TORCH_DENSE_MS_B64,
    C.SPEEDUP_INFERENCE, C.EPOCH_TIME_S, C.DENSE_EPOCH_TIME_S, C.SPEEDUP_EPOCH,
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
    assert row[C.SPARSITY_MEASURED] == pytest.approx(90.0, abs=0.5)
    assert row[C.EPOCH_EXTRAPOLATED] and row[C.EPOCH_BATCHES] == 3
    assert row[C.DEEPSPARSE_ISA].split(",")[0] in {"avx2", "avx512", "neon", "sve"}


def test_speed_trial_times_a_given_sparse_model():
    sparse = S.prune_random(_model(seed=3), 0.8, seed=0)
    row = S.speed_trial(tiny_spec(sparsity=80, load_model=lambda: sparse, online_torch=False))
    assert row[C.WEIGHTS] == "trained"
    assert row[C.SPARSITY_MEASURED] == pytest.approx(80.0, abs=1.0)


def test_speed_spec_validates():
    with pytest.raises(ValueError, match="percent"):
        tiny_spec(sparsity=0.9)
    with pytest.raises(ValueError, match="arch"):
        tiny_spec(arch="vgg")
