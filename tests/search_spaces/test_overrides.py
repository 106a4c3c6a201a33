"""``--set dotted.key=value``: a study changed before it is checked, with the YAML file's own
checks and messages; an unknown key named with the keys at its level; Hydra's ``+``, ``++``
and ``~``; values read as YAML (numbers, booleans, lists, mappings)."""

from __future__ import annotations

import pytest

from search_spaces.loader import load_study
from search_spaces.overrides import (
    ADD, DELETE, FORCE, SET, OverrideError, apply_overrides, parse_override,
)
from search_spaces.schema import StudyError, study_to_dict


def test_good_overrides_change_the_study_as_the_file_would():
    s = load_study("tiny", ["modes.full.workers=2", "speed.enabled=false",
                            "modes.linear.seeds=[21,51]", "datasets.digits.full_lr=0.1",
                            "description=a b, c = d"])
    assert s.mode("full").workers == 2 and s.speed.enabled is False
    assert s.mode("linear").seeds == (21, 51)
    assert s.dataset("digits").full_lr == 0.1
    assert s.description == "a b, c = d"  # the first "=" splits; the rest is the value
    untouched = load_study("tiny")
    assert s.mode("full").recipe == untouched.mode("full").recipe
    assert s.methods == untouched.methods


def test_a_mapping_value_replaces_the_whole_mapping_as_in_the_file():
    s = load_study("tiny", ["modes.full.recipe={epochs: 2, lr: 0.2, milestones: [1]}"])
    r = s.mode("full").recipe
    assert (r.epochs, r.lr, r.milestones) == (2, 0.2, (1,))
    # keys the mapping leaves out take the recipe's defaults, as in a file (not tiny's 0.9)
    from search_spaces.recipe import Recipe
    assert r.momentum == Recipe.momentum and r.batch_size == Recipe.batch_size


def test_a_key_the_file_leaves_to_its_default_can_be_set():
    # tiny.yaml gives no modes.linear.workers nor speed.online_epochs: the schema's defaults
    s = load_study("tiny", ["modes.linear.workers=3", "speed.online_epochs=2"])
    assert s.mode("linear").workers == 3 and s.speed.online_epochs == 2


def test_an_unknown_key_names_it_and_the_keys_at_its_level():
    with pytest.raises(OverrideError) as e:
        load_study("tiny", ["modes.full.wrkers=2"])
    text = str(e.value)
    assert text.startswith("--set modes.full.wrkers=2: the study has no key 'wrkers' under "
                           "modes.full; keys there: cpus, crop_scale,")
    assert "workers" in text and "use_gpu" in text
    with pytest.raises(OverrideError, match=r"no key 'ful' under modes; keys there: full, "
                                            r"linear \("):
        load_study("tiny", ["modes.ful.workers=2"])
    with pytest.raises(OverrideError, match=r"no key 'bogus' at the top level; keys there: "
                                            r"arch, archs, "):
        load_study("tiny", ["bogus=1"])
    # a dataset the study does not have is not added by a typo
    with pytest.raises(OverrideError, match="no key 'pets' under datasets; keys there: digits"):
        load_study("tiny", ["datasets.pets.full_lr=0.1"])


def test_a_bad_value_gets_the_files_message_said_of_the_option():
    with pytest.raises(OverrideError) as e:
        load_study("tiny", ["modes.full.workers=abc"])
    assert str(e.value) == ("--set modes.full.workers=abc: modes.full.workers: expected an "
                            "integer, got 'abc'")
    # the same value in the file gets the same message after the file's name
    with pytest.raises(StudyError, match=r"modes.full.workers: expected an integer >= 1, got 0"):
        load_study("tiny", ["modes.full.workers=0"])
    with pytest.raises(OverrideError, match=r"^--set modes.linear.seeds=x: modes.linear.seeds"
                                            r": expected a non-empty list"):
        load_study("tiny", ["modes.linear.seeds=x"])
    # a key beside the changed one: epochs moves the milestones out of range
    with pytest.raises(OverrideError, match=r"^--set modes.full.recipe.epochs=3: "
                                            r"modes.full.recipe.milestones: epoch 3 is outside"):
        load_study("tiny", ["modes.full.recipe.epochs=3"])
    with pytest.raises(OverrideError, match="120 is out of range"):
        load_study("tiny", ["methods.gmp.sparsities=[80, 120]"])


def test_values_are_yaml_and_bad_yaml_or_forms_are_refused():
    assert parse_override("a.b=[1, 2]").value == [1, 2]
    assert parse_override("a.b={x: 1}").value == {"x": 1}
    assert parse_override("a.b=false").value is False
    assert parse_override("a.b=0.5").value == 0.5
    assert parse_override("a.b=null").value is None
    assert parse_override("a.b='90'").value == "90"
    with pytest.raises(OverrideError, match=r"the value is not valid YAML"):
        load_study("tiny", ["modes.linear.seeds=[21,"])
    for bad in ("modes.full.workers", "=2", "a..b=1", "~a=1", "a b=1"):
        with pytest.raises(OverrideError, match="expected key=value with a dotted key"):
            parse_override(bad)


def test_a_list_is_given_whole():
    with pytest.raises(OverrideError, match=r"modes.linear.seeds is a list, not a mapping; "
                                            r"give it whole"):
        load_study("tiny", ["modes.linear.seeds.0=5"])


def test_hydra_add_force_and_delete():
    assert [parse_override(t).action for t in ("a=1", "+a=1", "++a=1", "~a")] == [
        SET, ADD, FORCE, DELETE]
    # + adds a key the study lacks (a checkpoint of one architecture, its sparsity a number)
    s = load_study("paper_mobilenet", ["+methods.gmp.checkpoints.mobilenet_v1.89=/m/g.pth"])
    assert s.method("gmp").checkpoint_for(89, "mobilenet_v1") == "/m/g.pth"
    with pytest.raises(OverrideError, match="no key 'mobilenet_v1' under methods.gmp."
                                            r"checkpoints; keys there: \(none\)"):
        load_study("paper_mobilenet", ["methods.gmp.checkpoints.mobilenet_v1.89=/m/g.pth"])
    # ... and the schema judges what was added, with its own message
    with pytest.raises(OverrideError, match=r"^--set \+methods.gmp.tickets=\{90: /t.pth\}: "
                                            r"methods.gmp.tickets: only a lottery-family"):
        load_study("paper", ["+methods.gmp.tickets={90: /t.pth}"])
    with pytest.raises(OverrideError, match=r"modes.full.workers is already in the study; "
                                            r"change it with --set modes.full.workers=3"):
        load_study("tiny", ["+modes.full.workers=3"])
    assert load_study("tiny", ["++modes.full.workers=3"]).mode("full").workers == 3
    # ~ removes what the file gives; the default then applies
    s = load_study("tiny", ["~methods.str", "~speed.random_profile"])
    assert "str" not in [m.name for m in s.methods]
    with pytest.raises(OverrideError, match="nothing to remove: the study file does not give "
                                            "it"):
        load_study("tiny", ["~modes.linear.workers"])
    # + on a key the schema refuses: the file's own message
    with pytest.raises(StudyError, match="unknown key 'wrkers'; valid keys:"):
        load_study("tiny", ["+modes.full.wrkers=2"])


def test_extends_studies_take_overrides():
    s = load_study("paper_mobilenet", ["modes.linear.seeds=[1, 2]",
                                       "methods.lth_t.tickets={80: /t/80.pth}"])
    assert s.mode("linear").seeds == (1, 2)  # a key the extending file gives
    assert dict(s.method("lth_t").tickets) == {80: "/t/80.pth"}  # one from its base, paper
    assert s.method("lth_t").ticket_pattern is None
    assert s.arch == "mobilenet_v1" and s.datasets == load_study("paper_mobilenet").datasets


def test_the_file_mapping_is_not_changed_and_no_override_is_the_file():
    raw = {"a": {"b": 1}}
    out = apply_overrides(raw, raw, [parse_override("a.b=2")])
    assert raw == {"a": {"b": 1}} and out == {"a": {"b": 2}}
    assert load_study("tiny", []) == load_study("tiny")
    assert study_to_dict(load_study("tiny", ["modes.full.workers=1"])) == study_to_dict(
        load_study("tiny"))  # tiny's own value


def test_use_gpu_no_reads_as_yaml_false_and_means_no():
    assert load_study("tiny", ["modes.full.use_gpu=no"]).mode("full").use_gpu == "no"
    assert load_study("tiny", ["modes.full.use_gpu=yes"]).mode("full").use_gpu == "yes"
    with pytest.raises(StudyError, match=r"use_gpu: 'maybe' is not valid"):
        load_study("tiny", ["modes.full.use_gpu=maybe"])
