"""Checkpoint formats, safe loading, normalisation, sparsity checks, LTH-T and the CLI.

Every ``FORMATS`` entry is checked by one contract test parametrized over the registry: its
sample files (``FORMAT_SAMPLES``) round-trip through ``load_checkpoint`` and are detected as
that format.

Files are written by the tests from resnet_tiny with a known magnitude sparsity. Full-size
layouts (resnet18/50, mobilenet_v1) use stride-0 expanded tensors, which torch.save stores
as one element each, so their files stay a few kilobytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pickle
import re

import pytest
import torch
from torch import nn

from trainables import checkpoints as ck
from trainables.models import masks as masks_lib
from trainables import models

ARCH = "resnet_tiny"
NUM_CLASSES = 10
FRACTION = 0.8


def pruned_tiny(seed: int = 0, fraction: float = FRACTION, num_classes: int = NUM_CLASSES):
    """resnet_tiny with the smallest-|w| ``int(fraction * numel)`` entries of every prunable
    weight set to zero; returns (model, zeros, total) counted by hand."""
    torch.manual_seed(seed)
    model = models.build_model(ARCH, num_classes)
    zeros = total = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in masks_lib.prunable_names(model):
                k = int(fraction * p.numel())
                p.view(-1)[p.abs().flatten().argsort()[:k]] = 0.0
                zeros += k
                total += p.numel()
    return model, zeros, total


def fake_state_dict(arch: str, value: float = 0.5) -> dict[str, torch.Tensor]:
    """A full state dict of ``arch`` (1000 classes) whose tensors are stride-0 expansions."""
    with torch.device("meta"):
        template = models.build_model(arch, 1000).state_dict()
    return {k: torch.full((), value, dtype=v.dtype).expand(v.shape) for k, v in template.items()}


def assert_same_weights(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert set(got) == set(want)
    for k in want:
        assert torch.equal(got[k], want[k]), k


# ---- the contract of every FORMATS entry -----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Sample:
    """What ``load_checkpoint`` must give back for a file a sample writer wrote."""

    state_dict: dict[str, torch.Tensor]  # torchvision names, masks applied
    arch: str
    upstream_dataset: str | None
    sparsity: float  # percent, counted by hand when the file was built
    # the weights the file masks (a ticket: its convolutions); None: every prunable weight
    masked: tuple[str, ...] | None = None


def _tiny_sample(model: nn.Module, zeros: int, total: int, dataset: str | None) -> Sample:
    return Sample(dict(model.state_dict()), ARCH, dataset, 100.0 * zeros / total)


def write_reference(path) -> Sample:
    model, zeros, total = pruned_tiny()
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet")
    return _tiny_sample(model, zeros, total, "imagenet")


def write_reference_wrapped_module(path) -> Sample:
    model, zeros, total = pruned_tiny()
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet", wrapped=True, module_prefix=True)
    return _tiny_sample(model, zeros, total, "imagenet")


def write_sparseml(path) -> Sample:
    model, zeros, total = pruned_tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sd = model.state_dict()
    torch.save(
        {"state_dict": sd, "epoch": 7, "arch_key": ARCH, "optimizer": opt.state_dict()}, path
    )
    return _tiny_sample(model, zeros, total, None)


def write_torchvision(path) -> Sample:
    model, zeros, total = pruned_tiny()
    torch.save(model.state_dict(), path)  # no arch in the file: inferred from keys and shapes
    return _tiny_sample(model, zeros, total, None)


def _rigl_tf_name(key: str) -> str:
    """The reference's ResnetTF port name of a torchvision resnet50 key."""
    key = re.sub(r"^conv1\.", "initial_conv.conv.", key)
    key = re.sub(r"^bn1\.", "initial_conv.bn.", key)
    key = re.sub(r"^(layer\d)\.(\d+)\.downsample\.0\.", r"\1.block.\2.shortcut.conv.", key)
    key = re.sub(r"^(layer\d)\.(\d+)\.downsample\.1\.", r"\1.block.\2.shortcut.bn.", key)
    key = re.sub(r"^(layer\d)\.(\d+)\.conv(\d)\.", r"\1.block.\2.conv\3.conv.", key)
    return re.sub(r"^(layer\d)\.(\d+)\.bn(\d)\.", r"\1.block.\2.conv\3.bn.", key)


def write_rigl_tf_port(path) -> Sample:
    """resnet50 under TF-port names; the last block's convolutions are all zero."""
    sd = fake_state_dict("resnet50")
    prunable = ck.prunable_weight_names(sd)
    zeroed = [n for n in prunable if n.startswith("layer4.2.conv")]
    for n in zeroed:
        sd[n] = torch.zeros(()).expand(sd[n].shape)
    zeros = sum(sd[n].numel() for n in zeroed)
    total = sum(sd[n].numel() for n in prunable)
    torch.save(
        {
            "model_config": {"arch": "resnet50_rigl", "dataset": "imagenet"},
            "model_state_dict": {f"module.{_rigl_tf_name(k)}": v for k, v in sd.items()},
        },
        path,
    )
    return Sample(sd, "resnet50", "imagenet", 100.0 * zeros / total)


# ---- the paper's MobileNetV1 layouts, as the reference's three MobileNet classes name them ----


def _mobilenet_sd() -> tuple[dict[str, torch.Tensor], float]:
    """mobilenet_v1 (1000 classes) with its last pointwise convolution all zero, and the
    sparsity that gives (percent, over prunable weights)."""
    sd = fake_state_dict("mobilenet_v1")
    sd["features.13.3.weight"] = torch.zeros(()).expand(sd["features.13.3.weight"].shape)
    prunable = ck.prunable_weight_names(sd)
    total = sum(sd[n].numel() for n in prunable)
    return sd, 100.0 * sd["features.13.3.weight"].numel() / total


def _as_model_prefix(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {re.sub(r"^features\.", "model.", k): v for k, v in sd.items()}


def write_mobilenet_gmp_reference(path) -> Sample:
    """GMP (and dense) MobileNet as the reference converted them: model_config arch
    'mobilenet', Distiller's 'model.N' names, plain layers."""
    sd, sparsity = _mobilenet_sd()
    ck.save_reference_checkpoint(path, _as_model_prefix(sd), "mobilenet", "imagenet")
    return Sample(sd, "mobilenet_v1", "imagenet", sparsity)


def write_mobilenet_acdc_wrapped(path) -> Sample:
    """AC/DC MobileNet: the same names, layers wrapped with their masks, DataParallel prefix."""
    sd, sparsity = _mobilenet_sd()
    ck.save_reference_checkpoint(path, _as_model_prefix(sd), "mobilenet", "imagenet",
                                 wrapped=True, module_prefix=True)
    return Sample(sd, "mobilenet_v1", "imagenet", sparsity)


def write_mobilenet_mfac(path) -> Sample:
    """M-FAC MobileNet as its training code saves it: a 'state_dict' with 'module.model.N'
    names and no architecture named anywhere."""
    sd, sparsity = _mobilenet_sd()
    torch.save({"epoch": 100, "state_dict": {f"module.{k}": v
                                             for k, v in _as_model_prefix(sd).items()}}, path)
    return Sample(sd, "mobilenet_v1", None, sparsity)


def write_mobilenet_str(path) -> Sample:
    """STR MobileNet (reference arch 'mobilenet_str'): the classifier a bias-free 1x1
    convolution, and the stem still dense with its learned threshold beside it."""
    sd, _ = _mobilenet_sd()
    torch.manual_seed(0)
    stem = torch.randn(32, 3, 3, 3)
    threshold = torch.tensor([[0.0]])  # sigmoid(0) = 0.5: |w| <= 0.5 becomes zero
    fc = torch.randn(1000, 1024)
    raw = _as_model_prefix({**sd, "features.0.0.weight": stem,
                            "fc.weight": fc.reshape(1000, 1024, 1, 1)})
    del raw["fc.bias"]
    raw["model.0.0.sparseThreshold"] = threshold
    torch.save({"model_config": {"arch": "mobilenet_str", "dataset": "imagenet"},
                "model_state_dict": raw}, path)
    want = dict(sd)
    want["features.0.0.weight"] = torch.sign(stem) * torch.relu(stem.abs() - 0.5)
    want["fc.weight"], want["fc.bias"] = fc, torch.zeros(1000)
    prunable = ck.prunable_weight_names(want)
    zeros = sum(int((want[n] == 0).sum()) for n in prunable)
    total = sum(want[n].numel() for n in prunable)
    return Sample(want, "mobilenet_v1", "imagenet", 100.0 * zeros / total)


def _amc_name(key: str) -> str:
    key = re.sub(r"^features\.0\.", "conv1.", key)
    key = re.sub(r"^features\.(\d+)\.", lambda m: f"features.{int(m[1]) - 1}.", key)
    return re.sub(r"^fc\.", "classifier.0.", key)


def write_mobilenet_amc(path) -> Sample:
    """AMC MobileNet (reference arch 'mobilenet_amc'): conv1, features.I, classifier.0."""
    sd, sparsity = _mobilenet_sd()
    torch.save({"model_config": {"arch": "mobilenet_amc", "dataset": "imagenet"},
                "model_state_dict": {_amc_name(k): v for k, v in sd.items()}}, path)
    return Sample(sd, "mobilenet_v1", "imagenet", sparsity)


def write_lth_ticket(path) -> Sample:
    """A lottery ticket as Chen et al. save one: torch.nn.utils.prune on the convolutions
    (X.weight_orig + X.weight_mask), the classifier left dense."""
    from torch.nn.utils import prune

    torch.manual_seed(0)
    model = models.build_model(ARCH, NUM_CLASSES)
    convs = [(m, "weight") for m in model.modules() if isinstance(m, nn.Conv2d)]
    prune.global_unstructured(convs, pruning_method=prune.L1Unstructured, amount=0.8)
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    for m, name in convs:
        prune.remove(m, name)
    sd = dict(model.state_dict())
    masked = tuple(n for n in ck.prunable_weight_names(sd) if sd[n].dim() == 4)
    zeros = sum(int((sd[n] == 0).sum()) for n in masked)
    # sparsity over the layers the ticket masks, as its authors count it (fc stays dense)
    return Sample(sd, ARCH, None, 100.0 * zeros / sum(sd[n].numel() for n in masked), masked)


# Every format's sample writers; a registered format missing here fails the contract test.
FORMAT_SAMPLES = {
    "rigl_tf_port": [write_rigl_tf_port],
    "mobilenet_model": [write_mobilenet_gmp_reference, write_mobilenet_acdc_wrapped,
                        write_mobilenet_mfac, write_mobilenet_str],
    "mobilenet_amc": [write_mobilenet_amc],
    "lth_ticket": [write_lth_ticket],
    "reference": [write_reference, write_reference_wrapped_module],
    "sparseml": [write_sparseml],
    "torchvision": [write_torchvision],
}


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


def test_wrapped_layers_multiply_their_masks_in(tmp_path):
    model, _, _ = pruned_tiny()
    path = tmp_path / "wrapped.pt"
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet", wrapped=True, module_prefix=True)
    raw = torch.load(path, weights_only=True)
    sd = raw["model_state_dict"]
    assert "module.conv1._layer.weight" in sd and "module.conv1._weight_mask" in sd
    assert "module.fc._layer.bias" in sd and "module.fc._bias_mask" in sd
    # The reference wrapper may keep stale values under a zero mask: they must not survive.
    key = "module.layer1.0.conv1._layer.weight"
    mask = sd["module.layer1.0.conv1._weight_mask"]
    sd[key] = torch.where(mask == 0, torch.full_like(sd[key], 3.0), sd[key])
    sd["module.fc._bias_mask"][0] = 0.0
    torch.save(raw, path)

    ckpt = ck.load_checkpoint(path)

    want = dict(model.state_dict())
    want["fc.bias"] = want["fc.bias"].clone()
    want["fc.bias"][0] = 0.0
    assert_same_weights(ckpt.state_dict, want)
    for k in ckpt.state_dict:
        assert "_layer" not in k and "_mask" not in k and not k.startswith("module.")


def test_str_style_conv_classifier_is_read_as_linear(tmp_path):
    model, _, _ = pruned_tiny()
    sd = dict(model.state_dict())
    fc_weight = sd["fc.weight"]
    sd["fc.weight"] = fc_weight.reshape(NUM_CLASSES, 64, 1, 1).clone()
    del sd["fc.bias"]  # STR's 1x1 classifier convolution has no bias
    path = tmp_path / "str.pt"
    ck.save_reference_checkpoint(path, sd, ARCH, "imagenet", wrapped=True, module_prefix=True)

    ckpt = ck.load_checkpoint(path, expect_sparsity=80)

    assert ckpt.state_dict["fc.weight"].shape == (NUM_CLASSES, 64)
    assert torch.equal(ckpt.state_dict["fc.weight"], fc_weight)
    assert torch.equal(ckpt.state_dict["fc.bias"], torch.zeros(NUM_CLASSES))
    net = ck.build_backbone_model(ckpt)
    assert torch.equal(net.fc.weight.detach(), fc_weight)


def _fc_only(tmp_path, zeros: int):
    w = torch.arange(1, 1001, dtype=torch.float32).reshape(10, 100)
    w.view(-1)[:zeros] = 0
    path = tmp_path / "fc.pt"
    torch.save({"fc.weight": w, "fc.bias": torch.ones(10)}, path)
    return path


def test_expected_sparsity_within_one_point_is_accepted(tmp_path):
    path = _fc_only(tmp_path, 906)
    ckpt = ck.load_checkpoint(path, expect_sparsity=90)
    assert ckpt.sparsity == pytest.approx(90.6)
    assert ckpt.arch is None  # no registered architecture is just a classifier


def test_expected_sparsity_off_by_more_than_one_point_is_refused(tmp_path):
    path = _fc_only(tmp_path, 800)
    with pytest.raises(ValueError) as err:
        ck.load_checkpoint(path, expect_sparsity=90)
    message = str(err.value)
    assert str(path) in message and "80.00" in message and "90" in message


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


class _Evil:
    """Unpickling this would create ``marker``: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused_and_not_executed(tmp_path, writer):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    payload = {
        "model_config": {"arch": ARCH, "dataset": "x"},
        "model_state_dict": _Evil(str(marker)),
    }
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f)
    with pytest.raises(ValueError) as err:
        ck.load_checkpoint(path)
    assert str(path) in str(err.value) and "NOT executed" in str(err.value)
    assert not marker.exists()


def test_truncated_file_is_a_clear_error(tmp_path):
    model, _, _ = pruned_tiny()
    path = tmp_path / "cut.pt"
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*could not be read"):
        ck.load_checkpoint(path)


def test_missing_file_is_file_not_found(tmp_path):
    path = tmp_path / "absent.pt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        ck.load_checkpoint(path)


def test_resnet18_weights_do_not_fit_resnet_tiny_and_the_error_names_keys(tmp_path):
    path = tmp_path / "r18.pt"
    torch.save(fake_state_dict("resnet18"), path)
    assert ck.load_checkpoint(path).arch == "resnet18"  # inferred from keys and shapes
    with pytest.raises(ValueError) as err:
        ck.load_checkpoint(path, arch="resnet_tiny")
    message = str(err.value)
    assert "'resnet_tiny'" in message
    assert "conv1.weight: checkpoint [64, 3, 7, 7] vs model [16, 3, 3, 3]" in message
    assert "unexpected keys" in message and "layer1.1." in message


def test_build_backbone_model_checks_every_key(tmp_path):
    model, _, _ = pruned_tiny()
    path = tmp_path / "tiny.pt"
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet")
    ckpt = dataclasses.replace(ck.load_checkpoint(path), arch="resnet18")
    with pytest.raises(ValueError, match=r"does not fit architecture 'resnet18'.*missing keys"):
        ck.build_backbone_model(ckpt)


def test_file_and_caller_architectures_must_agree(tmp_path):
    model, _, _ = pruned_tiny()
    path = tmp_path / "tiny.pt"
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet")
    with pytest.raises(ValueError, match="'resnet_tiny'.*'resnet18'"):
        ck.load_checkpoint(path, arch="resnet18")
    with pytest.raises(ValueError, match="'vgg19', which is not registered"):
        ck.load_checkpoint(path, arch="vgg19")


def test_build_backbone_model_same_and_new_classifier(tmp_path):
    model, _, _ = pruned_tiny()
    path = tmp_path / "tiny.pt"
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet")
    ckpt = ck.load_checkpoint(path, arch=ARCH)

    same = ck.build_backbone_model(ckpt)
    assert_same_weights(same.state_dict(), model.state_dict())

    new = ck.build_backbone_model(ckpt, num_classes=5)
    assert isinstance(new.fc, nn.Linear) and new.fc.out_features == 5 and new.fc.in_features == 64
    assert (new.fc.weight != 0).all()  # fresh and dense
    backbone = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    new_backbone = {k: v for k, v in new.state_dict().items() if not k.startswith("fc.")}
    assert_same_weights(new_backbone, backbone)
    assert set(ck.backbone_masks(ckpt)) == set(ckpt.masks) - {"fc.weight"}


def test_save_reference_checkpoint_is_atomic_and_keeps_extra(tmp_path):
    model, _, _ = pruned_tiny()
    path = tmp_path / "zoo" / "gmp-80.pt"
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet", extra={"method": "gmp", "epoch": 3})
    assert os.listdir(path.parent) == ["gmp-80.pt"]
    raw = torch.load(path, weights_only=True)
    assert raw["model_config"] == {"arch": ARCH, "dataset": "imagenet"}
    assert raw["method"] == "gmp" and raw["epoch"] == 3
    with pytest.raises(ValueError, match="model_config"):
        ck.save_reference_checkpoint(path, model, ARCH, "imagenet", extra={"model_config": {}})


def test_filters_pruned_share_on_a_hand_made_state_dict():
    a = torch.ones(4, 2, 3, 3)
    a[0] = 0
    a[2] = 0
    a[1, 0, 0, 0] = 0  # a partly zero filter is not pruned
    b = torch.ones(2, 4, 1, 1)
    b[1] = 0
    sd = {"a.weight": a, "b.weight": b, "fc.weight": torch.zeros(3, 2), "bn.weight": torch.zeros(4)}
    assert ck.per_layer_filters_pruned(sd) == {"a.weight": (2, 4), "b.weight": (1, 2)}
    assert ck.filters_pruned_share(sd) == pytest.approx(3 / 6)
    assert ck.filters_pruned_share({"fc.weight": torch.zeros(2, 2)}) == 0.0


def test_file_sha256_matches_hashlib(tmp_path):
    path = tmp_path / "blob"
    data = os.urandom(3000)
    path.write_bytes(data)
    assert ck.file_sha256(path, chunk_bytes=512) == hashlib.sha256(data).hexdigest()


def test_reference_mobilenet_names_map_onto_mobilenet_v1(tmp_path):
    sd = fake_state_dict("mobilenet_v1")
    path = tmp_path / "mobilenet.pt"
    renamed = {k.replace("features.", "model.", 1): v for k, v in sd.items()}
    ck.save_reference_checkpoint(path, renamed, "mobilenet", "imagenet")
    ckpt = ck.load_checkpoint(path)
    assert ckpt.arch == "mobilenet_v1" and set(ckpt.state_dict) == set(sd)


@pytest.mark.parametrize("arch", models.ARCHITECTURES.names())
def test_prunable_weight_names_match_the_masks_module(arch):
    with torch.device("meta"):
        model = models.build_model(arch, 3)
    assert ck.prunable_weight_names(model.state_dict()) == masks_lib.prunable_names(model)


def test_load_logs_format_arch_and_sparsity(tmp_path, caplog):
    model, _, _ = pruned_tiny()
    path = tmp_path / "tiny.pt"
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet")
    with caplog.at_level(logging.INFO, logger="trainables.checkpoints"):
        ckpt = ck.load_checkpoint(path)
    text = caplog.text
    assert "format=reference" in text and "arch=resnet_tiny" in text
    assert f"{ckpt.sparsity:.2f}%" in text


def test_cli_prints_a_table(tmp_path, capsys):
    model, _, _ = pruned_tiny()
    path = tmp_path / "tiny.pt"
    ck.save_reference_checkpoint(path, model, ARCH, "imagenet", wrapped=True)
    assert ck.main([str(path), "--expect-sparsity", "80"]) == 0
    out = capsys.readouterr().out
    assert "format:               reference" in out
    assert "architecture:         resnet_tiny" in out
    assert "upstream dataset:     imagenet" in out
    assert re.search(r"global sparsity:\s+8\d\.\d\d %", out)
    assert "filters fully pruned:" in out
    # int(0.8 * 2304) = 1843 zeros -> 79.99 %
    assert re.search(r"layer1\.0\.conv1\.weight\s+16x16x3x3\s+2304\s+79\.99\s+0/16", out)


def test_cli_json(tmp_path, capsys):
    model, zeros, total = pruned_tiny()
    path = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), path)
    assert ck.main([str(path), "--json", "--arch", ARCH]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "torchvision" and info["arch"] == ARCH
    assert info["upstream_dataset"] is None
    assert info["global_sparsity"] == pytest.approx(100.0 * zeros / total, abs=1e-4)
    assert info["sha256"] == ck.file_sha256(path)
    names = [row["name"] for row in info["layers"]]
    assert names == masks_lib.prunable_names(model)
    assert info["layers"][0]["shape"] == [16, 3, 3, 3]


@pytest.mark.parametrize("problem", ["garbage", "missing", "sparsity"])
def test_cli_errors_exit_2_without_traceback(tmp_path, capsys, problem):
    path = tmp_path / "bad.pt"
    args = [str(path)]
    if problem == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    elif problem == "sparsity":
        model, _, _ = pruned_tiny()
        ck.save_reference_checkpoint(path, model, ARCH, "imagenet")
        args += ["--expect-sparsity", "95"]
    assert ck.main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and str(path) in captured.err
    assert "Traceback" not in captured.err


def test_cli_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as exit_info:
        ck.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and "--expect-sparsity" in out


# ---- MobileNetV1 layouts and LTH tickets ------------------------------------------------------


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
    sd, _ = _mobilenet_sd()
    sd = {_amc_name(k): v for k, v in sd.items()}
    sd["conv1.0.weight"] = torch.zeros(24, 3, 3, 3)  # AMC's 0.5-FLOPs profile: 24 stem filters
    path = tmp_path / "amc.pt"
    torch.save({"model_config": {"arch": "mobilenet_amc", "dataset": "imagenet"},
                "model_state_dict": sd}, path)
    with pytest.raises(ValueError, match=r"features\.0\.0\.weight: checkpoint \[24, 3, 3, 3\]"):
        ck.load_checkpoint(path)


def write_ticket_masks(path, fraction: float = 0.8) -> dict[str, torch.Tensor]:
    """A ticket of masks alone (Chen et al.'s mask dicts): convolutions only, as floats."""
    torch.manual_seed(1)
    masks = {}
    for name, shape in ck._arch_shapes(ARCH).items():
        if name.endswith(".weight") and len(shape) == 4:
            m = torch.ones(shape)
            m.view(-1)[torch.randperm(m.numel())[: int(fraction * m.numel())]] = 0
            masks[name[: -len(".weight")] + ".weight_mask"] = m
    torch.save({f"module.{k}": v for k, v in masks.items()}, path)
    return masks


@dataclasses.dataclass(frozen=True)
class WeightTicket:
    """A ticket with weights, built by hand: what LTH-T must read back from it."""

    orig: dict[str, torch.Tensor]  # X.weight_orig of every convolution
    masks: dict[str, torch.Tensor]  # X.weight (clean name) -> 0/1 float mask
    others: dict[str, torch.Tensor]  # every other tensor of the file (BatchNorm, fc)
    sparsity: float  # percent over the convolutions, counted here


def write_weight_ticket(path, fraction: float = 0.8, seed: int = 3) -> WeightTicket:
    """A ticket as torch.nn.utils.prune saves one (Chen et al.'s, under DataParallel): every
    convolution as ``X.weight_orig`` + ``X.weight_mask`` (exactly ``int(fraction * numel)``
    zeros), the classifier dense, BatchNorm statistics of its own (not a fresh model's)."""
    g = torch.Generator().manual_seed(seed)
    orig, masks, others, zeros, total = {}, {}, {}, 0, 0
    for name, shape in ck._arch_shapes(ARCH).items():
        if name.endswith(".weight") and len(shape) == 4:
            orig[name] = torch.randn(shape, generator=g) + 3.0  # never zero
            m = torch.ones(shape)
            k = int(fraction * m.numel())
            m.view(-1)[torch.randperm(m.numel(), generator=g)[:k]] = 0
            masks[name], zeros, total = m, zeros + k, total + m.numel()
        elif name.startswith("fc."):
            others[name] = torch.randn((NUM_CLASSES, *shape[1:]), generator=g)
        elif name.endswith("num_batches_tracked"):
            others[name] = torch.tensor(7)
        else:
            others[name] = torch.rand(shape, generator=g) + 0.5
    sd = {**others, **{n[: -len(".weight")] + ".weight_orig": w for n, w in orig.items()},
          **{n[: -len(".weight")] + ".weight_mask": m for n, m in masks.items()}}
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    return WeightTicket(orig, masks, others, 100.0 * zeros / total)


def test_a_ticket_with_weights_is_its_own_weights_under_its_own_mask(tmp_path):
    path = tmp_path / "ticket.pt"
    want = write_weight_ticket(path)
    assert ck.ticket_holds_weights(path)

    ckpt = ck.load_checkpoint(path, arch=ARCH, expect_sparsity=80)

    assert ckpt.format == "lth_ticket"
    for name, mask in want.masks.items():
        assert torch.equal(ckpt.state_dict[name], want.orig[name] * mask), name
    for name, value in want.others.items():  # BatchNorm, the classifier: the ticket's own
        assert torch.equal(ckpt.state_dict[name], value), name
    # masks and sparsity over the layers the ticket masks, as its authors count it
    assert set(ckpt.masks) == set(want.masks) and "fc.weight" not in ckpt.masks
    assert ckpt.sparsity == pytest.approx(want.sparsity)
    net = ck.build_backbone_model(ckpt)
    assert torch.equal(net.bn1.running_var, want.others["bn1.running_var"])


def test_a_ticket_with_weights_is_checked_over_the_layers_it_masks(tmp_path):
    path = tmp_path / "ticket.pt"
    write_weight_ticket(path, fraction=0.5)
    with pytest.raises(ValueError, match=r"measured global sparsity 50\.00% over the \d+ "
                                         "layers it masks but 80% was declared"):
        ck.load_checkpoint(path, arch=ARCH, expect_sparsity=80)


def test_only_a_ticket_of_masks_alone_holds_no_weights(tmp_path):
    masks_only, full, plain = tmp_path / "m.pt", tmp_path / "t.pt", tmp_path / "p.pt"
    write_ticket_masks(masks_only)
    write_lth_ticket(full)
    write_torchvision(plain)
    assert not ck.ticket_holds_weights(masks_only)
    assert ck.ticket_holds_weights(full) and ck.ticket_holds_weights(plain)
    # masks beside plain weights (X.weight + X.weight_mask) hold weights too
    torch.save({"conv1.weight": torch.ones(2, 3, 1, 1),
                "conv1.weight_mask": torch.ones(2, 3, 1, 1)}, plain)
    assert ck.ticket_holds_weights(plain)


def test_ticket_sparsity_is_checked_over_its_own_layers(tmp_path):
    ticket = tmp_path / "ticket.pt"
    write_ticket_masks(ticket, fraction=0.5)
    with pytest.raises(ValueError, match="ticket .* measured sparsity 50.00% .* 80% was declared"):
        ck.load_mask_source(ticket, arch=ARCH, expect_sparsity=80)


def test_a_ticket_of_masks_alone_is_not_a_backbone(tmp_path):
    ticket = tmp_path / "ticket.pt"
    write_ticket_masks(ticket)
    with pytest.raises(ValueError, match="mask source"):
        ck.load_checkpoint(ticket, arch=ARCH)


def test_a_full_ticket_is_a_mask_source_too(tmp_path):
    path = tmp_path / "ticket.pt"
    write_lth_ticket(path)
    source = ck.load_mask_source(path, arch=ARCH, expect_sparsity=80)
    assert source.format == ck.MASKS_ONLY and "fc.weight" not in source.masks


def test_cli_describes_a_ticket_of_masks_alone(tmp_path, capsys):
    ticket = tmp_path / "ticket.pt"
    write_ticket_masks(ticket)
    assert ck.main([str(ticket), "--arch", ARCH, "--expect-sparsity", "80", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == ck.MASKS_ONLY and info["global_sparsity"] == pytest.approx(80, abs=0.1)
    assert "fc.weight" not in {layer["name"] for layer in info["layers"]}
    assert info["carries_weights"] is False
    assert info["as_lth_ticket"].startswith("its masks on the study's dense weights")


def test_cli_says_a_ticket_with_weights_is_used_as_it_is(tmp_path, capsys):
    ticket = tmp_path / "ticket.pt"
    want = write_weight_ticket(ticket)
    assert ck.main([str(ticket), "--arch", ARCH, "--expect-sparsity", "80", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "lth_ticket" and info["carries_weights"] is True
    assert info["as_lth_ticket"].startswith("the file as it is: its own weights")
    assert info["global_sparsity"] == pytest.approx(want.sparsity, abs=1e-3)
    assert {layer["name"] for layer in info["layers"]} == set(want.masks)
    assert ck.main([str(ticket), "--arch", ARCH]) == 0
    out = capsys.readouterr().out
    assert re.search(r"carries weights:\s+yes", out)
    assert re.search(r"as LTH-T's ticket:\s+the file as it is", out)


def test_a_ticket_in_the_reference_mobilenet_names_is_renamed(tmp_path):
    sd, _ = _mobilenet_sd()
    masks = {re.sub(r"^features\.", "model.", n)[: -len(".weight")] + ".weight_mask":
             torch.ones(sd[n].shape) for n in ck.prunable_weight_names(sd) if sd[n].dim() == 4}
    path = tmp_path / "ticket.pt"
    torch.save(masks, path)
    source = ck.load_mask_source(path, arch="mobilenet_v1", expect_sparsity=0)
    assert "features.13.3.weight" in source.masks and "model.13.3.weight" not in source.masks
