"""Grid expansion and the dry run."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from orchestrator.grid import expand
from search_spaces.loader import load_study, narrow


def test_paper_grid_counts_by_hand(tmp_path):
    grid = expand(load_study("paper"), tmp_path, hash_files=False)
    # backbones: dense 1 + GMP 2 + WF 3 + AC/DC 3 + STR 4 + RigL 1x 3 + RigL 5x 3 + LTH-T 3 = 22
    # (M-FAC and AMC have MobileNetV1 sparsities only)
    assert len(grid.backbones) == 22
    assert len(grid.stages["linear"]) == 22 * 12 * 5 == 1320
    assert len(grid.stages["full"]) == 22 * 12 * 3 == 792
    assert len(grid.stages["speed"]) == 22 * 4  # Figure 4's four online datasets
    assert len(grid.stages["checkpoint"]) == 22
    assert not grid.stages.get("pretrain") and not grid.stages.get("prune")
    ids = [t.trial_id for t in grid.all_trials()]
    assert len(set(ids)) == len(ids)


def test_paper_grid_narrowed(tmp_path):
    s = narrow(load_study("paper"), methods="gmp,acdc", sparsities="90,95",
               datasets="pets,dtd", modes="linear", seeds=2)
    grid = expand(s, tmp_path, hash_files=False)
    # backbones: dense, gmp 90, acdc 90, acdc 95 = 4; x 2 datasets x 2 seeds
    assert len(grid.stages["linear"]) == 4 * 2 * 2
    assert not grid.stages["full"]  # the study narrowed to linear has no full trials


def test_full_lr_per_dataset(tmp_path):
    grid = expand(load_study("paper"), tmp_path, hash_files=False)
    lr = {t.dataset: t.recipe.lr for t in grid.stages["full"]}
    assert lr["aircraft"] == lr["cars"] == 0.01 and lr["pets"] == 0.001


def test_augmentation_enters_full_trials_only_where_it_is_not_the_papers(tmp_path):
    paper = expand(load_study("paper"), tmp_path, hash_files=False)
    assert all(t.param("crop_scale") is None for t in paper.stages["full"])
    tiny = expand(load_study("tiny"), tmp_path, hash_files=False)
    assert {t.param("crop_scale") for t in tiny.stages["full"]} == {(0.6, 1.0)}
    assert all(t.param("crop_scale") is None for t in tiny.stages["linear"])


def test_paper_study_normalises_and_picks_epochs_as_the_reference_tiny_study_as_before(tmp_path):
    paper = expand(load_study("paper"), tmp_path, hash_files=False)
    full = {t.params for t in paper.stages["full"]}
    assert full == {(("normalize", "dataset"), ("epoch_selection", "top1"))}
    assert {t.params for t in paper.stages["linear"]} == {(("epoch_selection", "top1"),)}
    # The tiny study names the old behaviour, so its params are as before the keys (its full
    # trials add only its training block's, tests/orchestrator/test_stages.py).
    tiny = expand(load_study("tiny"), tmp_path, hash_files=False)
    assert {t.params for t in tiny.stages["linear"]} == {()}
    assert {t.params for t in tiny.stages["full"]} == {
        (("crop_scale", (0.6, 1.0)), ("channels_last", True), ("augment", "batch"))}
    study = load_study("tiny")
    assert [(m.normalize, m.epoch_selection) for m in study.modes] == [
        ("imagenet", "metric"), ("imagenet", "metric")]


def test_lth_uses_the_ticket_of_each_sparsity_as_it_is_when_not_read(tmp_path):
    """The dry run and the rehearsal read no file: each ticket is the backbone, as the
    reference code used Chen et al.'s tickets (a ticket of masks alone is told apart only
    once the grid opens it, below)."""
    grid = expand(load_study("paper"), tmp_path, hash_files=False)
    lth = [b for b in grid.backbones if b.method == "lth_t"]
    assert [b.sparsity for b in lth] == [80, 90, 95]
    for b in lth:
        assert b.checkpoint.endswith(f"resnet50/lth_t_{b.sparsity}_ticket.pth")
        assert b.mask_checkpoint is None and b.checkpoint_hash is None


def _ticket_study(root: Path):
    """The paper study's dense and LTH-T on resnet_tiny at 80 and 90 %, files under root."""
    import dataclasses

    s = narrow(load_study("paper"), methods="dense,lth_t", sparsities="80,90", datasets="dtd",
               modes="linear", seeds=1)
    return dataclasses.replace(s, arch="resnet_tiny", archs=("resnet_tiny",),
                               checkpoint_dir=str(root))


def test_a_ticket_with_weights_is_the_backbone_a_ticket_of_masks_goes_on_the_dense(tmp_path):
    """Grid, trial and results row agree: the 80 % ticket holds weights (the backbone is
    the ticket's own weight_orig * mask and BatchNorm, not the dense file's), the 90 % one
    masks alone (the dense weights under its mask, as before: same spec fields, same ids)."""
    import hashlib

    import torch

    from orchestrator.aggregate import results_frame
    from orchestrator.ledger import Ledger
    from orchestrator.progress import record_success
    from tests.trainables.checkpoints.samples import write_ticket_masks, write_weight_ticket
    from trainables import checkpoints, models
    from trainables.entry.trial import load_backbone

    root = tmp_path / "ckpt" / "resnet_tiny"
    root.mkdir(parents=True)
    torch.manual_seed(0)
    dense_model = models.build_model("resnet_tiny", 10)
    checkpoints.save_reference_checkpoint(root / "dense_0.pth", dense_model, "resnet_tiny",
                                          "imagenet")
    weights = write_weight_ticket(root / "lth_t_80_ticket.pth")
    masks = write_ticket_masks(root / "lth_t_90_ticket.pth", fraction=0.9)
    study = _ticket_study(tmp_path / "ckpt")

    grid = expand(study, tmp_path / "out")

    def sha(name: str) -> str:
        return hashlib.sha256((root / name).read_bytes()).hexdigest()

    lth = {t.sparsity: t for t in grid.stages["linear"] if t.method == "lth_t"}
    assert (lth[80].checkpoint, lth[80].mask_checkpoint) == (str(root / "lth_t_80_ticket.pth"),
                                                            None)
    assert (lth[80].checkpoint_hash, lth[80].mask_checkpoint_hash) == (
        sha("lth_t_80_ticket.pth"), None)
    assert (lth[90].checkpoint, lth[90].mask_checkpoint) == (
        str(root / "dense_0.pth"), str(root / "lth_t_90_ticket.pth"))
    assert (lth[90].checkpoint_hash, lth[90].mask_checkpoint_hash) == (
        sha("dense_0.pth"), sha("lth_t_90_ticket.pth"))

    ticket = load_backbone(lth[80]).state_dict
    for name, mask in weights.masks.items():
        assert torch.equal(ticket[name], weights.orig[name] * mask), name
    assert torch.equal(ticket["bn1.running_mean"], weights.others["bn1.running_mean"])
    on_dense, dense = load_backbone(lth[90]).state_dict, dense_model.state_dict()
    for key, mask in masks.items():
        name = key[: -len(".weight_mask")] + ".weight"
        assert torch.equal(on_dense[name], dense[name] * mask), name
    assert torch.equal(on_dense["bn1.running_mean"], dense["bn1.running_mean"])

    ledger = Ledger(tmp_path / "out" / "trials")
    for spec in lth.values():
        record_success(ledger, _NoTracker(), spec, {"accuracy": 50.0})
    frame = results_frame(ledger, method_facts=study.method_facts).set_index("sparsity")
    assert frame.loc[80, "lth_source"] == "ticket weights"
    assert frame.loc[90, "lth_source"] == "ticket mask on dense weights"
    # what the grid read is remembered with the files' hashes: a rerun opens no ticket again
    cache = (tmp_path / "out" / ".checkpoint_hashes.json").read_text()
    assert cache.count("|holds_weights") == 2


class _NoTracker:
    def finish(self, *args, **kwargs) -> None:
        pass


def test_lth_without_tickets_borrows_the_mask_of_its_source_method(tmp_path):
    import dataclasses
    paper = load_study("paper")
    lth = dataclasses.replace(paper.method("lth_t"), ticket_pattern=None, mask_from="woodfisher")
    study = dataclasses.replace(paper, methods=tuple(lth if m.name == "lth_t" else m
                                                     for m in paper.methods))
    grid = expand(study, tmp_path, hash_files=False)
    lth_b = [b for b in grid.backbones if b.method == "lth_t"]
    assert all(b.mask_checkpoint.endswith(f"resnet50/woodfisher_{b.sparsity}.pth")
               for b in lth_b)
    assert lth.lth_source(90) == "mask from woodfisher"
    ticket = load_study("paper").method("lth_t")
    assert ticket.lth_source(90) == "ticket file"  # not opened yet: the dry run
    assert ticket.lth_source(90, mask_on_dense=False) == "ticket weights"
    assert ticket.lth_source(90, mask_on_dense=True) == "ticket mask on dense weights"


def test_sparsities_per_arch(tmp_path):
    s = narrow(load_study("paper"), archs="resnet50,mobilenet_v1")
    grid = expand(s, tmp_path, hash_files=False)
    mobile = {(b.method, b.sparsity) for b in grid.backbones if b.arch == "mobilenet_v1"}
    assert mobile == {("dense", 0), ("mfac", 75), ("mfac", 89),
                      ("acdc", 30), ("acdc", 40), ("acdc", 50), ("acdc", 75), ("acdc", 90),
                      ("str", 75), ("str", 90), ("amc", 43)}
    resnet = [b for b in grid.backbones if b.arch == "resnet50"]
    assert len(resnet) == 22 and not {"mfac", "amc"} & {b.method for b in resnet}
    files = {b.checkpoint for b in grid.backbones if b.method == "mfac"}
    assert {Path(f).name for f in files} == {"mfac_75.pth", "mfac_89.pth"}
    assert all("/mobilenet_v1/" in f for f in files)


def test_paper_mobilenet_study_is_the_paper_on_mobilenet(tmp_path):
    mobile, paper = load_study("paper_mobilenet"), load_study("paper")
    assert mobile.archs == ("mobilenet_v1",) and mobile.datasets == paper.datasets
    assert mobile.mode("full").seeds == (21,)
    grid = expand(mobile, tmp_path, hash_files=False)
    assert len(grid.backbones) == 11
    assert len(grid.stages["linear"]) == 11 * 12 * 5 and len(grid.stages["full"]) == 11 * 12
    assert {b.arch for b in grid.backbones} == {"mobilenet_v1"}


def test_checkpoint_hash_enters_the_id(tmp_path):
    ck = tmp_path / "ck" / "resnet50"
    ck.mkdir(parents=True)
    (ck / "gmp_90.pth").write_bytes(b"one")
    s = narrow(load_study("paper"), methods="gmp", sparsities="90", datasets="pets",
               modes="linear", seeds=1)
    import dataclasses
    s = dataclasses.replace(s, checkpoint_dir=str(tmp_path / "ck"))
    before = [t.trial_id for t in expand(s, tmp_path / "o1").stages["linear"]]
    time.sleep(0.01)
    (ck / "gmp_90.pth").write_bytes(b"two")
    after = [t.trial_id for t in expand(s, tmp_path / "o2").stages["linear"]]
    changed = [a != b for a, b in zip(before, after)]
    assert changed.count(True) == 1  # the gmp trial; the dense one has no file either way


# What makes a dry run quick and side-effect free: it plans from the study alone, so it must
# not import (let alone start) Ray, nor load torch, MLflow or DeepSparse, each seconds to import.
HEAVY = ("ray", "torch", "torchvision", "mlflow", "deepsparse", "onnx", "pandas", "numpy")
DRY_RUN_PROBE = f"""
import sys
from orchestrator.sweep import main
code = main(["--study", "paper", "--dry-run"])
print("IMPORTED", sorted(m for m in {HEAVY!r} if m in sys.modules))
sys.exit(code)
"""


def test_dry_run_plans_without_heavy_imports():
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", DRY_RUN_PROBE], cwd=root, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    for word in ("gmp", "linear", "full", "total", "2222", "GPU-hours", "Ray Train",
                 "dry run: nothing was started"):
        assert word in out.stdout
    assert "IMPORTED []" in out.stdout, out.stdout.splitlines()[-1]


def test_help_explains_with_examples():
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-m", "orchestrator.sweep", "--help"], cwd=root,
                         capture_output=True, text=True)
    assert out.returncode == 0
    for opt in ("--study", "--methods", "--sparsities", "--datasets", "--modes", "--seeds",
                "--out", "--dry-run", "--smoke-test", "--tracking-uri", "--retry-failed",
                "--address", "examples:"):
        assert opt in out.stdout


def test_random_weight_speed_trials_carry_their_profile(tmp_path):
    import dataclasses

    study = load_study("tiny")
    grid = expand(study, tmp_path, hash_files=False)
    random = [t for t in grid.stages["speed"] if t.param("weights") == "random"]
    assert [t.sparsity for t in random] == [80, 90, 95, 98]
    assert {(t.method, t.param("profile"), t.dataset) for t in random} == {
        ("random_uniform", "uniform", "synthetic")}
    glob = dataclasses.replace(study, speed=dataclasses.replace(study.speed,
                                                                random_profile="global"))
    other = [t for t in expand(glob, tmp_path, hash_files=False).stages["speed"]
             if t.param("weights") == "random"]
    assert {t.method for t in other} == {"random_global"}
    assert not {t.trial_id for t in other} & {t.trial_id for t in random}


def test_dry_runs_of_the_mobilenet_and_appendix_i_studies_show_their_grids(capsys):
    from orchestrator.sweep import main

    assert main(["--study", "paper_mobilenet", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "architectures: mobilenet_v1" in out and "backbones: 11" in out
    rows = [line.split() for line in out.splitlines()]
    for row in (["mfac", "2", "120", "24", "8", "154"], ["amc", "1", "60", "12", "4", "77"],
                ["total", "11", "660", "132", "44", "847"]):
        assert row in rows, out
    assert main(["--study", "paper_appendix_i", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "str_ls" in out and "rigl_erk5x_ls" in out and "backbones: 21" in out


def test_appendix_i_variants_are_methods_of_their_own(tmp_path):
    study = load_study("paper_appendix_i")
    grid = expand(study, tmp_path, hash_files=False)
    files = {b.method: Path(b.checkpoint).name for b in grid.backbones if b.sparsity == 90}
    assert files["str_ls"] == "str_ls_90.pth" and files["str"] == "str_90.pth"
    assert study.method_facts("str_ls", 90) == {"family": "regularization"}
    assert study.method("str_ls").label == "STR (label smoothing)"


def test_figure4_times_whole_online_epochs_on_the_papers_four_datasets(tmp_path):
    grid = expand(load_study("paper"), tmp_path, hash_files=False)
    speed = grid.stages["speed"]
    backbones = sum(b.transfer for b in grid.backbones)
    assert len(speed) == 4 * backbones
    assert {t.dataset for t in speed} == {"pets", "flowers", "dtd", "caltech101"}
    assert all(t.param("online_dataset") == t.dataset for t in speed)
    assert {t.param("online_batches", "absent") for t in speed} == {None}  # whole epochs
    assert len({t.trial_id for t in speed}) == len(speed)
    # The linear recipe for its 150 epochs at batch 64, as the reference's online runs;
    # the epoch rule of the linear mode, the dataset's classes and metric; 4 loader workers.
    pets = next(t for t in speed if t.dataset == "pets")
    assert (pets.recipe.epochs, pets.recipe.batch_size, pets.recipe.lr) == (150, 64, 0.01)
    assert pets.recipe.milestones == (50, 100)
    assert (pets.num_classes, pets.metric) == (37, "mean_per_class")
    assert pets.param("epoch_selection") == "top1" and pets.param("loader_workers") == 4
    assert pets.param("crop_scale") is None  # the paper's augmentation


def test_tiny_online_runs_train_whole_epochs_and_the_reference_times_two_batches(tmp_path):
    grid = expand(load_study("tiny"), tmp_path, hash_files=False)
    speed = grid.stages["speed"]
    trained = [t for t in speed if t.param("weights") == "trained"]
    random = [t for t in speed if t.param("weights") == "random"]
    assert {t.dataset for t in trained} == {"digits"} and len(trained) == len(grid.backbones)
    assert {(t.recipe.epochs, t.recipe.batch_size, t.recipe.lr) for t in trained} == {
        (1, 16, 0.05)}
    assert {t.param("online_batches", "absent") for t in trained} == {None}
    assert {t.param("crop_scale") for t in trained} == {(0.6, 1.0)}  # the full mode's
    assert {(t.recipe, t.param("online_batches")) for t in random} == {(None, 2)}
    assert {t.param("loader_workers") for t in speed} == {4}
    # The dense online run is the study's dense backbone of the trial's architecture.
    for arch in ("resnet_tiny", "mobilenet_tiny"):
        dense = next(t for t in trained if t.method == "dense" and t.arch == arch)
        mine = [t for t in trained if t.arch == arch]
        assert {t.dense_checkpoint for t in mine} == {dense.checkpoint}
        assert {t.param("dense_checkpoint_hash") for t in mine} == {dense.checkpoint_hash}
    assert {t.dense_checkpoint for t in random} == {None}


def test_every_backbone_gets_one_checkpoint_trial(tmp_path):
    paper = expand(load_study("paper"), tmp_path, hash_files=False)
    ck = paper.stages["checkpoint"]
    assert len(ck) == len(paper.backbones)
    assert {(t.dataset, t.num_classes) for t in ck} == {("imagenet", 1000)}
    lth = [t for t in ck if t.method == "lth_t"]
    assert lth and all(t.checkpoint.endswith("_ticket.pth") for t in lth)  # as transferred
    tiny = load_study("tiny")
    ck = expand(tiny, tmp_path, hash_files=False).stages["checkpoint"]
    assert all(t.mask_checkpoint for t in ck if t.method == "lth_t")  # mask_from gmp
    assert {(t.dataset, t.num_classes, t.seed) for t in ck} == {
        (tiny.upstream.dataset, tiny.upstream.num_classes, tiny.upstream.seed)}
    assert all(t.param("val_images_per_class") == tiny.upstream.val_images_per_class
               for t in ck)
