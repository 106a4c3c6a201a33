"""``<out>/study.yaml``: the study as run, loadable as a study file; a rerun whose study
differs from it names the keys that changed and what that does to trial ids."""

from __future__ import annotations

import yaml

from orchestrator.grid import expand
from orchestrator.study_record import (
    STUDY_FILE, change_line, changed_keys, id_changes, previous_study, write_study,
)
from search_spaces.loader import load_study, narrow


def test_study_yaml_is_the_study_as_run_and_runs_it_again(tmp_path):
    study = narrow(load_study("tiny", ["modes.linear.seeds=[21, 51]"]), methods="gmp")
    path = write_study(tmp_path, study, "search_spaces/tiny.yaml",
                       ["modes.linear.seeds=[21, 51]"])
    assert path == tmp_path / STUDY_FILE
    text = path.read_text()
    assert text.startswith("# The study as the sweep ran it: search_spaces/tiny.yaml with "
                           "--set 'modes.linear.seeds=[21, 51]'")
    assert load_study(path) == study == previous_study(tmp_path)
    again = expand(load_study(path), tmp_path, hash_files=False).all_trials()
    assert [t.trial_id for t in again] == [
        t.trial_id for t in expand(study, tmp_path, hash_files=False).all_trials()]
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically, nothing left behind


def test_no_previous_study_or_the_same_one_says_nothing(tmp_path):
    tiny = load_study("tiny")
    assert change_line(tmp_path, tiny) is None
    write_study(tmp_path, tiny)
    assert change_line(tmp_path, tiny) is None
    (tmp_path / STUDY_FILE).write_text("name: [unreadable")
    assert previous_study(tmp_path) is None and change_line(tmp_path, tiny) is None


def test_a_change_of_trial_ids_is_named_with_its_keys_and_counts(tmp_path):
    tiny = load_study("tiny")
    write_study(tmp_path, tiny)
    changed = load_study("tiny", ["modes.full.recipe.epochs=5"])
    # full finetuning's epochs enter the id of every full trial, of no other: resnet_tiny's
    # 16 backbones x 4 datasets x 3 seeds, mobilenet_tiny's 8 x 4 x 1 seed = 192 + 32
    assert id_changes(tiny, changed) == {"full": 224}
    line = change_line(tmp_path, changed)
    assert line == (f"the study differs from the last run's ({tmp_path / STUDY_FILE}): "
                    "modes.full.recipe.epochs 4 -> 5; 224 of its trials have ids the last "
                    "run's do not (full 224): they run anew; 224 of the last run's trials are "
                    "not in it (their results stay in trials/ and results.parquet: use another "
                    "--out to keep the two apart)")


def test_a_change_that_keeps_ids_and_a_narrowed_grid_are_told_apart(tmp_path):
    tiny = load_study("tiny")
    write_study(tmp_path, tiny)
    same_ids = load_study("tiny", ["estimate.train_images_per_gpu_s=10"])
    line = change_line(tmp_path, same_ids)
    assert line.endswith("estimate.train_images_per_gpu_s 20000.0 -> 10.0; every trial id "
                         "stays")
    fewer = narrow(tiny, datasets="digits")
    line = change_line(tmp_path, fewer)
    assert ": datasets.textures removed, datasets.fine_stripe_angle removed, " in line
    assert "of its trials have ids" not in line  # nothing new: only trials left out
    gone = sum(1 for t in expand(tiny, tmp_path, hash_files=False).all_trials()
               if t.dataset in ("textures", "fine_stripe_angle", "fine_shape_detail"))
    assert f"; {gone} of the last run's trials are not in it" in line


def test_changed_keys_names_dotted_keys_with_both_values():
    before = yaml.safe_load("a: {b: 1, c: [1, 2]}\nd: x\n")
    after = yaml.safe_load("a: {b: 2, c: [1, 2], e: true}\n")
    assert changed_keys(before, after) == ["a.b 1 -> 2", "a.e added", "d removed"]
