"""The contract of every ``FORMATS`` entry, parametrized over the registry: its sample files
(``FORMAT_SAMPLES``) round-trip through ``load_checkpoint`` and are detected as that format;
and a file in no known format says what it holds and what each format expects."""

from __future__ import annotations

import pytest
import torch

from tests.trainables.checkpoints.samples import (
    FORMAT_SAMPLES,
    amc_name,
    assert_same_weights,
    fake_state_dict,
    mobilenet_sd,
    write_mobilenet_acdc_wrapped,
    write_mobilenet_amc,
    write_mobilenet_gmp_reference,
    write_mobilenet_mfac,
    write_mobilenet_str,
)
from trainables import checkpoints as ck


def _format_cases() -> list:
    cases = []
    for fmt in ck.FORMATS.names():  # the registry itself: a new format is covered at once
        for writer in FORMAT_SAMPLES.get(fmt) or [None]:
            name = writer.__name__ if writer else "no_sample"
            cases.append(pytest.param(fmt, writer, id=f"{fmt}-{name}"))
    return cases


@pytest.mark.parametrize("fmt, writer", _format_cases())
def test_every_format_round_trips_and_is_detected_as_itself(tmp_path, fmt, writer):
    if writer is None:
        pytest.fail(f"checkpoint format {fmt!r} has no sample writer: add one to FORMAT_SAMPLES")
    path = tmp_path / f"{fmt}.pt"
    want = writer(path)

    raw = torch.load(path, weights_only=True)
    assert ck.FORMATS.get(fmt).meta["detect"](raw)
    assert ck.detect_format(raw) == fmt  # and no format tried earlier claims it
    ckpt = ck.load_checkpoint(path)  # no arch given: from the file, or inferred

    assert ckpt.format == fmt
    assert ckpt.arch == want.arch
    assert ckpt.path == str(path)
    assert ckpt.upstream_dataset == want.upstream_dataset
    assert_same_weights(ckpt.state_dict, want.state_dict)
    assert ckpt.sparsity == pytest.approx(want.sparsity)
    prunable = want.masked or ck.prunable_weight_names(want.state_dict)
    assert set(ckpt.masks) == set(prunable)
    for name in prunable:
        w = want.state_dict[name]
        assert ckpt.masks[name].dtype == torch.bool and torch.equal(ckpt.masks[name], w != 0)
        assert ckpt.layer_sparsity[name] == pytest.approx(100.0 * float((w == 0).sum()) / w.numel())
    assert ckpt.num_classes == want.state_dict["fc.weight"].shape[0]


def test_unknown_format_lists_keys_and_formats(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({"weights_blob": [1, 2], "note": "hello"}, path)
    with pytest.raises(ValueError) as err:
        ck.load_checkpoint(path)
    message = str(err.value)
    assert str(path) in message
    assert "'weights_blob'" in message and "'note'" in message
    for name in ("reference", "sparseml", "torchvision", "rigl_tf_port"):
        assert name in message
    assert "model_config" in message  # what the reference format expects


def test_non_dict_file_is_unknown_format(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(ValueError, match="top-level list"):
        ck.load_checkpoint(path)


def test_reference_mobilenet_names_map_onto_mobilenet_v1(tmp_path):
    sd = fake_state_dict("mobilenet_v1")
    path = tmp_path / "mobilenet.pt"
    renamed = {k.replace("features.", "model.", 1): v for k, v in sd.items()}
    ck.save_reference_checkpoint(path, renamed, "mobilenet", "imagenet")
    ckpt = ck.load_checkpoint(path)
    assert ckpt.arch == "mobilenet_v1" and set(ckpt.state_dict) == set(sd)


# ---- MobileNetV1 layouts ------------------------------------------------------------------------


@pytest.mark.parametrize("writer", [write_mobilenet_gmp_reference, write_mobilenet_acdc_wrapped,
                                    write_mobilenet_mfac, write_mobilenet_str,
                                    write_mobilenet_amc])
def test_every_mobilenet_layout_builds_mobilenet_v1_and_runs(tmp_path, writer):
    path = tmp_path / "m.pt"
    want = writer(path)
    ckpt = ck.load_checkpoint(path, arch="mobilenet_v1", expect_sparsity=want.sparsity)
    net = ck.build_backbone_model(ckpt, num_classes=5).eval()
    assert torch.equal(net.features[13][3].weight.detach(), want.state_dict["features.13.3.weight"])
    with torch.no_grad():
        assert net(torch.randn(2, 3, 64, 64)).shape == (2, 5)


def test_amc_half_flops_widths_are_refused_naming_the_shapes(tmp_path):
    sd, _ = mobilenet_sd()
    sd = {amc_name(k): v for k, v in sd.items()}
    sd["conv1.0.weight"] = torch.zeros(24, 3, 3, 3)  # AMC's 0.5-FLOPs profile: 24 stem filters
    path = tmp_path / "amc.pt"
    torch.save({"model_config": {"arch": "mobilenet_amc", "dataset": "imagenet"},
                "model_state_dict": sd}, path)
    with pytest.raises(ValueError, match=r"features\.0\.0\.weight: checkpoint \[24, 3, 3, 3\]"):
        ck.load_checkpoint(path)
