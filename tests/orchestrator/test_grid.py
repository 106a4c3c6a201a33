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
    # backbones: dense 1 + GMP 2 + WF 4 + AC/DC 4 + STR 4 + RigL 1x 3 + RigL 5x 3 + LTH-T 4 = 25
    assert len(grid.backbones) == 25
    assert len(grid.stages["linear"]) == 25 * 12 * 5 == 1500
    assert len(grid.stages["full"]) == 25 * 12 * 3 == 900
    assert len(grid.stages["speed"]) == 25 * 4  # Figure 4's four online datasets
    assert len(grid.stages["checkpoint"]) == 25
    assert not grid.stages.get("pretrain") and not grid.stages.get("prune")
    ids = [t.trial_id for t in grid.all_trials()]
    assert len(set(ids)) == len(ids)


def test_paper_grid_narrowed(tmp_path):
    s = narrow(load_study("paper"), methods="gmp,acdc", sparsities="90,95",
               datasets="pets,dtd", modes="linear", seeds=2)
    grid = expand(s, tmp_path, hash_files=False)
    # backbones: dense, gmp 90, acdc 90, acdc 95 = 4; x 2 datasets x 2 seeds
    assert len(grid.stages["linear"]) == 4 * 2 * 2
    assert "full" not in grid.stages


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
    # The tiny study names the old behaviour, so its trials (and ids) are as before the keys.
    tiny = expand(load_study("tiny"), tmp_path, hash_files=False)
    assert {t.params for t in tiny.stages["linear"]} == {()}
    assert {t.params for t in tiny.stages["full"]} == {(("crop_scale", (0.6, 1.0)),)}
    study = load_study("tiny")
    assert [(m.normalize, m.epoch_selection) for m in study.modes] == [
        ("imagenet", "metric"), ("imagenet", "metric")]


def test_lth_uses_dense_weights_and_source_mask(tmp_path):
    grid = expand(load_study("paper"), tmp_path, hash_files=False)
    lth = [b for b in grid.backbones if b.method == "lth_t"]
    dense = next(b for b in grid.backbones if b.method == "dense")
    assert all(b.checkpoint == dense.checkpoint and "woodfisher" in b.mask_checkpoint for b in lth)


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
    for word in ("gmp", "linear", "full", "total", "2525", "GPU-hours", "Ray Train",
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


def test_figure4_times_whole_online_epochs_on_the_papers_four_datasets(tmp_path):
    grid = expand(load_study("paper"), tmp_path, hash_files=False)
    speed = grid.stages["speed"]
    backbones = sum(b.transfer for b in grid.backbones)
    assert len(speed) == 4 * backbones
    assert {t.dataset for t in speed} == {"pets", "flowers", "dtd", "caltech101"}
    assert all(t.param("online_dataset") == t.dataset for t in speed)
    assert {t.param("online_batches", "absent") for t in speed} == {None}  # whole epochs
    assert len({t.trial_id for t in speed}) == len(speed)


def test_every_backbone_gets_one_checkpoint_trial(tmp_path):
    paper = expand(load_study("paper"), tmp_path, hash_files=False)
    ck = paper.stages["checkpoint"]
    assert len(ck) == len(paper.backbones)
    assert {(t.dataset, t.num_classes) for t in ck} == {("imagenet", 1000)}
    lth = [t for t in ck if t.method == "lth_t"]
    assert lth and all(t.mask_checkpoint for t in lth)
    tiny = load_study("tiny")
    ck = expand(tiny, tmp_path, hash_files=False).stages["checkpoint"]
    assert {(t.dataset, t.num_classes, t.seed) for t in ck} == {
        (tiny.upstream.dataset, tiny.upstream.num_classes, tiny.upstream.seed)}
    assert all(t.param("val_images_per_class") == tiny.upstream.val_images_per_class
               for t in ck)
