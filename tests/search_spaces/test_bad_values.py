"""Study values that are the right type but impossible, names that would become paths out of
their folder, and unknown names: each is refused while loading, with a message that
names the key, the value and what was expected, before anything is started or written."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from search_spaces.loader import load_study
from search_spaces.schema import StudyError, study_from_dict

SPACES = Path(__file__).resolve().parents[2] / "search_spaces"
NAN, INF = float("nan"), float("inf")


def raw(name: str) -> dict:
    return yaml.safe_load((SPACES / f"{name}.yaml").read_text())


def refused(study: str, mutate, words: list[str]) -> None:
    r = copy.deepcopy(raw(study))
    mutate(r)
    with pytest.raises(StudyError) as e:
        study_from_dict(r)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def linear_recipe(**kw):
    return lambda r: r["modes"]["linear"]["recipe"].update(kw)


# (a) non-finite or impossible numbers
NUMBERS = [
    (linear_recipe(lr=NAN), ["modes.linear.recipe.lr", "finite", "nan"]),
    (linear_recipe(lr=INF), ["modes.linear.recipe.lr", "finite", "inf"]),
    (linear_recipe(lr=-INF), ["modes.linear.recipe.lr", "finite"]),
    (linear_recipe(gamma=INF), ["modes.linear.recipe.gamma", "finite"]),
    (linear_recipe(gamma=0), ["modes.linear.recipe.gamma", "positive"]),
    (linear_recipe(momentum=NAN), ["modes.linear.recipe.momentum", "finite"]),
    (linear_recipe(momentum=1.5), ["modes.linear.recipe.momentum", "below 1"]),
    (linear_recipe(momentum=-0.1), ["modes.linear.recipe.momentum", ">= 0"]),
    (linear_recipe(weight_decay=NAN), ["modes.linear.recipe.weight_decay", "finite"]),
    (linear_recipe(weight_decay=-1e-4), ["modes.linear.recipe.weight_decay", ">= 0"]),
    (linear_recipe(milestones=[50, 200]), ["modes.linear.recipe.milestones", "200", "150"]),
    (linear_recipe(milestones=[150]), ["modes.linear.recipe.milestones", "1..149"]),
    (linear_recipe(milestones=[0]), ["modes.linear.recipe.milestones", "epoch 0"]),
    (linear_recipe(epochs=10, milestones=[5, 10]), ["milestones", "epoch 10", "10 epochs"]),
    (lambda r: r["datasets"]["pets"].update(full_lr=NAN), ["datasets.pets.full_lr", "finite"]),
    (lambda r: r["modes"]["full"].update(cpus=INF), ["modes.full.cpus", "finite"]),
    (lambda r: r["modes"]["full"].update(gpus=NAN), ["modes.full.gpus", "finite"]),
    (lambda r: r["modes"]["full"].update(gpus=-1), ["modes.full.gpus", ">= 0"]),
    (lambda r: r["methods"]["gmp"].update(transfer="no"), ["methods.gmp.transfer", "'no'"]),
    (lambda r: r.update(estimate={"train_images_per_gpu_s": INF}),
     ["estimate.train_images_per_gpu_s", "finite"]),
    (lambda r: r["methods"]["gmp"].update(sparsities=[90, 90]),
     ["methods.gmp.sparsities", "90 is listed twice"]),
    (lambda r: r["methods"]["acdc"].update(sparsities=[0.9, 90]),
     ["methods.acdc.sparsities", "90 is listed twice"]),
    (lambda r: r["speed"].update(batch_sizes=[1, 1]), ["speed.batch_sizes", "listed twice"]),
    (lambda r: r["speed"].update(batch_sizes=64), ["speed.batch_sizes", "expected a list"]),
    (lambda r: r["speed"].update(loader_workers=-1), ["speed.loader_workers", ">= 0"]),
    (lambda r: r["speed"].update(loader_workers=2.5), ["speed.loader_workers", "integer"]),
    (lambda r: r["speed"].update(online_epochs=0), ["speed.online_epochs", ">= 1"]),
    (lambda r: r["speed"].update(random_online_batches="all"),
     ["speed.random_online_batches", "integer"]),
]
TINY_NUMBERS = [
    (lambda r: r["upstream"]["prune"].update(steps=-1), ["upstream.prune.steps", "-1"]),
    (lambda r: r["upstream"]["prune"].update(steps=0), ["upstream.prune.steps"]),
    (lambda r: r["upstream"]["prune"].update(steps=1.5), ["upstream.prune.steps", "integer"]),
    (lambda r: r["upstream"]["prune"].update(batch_size="lots"),
     ["upstream.prune.batch_size", "'lots'", "integer"]),
    (lambda r: r["upstream"]["prune"].update(batch_size=True), ["upstream.prune.batch_size"]),
    (lambda r: r["upstream"]["prune"].update(lr=NAN), ["upstream.prune.lr", "finite"]),
    (lambda r: r["upstream"]["prune"].update(lr=-0.1), ["upstream.prune.lr", "positive"]),
    (lambda r: r["upstream"]["prune"].update(finetune_fraction=1.0),
     ["upstream.prune.finetune_fraction", "below 1"]),
    (lambda r: r["upstream"]["prune"].update(alpha=INF), ["upstream.prune.alpha", "finite"]),
    (lambda r: r["upstream"].update(prune_overrides={"gmp": {"frequency": 0}}),
     ["upstream.prune_overrides.gmp.frequency"]),
    (lambda r: r["upstream"].update(prune_overrides=[1]),
     ["upstream.prune_overrides", "mapping"]),
    (lambda r: r["upstream"]["pretrain"].update(lr=INF), ["upstream.pretrain.lr", "finite"]),
    (lambda r: r["upstream"].update(dataset="../x"), ["upstream.dataset", "'../x'"]),
    (lambda r: r["upstream"].update(dataset=[1]), ["upstream.dataset", "[1]"]),
    (lambda r: r["upstream"]["pretrain"].update(milestones=[4, 9]),
     ["upstream.pretrain.milestones", "epoch 9", "6 epochs"]),
    (lambda r: r["speed"].update(random_sparsities=[80, 80]),
     ["speed.random_sparsities", "listed twice"]),
]


@pytest.mark.parametrize("mutate, words", NUMBERS)
def test_impossible_numbers_paper(mutate, words):
    refused("paper", mutate, words)


@pytest.mark.parametrize("mutate, words", TINY_NUMBERS)
def test_impossible_numbers_tiny(mutate, words):
    refused("tiny", mutate, words)


# (b) names that become paths
@pytest.mark.parametrize("name", ["../../x", "..", "/tmp/abs", "", " ", "a/b", ".hidden",
                                  "runs\\x", "naïve", "a b", "x" * 101, 5, None, ["a"]])
def test_study_name_stays_one_folder(name):
    refused("tiny", lambda r: r.update(name=name), ["name:", repr(name), "folder name"])


@pytest.mark.parametrize("key", ["../pets", "..", "pets/../../x", "my pets", "pëts", ".pets",
                                 "/abs", "", 7])
def test_dataset_key_stays_one_folder(key):
    def mutate(r):
        r["datasets"][key] = r["datasets"].pop("pets")
    refused("paper", mutate, [f"datasets.{key}", repr(key)])


@pytest.mark.parametrize("key", ["imagefolder:", "imagefolder: ", "imagefolder:a\nb",
                                 "imagefolder: padded "])
def test_imagefolder_key_needs_a_clean_path(key):
    def mutate(r):
        r["datasets"][key] = r["datasets"].pop("pets")
    refused("paper", mutate, ["imagefolder:<path>"])


@pytest.mark.parametrize("name", ["name-1.2_b", "Study_2", "x" * 100])
def test_safe_names_still_load(name):
    r = raw("tiny")
    r["name"] = name
    assert study_from_dict(r).name == name


def test_imagefolder_keys_still_load():
    r = raw("paper")
    r["datasets"]["imagefolder:/data/my images"] = r["datasets"].pop("pets")
    assert "imagefolder:/data/my images" in {d.name for d in study_from_dict(r).datasets}


# (c) unknown names, and lists written as strings
UNKNOWN = [
    (lambda r: r.update(arch="resnet9000"), ["arch:", "resnet9000", "resnet50, resnet_tiny"]),
    (lambda r: r.update(arch=50), ["arch:", "50", "known architectures"]),
    (lambda r: r.update(archs=["resnet50", "resnet9000"]), ["archs:", "resnet9000"]),
    (lambda r: r.update(archs="resnet50"), ["archs:", "expected a list", "[resnet50]"]),
    (lambda r: r.update(archs=["resnet50", "resnet50"]), ["archs:", "listed twice"]),
    (lambda r: r.update(extra_archs="resnet18"), ["extra_archs:", "[resnet18]"]),
    (lambda r: r.update(extra_archs=["vgg16"]), ["extra_archs:", "vgg16", "mobilenet_v1"]),
    (lambda r: r.update(extra_archs=5), ["extra_archs:", "expected a list", "5"]),
    (lambda r: r["speed"].update(random_arch="resnet9000"), ["speed.random_arch", "resnet9000"]),
    (lambda r: r["methods"]["lth_t"].update(mask_from=["gmp"]), ["methods.lth_t.mask_from"]),
    (lambda r: r["methods"]["gmp"].update(label=["GMP"]), ["methods.gmp.label", "['GMP']"]),
    (lambda r: r["methods"]["gmp"].update(label=" "), ["methods.gmp.label"]),
    (lambda r: r["methods"]["gmp"].update(label=NAN), ["methods.gmp.label", "nan"]),
    (lambda r: r["speed"].update(online_dataset="../x"), ["speed.online_dataset", "'../x'"]),
    (lambda r: r["datasets"].update(imagenet=r["datasets"]["pets"]),
     ["datasets.imagenet", "unknown dataset", "sun397", "imagefolder:<path>"]),
    (lambda r: r.update(data_root=["a", "b"]), ["data_root", "['a', 'b']", "one path"]),
    (lambda r: r.update(checkpoint_dir=5), ["checkpoint_dir", "one path"]),
    (lambda r: r.update(checkpoint_pattern=["x"]), ["checkpoint_pattern", "string"]),
]


@pytest.mark.parametrize("mutate, words", UNKNOWN)
def test_unknown_names(mutate, words):
    refused("paper", mutate, words)


def test_yaml_file_error_names_the_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text((SPACES / "tiny.yaml").read_text().replace(
        "archs: [resnet_tiny, mobilenet_tiny]", "archs: resnet_tiny"))
    with pytest.raises(StudyError, match=r"bad\.yaml: archs: expected a list"):
        load_study(p)
