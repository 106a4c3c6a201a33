"""Study files: validation errors that name the key, YAML round trip, overrides."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from common.catalog import CATALOG
from search_spaces.loader import builtin_studies, load_study, narrow
from search_spaces.schema import StudyError, study_from_dict, study_to_dict

PAPER = Path(__file__).resolve().parents[2] / "search_spaces" / "paper.yaml"


def raw_paper() -> dict:
    return yaml.safe_load(PAPER.read_text())


def test_builtin_studies_load():
    assert {"paper", "tiny"} <= set(builtin_studies())
    for name in builtin_studies():
        assert load_study(name).name == name


def test_paper_study_matches_the_protocol():
    s = load_study("paper")
    assert s.arch == "resnet50" and set(s.extra_archs) == {"resnet18", "resnet34", "mobilenet_v1"}
    assert len(s.datasets) == 12
    assert s.mode("linear").seeds == (21, 51, 81, 111, 141)
    assert len(s.mode("full").seeds) == 3
    r = s.mode("linear").recipe
    assert (r.epochs, r.lr, r.momentum, r.weight_decay, r.batch_size, r.milestones) == (
        150, 0.01, 0.9, 5e-4, 64, (50, 100))
    lrs = {d.name: d.full_lr for d in s.datasets}
    assert lrs.pop("aircraft") == lrs.pop("cars") == 0.01
    assert set(lrs.values()) == {0.001}
    # LTH-T from the tickets of Chen et al., one file per sparsity, as the reference did
    assert s.method("lth_t").lth_source(80) == "ticket file"
    assert {m.name for m in s.methods} == {m.key for m in CATALOG.methods}
    assert s.method("mfac").sparsities_for("mobilenet_v1") == (75, 89)
    assert s.method("mfac").sparsities_for("resnet50") == ()
    assert s.method("amc").family == "structured"


def test_every_level_of_the_paper_study_is_one_the_paper_or_its_reference_ran():
    """Levels come from the paper's Table 3 or the reference's raw_results (reports/published),
    AMC's derived 43 % aside (Appendix J's structured MobileNetV1)."""
    from reports.published import paper_results

    published = paper_results()
    ran = set(zip(published["arch"], published["method"], published["sparsity"]))
    s = load_study("paper")
    for arch in ("resnet50", "mobilenet_v1"):
        for m in s.methods:
            for level in m.sparsities_for(arch):
                assert (arch, m.name, level) in ran or m.name == "amc", (arch, m.name, level)


def test_yaml_round_trip(tmp_path):
    for name in ("paper", "tiny", "paper_mobilenet", "paper_appendix_i"):
        s = load_study(name)
        p = tmp_path / f"{name}.yaml"
        p.write_text(yaml.safe_dump(study_to_dict(s), sort_keys=False))
        assert load_study(p) == s


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda r: r.update(bogus=1), ["bogus", "valid keys", "methods"]),
        (lambda r: r["methods"].update(magic={"sparsities": [90]}), ["magic", "gmp"]),
        (lambda r: r["methods"]["gmp"].update(sparsities=[80, 120]), ["methods.gmp", "120"]),
        (lambda r: r["modes"]["linear"].update(seeds=-2), ["modes.linear.seeds", "-2"]),
        (lambda r: r["datasets"]["pets"].update(metric="top5"), ["datasets.pets.metric",
                                                                  "mean_per_class"]),
        (lambda r: r["modes"]["linear"]["recipe"].update(lrr=0.1), ["lrr", "weight_decay"]),
        (lambda r: r["modes"].update(online={"seeds": [1], "recipe": {}}), ["online", "linear"]),
        (lambda r: r["methods"]["lth_t"].update(mask_from="nope"), ["mask_from", "nope"]),
        (lambda r: r.setdefault("speed", {}).update(random_profile="layerwise"),
         ["speed.random_profile", "layerwise", "uniform"]),
        (lambda r: r["modes"]["full"].update(crop_scale=[0.9, 0.5]),
         ["modes.full.crop_scale", "0 < low <= high <= 1", "[0.9, 0.5]"]),
        (lambda r: r["modes"]["full"].update(crop_scale=0.5),
         ["modes.full.crop_scale", "[low, high]"]),
        (lambda r: r.update(training={"augment": "gpu"}), ["training.augment", "gpu", "batch"]),
        (lambda r: r.update(training={"channels_last": "yes"}),
         ["training.channels_last", "true or false"]),
        (lambda r: r.update(training={"amp": True}), ["training", "amp", "channels_last"]),
    ],
)
def test_validation_errors_name_the_key(mutate, words):
    raw = copy.deepcopy(raw_paper())
    mutate(raw)
    with pytest.raises(StudyError) as e:
        study_from_dict(raw)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_error_names_the_file(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("name: x\narch: resnet50\nmethods: {dense: {family: dense, sparsities: [0]}}\n"
                 "datasets: {pets: {classes: 3, metric: top1, group: nowhere}}\n"
                 "modes: {linear: {seeds: [1], recipe: {}}}\n")
    with pytest.raises(StudyError, match=r"mine\.yaml.*datasets\.pets\.group.*general"):
        load_study(p)
    with pytest.raises(StudyError, match="built-in"):
        load_study(tmp_path / "missing.yaml")


def test_sparsity_fraction_accepted():
    raw = copy.deepcopy(raw_paper())
    raw["methods"]["gmp"]["sparsities"] = [0.8, 0.9]
    assert study_from_dict(raw).method("gmp").sparsities == (80, 90)


def test_narrow_every_axis():
    s = narrow(load_study("paper"), methods="gmp,acdc", sparsities="90,95",
               datasets="pets,dtd", modes="linear", seeds=2)
    assert [m.name for m in s.methods] == ["dense", "gmp", "acdc"]
    assert s.method("gmp").sparsities == (90,)
    assert s.method("acdc").sparsities == (90, 95)
    assert [d.name for d in s.datasets] == ["dtd", "pets"]
    assert [m.name for m in s.modes] == ["linear"] and s.mode("linear").seeds == (21, 51)


def test_narrow_keeps_lth_mask_source_upstream_only():
    s = narrow(load_study("tiny"), methods="lth_t")
    src = s.method(s.method("lth_t").mask_from)
    assert src.transfer is False and s.method("lth_t").transfer is True


@pytest.mark.parametrize("kw, word", [({"methods": "gmp,nope"}, "nope"),
                                      ({"sparsities": "85"}, "85"),
                                      ({"datasets": "imagenet"}, "imagenet"),
                                      ({"seeds": 0}, "seeds"),
                                      ({"archs": ""}, "--archs: empty selection"),
                                      ({"archs": []}, "--archs: empty selection"),
                                      ({"datasets": " , "}, "--datasets: empty selection"),
                                      ({"modes": ""}, "--modes: empty selection"),
                                      ({"methods": ","}, "--methods: empty selection"),
                                      ({"sparsities": ","}, "--sparsities: empty selection")])
def test_narrow_errors(kw, word):
    with pytest.raises(StudyError, match=word):
        narrow(load_study("paper"), **kw)


# ---- methods of a study's own, families, per-arch sparsities, tickets, extends ---------------


def test_a_method_of_its_own_needs_a_label_and_a_family():
    raw = copy.deepcopy(raw_paper())
    raw["methods"]["str_ls"] = {"label": "STR (label smoothing)", "family": "regularization",
                                "sparsities": [80, 90], "checkpoints": {80: "/x/str_ls_80.pth"}}
    raw["methods"]["resnet50_channels"] = {"label": "Structured", "family": "structured",
                                           "sparsities": [50]}
    s = study_from_dict(raw)
    assert s.method("str_ls").label == "STR (label smoothing)"
    assert s.method("str_ls").checkpoint_for(80) == "/x/str_ls_80.pth"
    assert s.method("resnet50_channels").family == "structured"
    raw["methods"]["gmpp"] = {"sparsities": [90]}  # a typo stays an error
    with pytest.raises(StudyError, match="unknown method 'gmpp'.*'label' and a 'family'"):
        study_from_dict(raw)


def test_a_catalog_method_or_dataset_takes_its_label_family_and_facts_from_the_catalog():
    raw = copy.deepcopy(raw_paper())
    raw["methods"]["acdc"] = {"sparsities": [80]}
    raw["methods"]["amc"] = {"sparsities": {"mobilenet_v1": [43]}}  # read from files only
    raw["datasets"]["aircraft"] = {"full_lr": 0.01}
    raw["datasets"]["digits"] = {}
    s = study_from_dict(raw)
    assert (s.method("acdc").label, s.method("acdc").family) == ("AC/DC", "regularization")
    assert (s.method("amc").label, s.method("amc").family) == ("AMC", "structured")
    aircraft = s.dataset("aircraft")
    assert (aircraft.classes, aircraft.metric, aircraft.group) == (100, "mean_per_class",
                                                                   "specialized")
    assert (s.dataset("digits").classes, s.dataset("digits").group) == (10, "general")
    raw["methods"]["acdc"]["label"] = "AC/DC (ours)"  # what the file gives wins
    assert study_from_dict(raw).method("acdc").label == "AC/DC (ours)"
    raw["datasets"]["imagefolder:/my/images"] = {"classes": 3}
    with pytest.raises(StudyError, match="imagefolder:/my/images: missing required key 'metric'"):
        study_from_dict(raw)


def test_the_tiny_study_prunes_its_zoo_so_its_methods_are_the_registered_ones():
    raw = yaml.safe_load((PAPER.parent / "tiny.yaml").read_text())
    raw["methods"]["mine"] = {"label": "Mine", "family": "progressive", "sparsities": [80]}
    with pytest.raises(StudyError, match="unknown method 'mine'.*upstream zoo"):
        study_from_dict(raw)


@pytest.mark.parametrize("method, words", [
    ({"family": "Structured!"}, ["methods.gmp.family", "structured"]),
    ({"sparsities": {"vgg16": [80]}}, ["methods.gmp.sparsities", "vgg16"]),
    ({"sparsities": {"default": [], "mobilenet_v1": []}}, ["at least one sparsity"]),
    ({"sparsities": {"mobilenet_v1": [0]}}, ["sparsity 0 is the dense baseline's"]),
    ({"tickets": {80: "/t.pth"}}, ["methods.gmp.tickets", "lottery"]),
])
def test_method_errors_name_the_key(method, words):
    raw = copy.deepcopy(raw_paper())
    raw["methods"]["gmp"].update(method)
    with pytest.raises(StudyError) as e:
        study_from_dict(raw)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_ticket_pattern_needs_the_sparsity():
    raw = copy.deepcopy(raw_paper())
    raw["methods"]["lth_t"]["tickets"] = "{arch}/lth_t.pth"
    with pytest.raises(StudyError, match=r"methods.lth_t.tickets.*\{sparsity\}"):
        study_from_dict(raw)


def test_tickets_and_checkpoints_per_sparsity_and_arch():
    raw = copy.deepcopy(raw_paper())
    raw["methods"]["lth_t"]["tickets"] = {80: "/t/80.pth", 90: "/t/90.pth"}
    raw["methods"]["lth_t"]["mask_from"] = "woodfisher"
    raw["methods"]["gmp"]["checkpoints"] = {90: "/r/gmp90.pth",
                                            "mobilenet_v1": {89: "/m/gmp89.pth"}}
    s = study_from_dict(raw)
    lth = s.method("lth_t")
    assert [lth.lth_source(x) for x in (80, 90, 95)] == [
        "ticket file", "ticket file", "mask from woodfisher"]
    gmp = s.method("gmp")
    assert gmp.checkpoint_for(89, "mobilenet_v1") == "/m/gmp89.pth"
    assert gmp.checkpoint_for(90, "resnet50") == "/r/gmp90.pth"
    assert load_study_roundtrip(s) == s


def load_study_roundtrip(s):
    return study_from_dict(yaml.safe_load(yaml.safe_dump(study_to_dict(s), sort_keys=False)))


def test_extends_takes_the_base_and_replaces_whole_keys(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("extends: paper\nname: mine\narch: mobilenet_v1\narchs: [mobilenet_v1]\n")
    s = load_study(p)
    assert s.name == "mine" and s.archs == ("mobilenet_v1",)
    assert s.datasets == load_study("paper").datasets
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nname: b\n")
    with pytest.raises(StudyError, match="cycle"):
        load_study(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: nowhere\nname: c\n")
    with pytest.raises(StudyError, match="extends: 'nowhere'"):
        load_study(tmp_path / "c.yaml")


def test_seeds_per_architecture():
    s = load_study("tiny")
    full = s.mode("full")
    assert full.seeds_for("resnet_tiny") == (21, 51, 81)
    assert full.seeds_for("mobilenet_tiny") == (21,)
    assert s.mode("linear").seeds_for("mobilenet_tiny") == (21, 51, 81, 111, 141)
    narrowed = narrow(s, seeds=2).mode("full")
    assert narrowed.seeds == (21, 51) and narrowed.seeds_for("mobilenet_tiny") == (21,)
    raw = study_to_dict(s)
    assert raw["modes"]["full"]["seeds"] == {"default": [21, 51, 81], "mobilenet_tiny": [21]}
    raw["modes"]["full"]["seeds"] = {"mobilenet_tiny": [21]}
    with pytest.raises(StudyError, match=r"modes\.full\.seeds.*'default'"):
        study_from_dict(raw)
    raw["modes"]["full"]["seeds"] = {"default": [1], "resnet_huge": [21]}
    with pytest.raises(StudyError, match=r"modes\.full\.seeds.*resnet_huge"):
        study_from_dict(raw)
