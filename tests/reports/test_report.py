"""write_report and the ``python -m reports`` CLI on small and paper-sized tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reports.__main__ import main
from reports.report import ALPHA_CSV_COLUMNS, TABLE1_CSV_COLUMNS, write_report

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000


def test_write_report_on_the_hand_table(hand, tmp_path):
    paths = write_report(hand, tmp_path / "report", title="Hand study")
    text = paths.report_md.read_text()
    assert text.startswith("# Hand study")
    t1 = pd.read_csv(paths.table1_csv)
    assert list(t1.columns) == list(TABLE1_CSV_COLUMNS)
    row = t1[(t1["dataset"] == "cifar10") & (t1["mode"] == "linear") & (t1["sparsity"] == 90)]
    assert row["best_methods"].tolist() == ["AC/DC; GMP"]
    alpha = pd.read_csv(paths.alpha_csv)
    assert list(alpha.columns) == list(ALPHA_CSV_COLUMNS)
    assert len(alpha) == 30
    names = {p.name for p in paths.figures}
    # No speed or upstream rows: figures 4 and appendix E are absent and say "no data".
    assert names == {"fig2_accuracy_80.png", "fig2_alpha_vs_sparsity.png",
                     "fig3_alpha_vs_difficulty.png"}
    assert all(_is_png(p) for p in paths.figures)
    assert text.count("**No data**") >= 2
    # All transfer trials: linear 12 cells x 3 seeds = 36, full 12 x 2 = 24.
    assert "Rests on 60 usable trials (linear: 36, full: 24)" in text
    # Table 1 leaves out the 3 x 2 linear LTH-T trials: 30 linear.
    assert "Rests on 54 usable trials (linear: 30, full: 24)" in text
    assert "No cell of this part of the grid is missing seeds." in text
    assert not list(tmp_path.rglob("*.tmp-*"))


def test_the_contents_line_is_the_titles_of_the_sections_shown(hand, tmp_path):
    """`reports.sections.SECTIONS` in order; a section with nothing to show (best vs last
    epoch without ``accuracy_last``) is left out of the page and of the contents line."""
    from reports.sections import SECTIONS

    def contents(table, out):
        text = write_report(table, out).report_md.read_text()
        return next(line for line in text.splitlines() if line.startswith("Contents: "))

    titles = [s.title for s in SECTIONS]
    assert titles[:3] == ["Data", "The paper's findings, checked",
                          "This study next to the paper"]
    with_last = hand.assign(accuracy_last=hand["accuracy"] - 1.0)
    assert contents(with_last, tmp_path / "a") == "Contents: " + " · ".join(titles) + "."
    assert contents(hand, tmp_path / "b") == "Contents: " + " · ".join(
        t for t in titles if t != "Best vs last epoch") + "."


def test_findings_csv_is_written_like_every_other_table(hand, tmp_path):
    from reports.findings import findings_table

    paths = write_report(hand, tmp_path)
    names = [p.name for p in paths.csvs]
    assert len(names) == len(set(names))
    assert {"findings.csv", "table1.csv", "alpha.csv", "cells.csv", "missing.csv", "failed.csv",
            "difficulty.csv", "paper_comparison.csv", "alpha_by_dataset.csv"} == set(names)
    written = pd.read_csv(tmp_path / "findings.csv", keep_default_na=False)
    expected = findings_table(hand).astype(str)
    assert written.astype(str).values.tolist() == expected.values.tolist()


def test_failed_and_missing_trials_are_reported(hand, tmp_path):
    table = hand.assign(status="finished")
    mask = ((table["method"] == "GMP") & (table["sparsity"] == 80)
            & (table["dataset"] == "cifar10") & (table["mode"] == "linear")
            & (table["seed"] == 3))
    table.loc[mask, "status"] = "failed"
    table = table[~((table["method"] == "AC/DC") & (table["sparsity"] == 90)
                    & (table["dataset"] == "flowers") & (table["mode"] == "full"))]
    paths = write_report(table, tmp_path)
    text = paths.report_md.read_text()
    assert "1 failed trial(s) excluded" in text
    assert "linear · GMP · 80 % · cifar10: 2 of 3 seeds (failed: 3)" in text
    assert "full · AC/DC · 90 % · flowers: 0 of 2 seeds (not run: 1, 2)" in text
    missing = pd.read_csv(paths.missing_csv)
    assert len(missing) == 2
    # The alpha of full AC/DC 90 % now rests on cifar10 alone: (6 - 4) / 4 = 0.5
    alpha = pd.read_csv(paths.alpha_csv)
    row = alpha[(alpha["mode"] == "full") & (alpha["method"] == "AC/DC")
                & (alpha["sparsity"] == 90) & (alpha["group"] == "all")]
    assert row["alpha_mean"].tolist() == pytest.approx([0.5])
    assert row["n_datasets"].tolist() == [1]


def test_sections_without_data_say_so(tmp_path):
    only_dense = pd.DataFrame(dict(method="dense", sparsity=0, dataset="dtd", mode="linear",
                                   seed=[1, 2], accuracy=[70.0, 71.0]))
    paths = write_report(only_dense, tmp_path)
    text = paths.report_md.read_text()
    assert "**No data**" in text
    assert paths.figures == ()
    empty = pd.DataFrame(columns=["method", "sparsity", "dataset", "mode", "seed", "accuracy"])
    paths = write_report(empty, tmp_path / "empty")
    assert "No rows: **no data**." in paths.report_md.read_text()
    assert list(pd.read_csv(paths.table1_csv).columns) == list(TABLE1_CSV_COLUMNS)


def test_paper_sized_report(fake, tmp_path):
    paths = write_report(fake, tmp_path)
    names = {p.name for p in paths.figures}
    assert names == {"fig2_accuracy_80.png", "fig2_alpha_vs_sparsity.png",
                     "fig3_alpha_vs_difficulty.png", "fig4_speed_vs_accuracy.png",
                     "appE_filters_pruned.png", "paper_alpha.png"}  # its cells are the paper's
    assert all(_is_png(p) for p in paths.figures)
    text = paths.report_md.read_text()
    assert "linear · GMP · 98 % · cars: 4 of 5 seeds (not run: 141)" in text
    assert "full · STR · 95 % · dtd: 2 of 3 seeds (failed: 3)" in text
    filters = pd.read_csv(tmp_path / "filters_pruned.csv")
    acdc = filters[(filters["method"] == "AC/DC") & (filters["sparsity"] == 90)]
    assert acdc["filters_pruned_pct"].tolist() == pytest.approx([4.0])
    cells = pd.read_csv(paths.cells_csv)
    assert {"last_mean", "last_count"} <= set(cells.columns)


def test_speed_rows_without_accuracy_fall_back_to_speedup_vs_sparsity(tmp_path):
    speed = pd.DataFrame(dict(method=["GMP", "GMP"], sparsity=[90, 95], dataset="",
                              mode="speed", seed=0, accuracy=np.nan,
                              speedup_inference=[3.1, 3.8], speedup_epoch=[2.2, 2.6]))
    paths = write_report(speed, tmp_path)
    assert [p.name for p in paths.figures] == ["fig4_speedup_vs_sparsity.png"]
    text = paths.report_md.read_text()
    assert "speed-up vs sparsity instead" in text and "synthetic images have no test" in text


def test_figure4_plots_the_online_runs_accuracy_gap(hand, tmp_path):
    """Speed rows with online accuracies: Figure 4 is drawn from them and the table shows
    both accuracies, the gap and the loader shares; a synthetic row is named as having none."""
    speed = pd.DataFrame([
        dict(method=m, sparsity=s, dataset=d, online_accuracy=a, dense_online_accuracy=70.0,
             online_accuracy_gap=a - 70.0, loader_share=0.3, dense_loader_share=0.1)
        for m, s, d, a in (("Dense", 0, "cifar10", 70.0), ("GMP", 90, "cifar10", 66.5))
    ] + [dict(method="GMP", sparsity=90, dataset="synthetic")]).assign(
        mode="speed", seed=0, accuracy=np.nan, epoch_time_s=10.0, dense_epoch_time_s=25.0,
        speedup_inference=3.1)
    paths = write_report(pd.concat([hand, speed], ignore_index=True), tmp_path)
    assert "fig4_speed_vs_accuracy.png" in {p.name for p in paths.figures}
    fig4 = paths.report_md.read_text().split("### Figure 4")[1].split("\n## ")[0]
    assert "| GMP | 90 % | cifar10 | 10.00 | 25.00 | — | 2.50 | 3.10 | 0.30 | 0.10 | 66.5 " \
           "| 70.0 | -3.50 | 1 |" in fig4
    assert "No online test accuracy" in fig4 and "GMP 90 % on synthetic" in fig4
    csv = pd.read_csv(tmp_path / "speed.csv")
    assert csv.loc[csv["dataset"] == "cifar10", "gap"].tolist() == pytest.approx([0.0, -3.5])


def test_other_architectures_get_their_own_report(hand, tmp_path):
    both = pd.concat([hand.assign(arch="resnet50"),
                      hand.assign(arch="mobilenet_v1", accuracy=hand["accuracy"] - 3)])
    paths = write_report(both, tmp_path)
    assert paths.arch == "resnet50"
    (other,) = paths.other_archs
    assert other.out_dir == tmp_path / "arch-mobilenet-v1"
    assert other.report_md.exists()
    assert "arch-mobilenet-v1/report.md" in paths.report_md.read_text()
    assert "the study's main report is [report.md](../report.md)" in other.report_md.read_text()
    main_t1 = pd.read_csv(paths.table1_csv)
    assert list(main_t1.columns) == list(TABLE1_CSV_COLUMNS)
    assert main_t1["dense_mean"].max() == pytest.approx(96.0)
    assert pd.read_csv(other.table1_csv)["dense_mean"].max() == pytest.approx(93.0)


def test_cli_on_a_csv_writes_the_report(hand, tmp_path, capsys):
    csv = tmp_path / "results.csv"
    hand.assign(sparsity=hand["sparsity"] / 100).to_csv(csv, index=False)
    assert main(["--results", str(csv), "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    for name in ("report.md", "table1.csv", "alpha.csv", "cells.csv", "missing.csv",
                 "fig2_accuracy_80.png", "fig2_alpha_vs_sparsity.png",
                 "fig3_alpha_vs_difficulty.png"):
        assert (out / name).exists(), name
    assert "wrote" in capsys.readouterr().out
    # Fractions in the file give the hand-made percent table.
    t1 = pd.read_csv(out / "table1.csv")
    assert sorted(t1["sparsity"].unique()) == [80, 90]


def test_cli_on_a_study_folder(hand, tmp_path):
    hand.to_parquet(tmp_path / "results.parquet")
    assert main([str(tmp_path)]) == 0
    assert (tmp_path / "report" / "report.md").exists()


def test_cli_errors_name_the_file_and_columns(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"method": ["GMP"], "sparsity": [80], "dataset": ["dtd"]}).to_csv(bad)
    assert main(["--results", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "mode, seed, accuracy" in err
    assert main(["--results", str(tmp_path / "nope.parquet")]) == 2
    assert "nope.parquet" in capsys.readouterr().err
    assert main([]) == 2


@pytest.mark.parametrize("values", [[250.0], [-40.0], [250.0, -40.0], [float("inf")],
                                    [100.0001], [-1e-9] * 7])
def test_cli_refuses_accuracies_outside_0_100(hand, tmp_path, capsys, values):
    """Accuracies outside [0, 100] (250, -40) are refused, not averaged into the tables."""
    csv = tmp_path / "results.csv"
    bad = hand.copy()
    rows = list(range(2, 2 + len(values)))
    bad.loc[bad.index[rows], "accuracy"] = values
    bad.to_csv(csv, index=False)
    out = tmp_path / "out"
    assert main(["--results", str(csv), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(csv) in err and "'accuracy'" in err and "[0, 100]" in err, err
    assert f"row {rows[0] + 1} (" in err and f"{len(values)} row(s)" in err, err
    assert not out.exists()


@pytest.mark.parametrize("edge", [0.0, 100.0])
def test_accuracies_at_the_bounds_pass(hand, tmp_path, edge):
    csv = tmp_path / "results.csv"
    hand.assign(accuracy=hand["accuracy"].where(hand.index != hand.index[0], edge)).to_csv(
        csv, index=False)
    assert main(["--results", str(csv), "--out", str(tmp_path / "out")]) == 0


@pytest.mark.parametrize("out", ["/dev/null", "/dev/null/report", "file", "file/report"])
def test_cli_out_that_cannot_be_a_folder(hand, tmp_path, capsys, out):
    hand.to_parquet(tmp_path / "results.parquet")
    (tmp_path / "file").write_text("mine")
    target = out if out.startswith("/") else str(tmp_path / out)
    assert main([str(tmp_path), "--out", target]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"--out {target}" in err and "not a folder" in err
    assert (tmp_path / "file").read_text() == "mine"


def test_cli_subprocess_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"method": ["GMP"], "accuracy": [1.0]}).to_csv(bad, index=False)
    proc = subprocess.run([sys.executable, "-m", "reports", "--results", str(bad)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "sparsity, dataset, mode, seed" in proc.stderr and "bad.csv" in proc.stderr
    help_text = subprocess.run([sys.executable, "-m", "reports", "--help"], cwd=REPO,
                               capture_output=True, text=True, timeout=120).stdout
    assert "examples:" in help_text and "--mlflow-uri" in help_text


KEYS = {"AC/DC": "acdc", "GMP": "gmp", "LTH-T": "lth_t", "dense": "dense"}


def _study_table(hand: pd.DataFrame) -> pd.DataFrame:
    """The hand table as the tiny study's sweep writes it: method keys, arch resnet_tiny,
    trained speed rows of its backbones and the random-weight ResNet50 speed reference."""
    table = hand.assign(method=hand["method"].map(KEYS), arch="resnet_tiny", weights=np.nan)
    trained = pd.DataFrame(dict(
        method=["dense", "gmp"], sparsity=[0, 90], dataset="cifar10", mode="speed", seed=0,
        accuracy=np.nan, arch="resnet_tiny", weights="trained", speedup_inference=[1.0, 2.5],
        epoch_time_s=[4.0, 2.0], dense_epoch_time_s=4.0))
    random = pd.DataFrame(dict(
        method="random_uniform", sparsity=[80, 90, 95, 98], dataset="synthetic", mode="speed",
        seed=0, accuracy=np.nan, arch="resnet50", weights="random",
        sparsity_profile="uniform", speedup_inference=[1.8, 2.9, 3.6, 4.4],
        macs_share=[0.25, 0.125, 0.08, 0.05], batch=16))
    return pd.concat([table, trained, random], ignore_index=True)


def test_the_report_opens_on_the_study_arch_and_keeps_the_random_reference_apart(hand,
                                                                                  tmp_path):
    paths = write_report(_study_table(hand), tmp_path, title="Study tiny")
    assert paths.arch == "resnet_tiny" and paths.other_archs == ()
    assert not (tmp_path / "arch-resnet50").exists()
    text = paths.report_md.read_text()
    assert "This report is about the study's main architecture, `resnet_tiny`" in text
    # Table 1, alpha and Figures 2-3 are the study's own.
    t1 = pd.read_csv(paths.table1_csv)
    assert t1["best_mean"].notna().sum() == 8
    assert {"fig2_accuracy_80.png", "fig3_alpha_vs_difficulty.png"} <= {
        p.name for p in paths.figures}
    # The speed section: Figure 4 on the trained backbones, then the reference of its own.
    speed = text[text.index("## Speed"):text.index("## Appendix E")]
    assert speed.index("### Figure 4: speed vs accuracy (backbones of `resnet_tiny`)") < \
        speed.index("### Speed reference: random-weight ResNet50")
    assert "| Random, uniform per layer | 90 % | uniform | 2.90 | 8.00 |" in speed
    assert set(pd.read_csv(tmp_path / "speed.csv")["method"]) == {"dense", "gmp"}
    reference = pd.read_csv(paths.speed_reference_csv)
    assert reference["method"].unique().tolist() == ["random_uniform"]
    assert reference["ideal_speedup"].tolist() == pytest.approx([4.0, 8.0, 12.5, 20.0])
    assert (tmp_path / "speed_reference_resnet50.png").exists()
    # The random rows enter nothing else, but finding 8 (ResNet50 speed) reads them.
    assert "random" not in pd.read_csv(paths.cells_csv)["method"].str.cat()
    finding_8 = pd.read_csv(tmp_path / "findings.csv").set_index("finding").loc[8]
    assert finding_8["verdict"] != "not testable" and "random weights" in finding_8["against"]


def test_the_main_arch_is_the_one_with_finetuning_rows(hand):
    from reports.report import pick_main_arch

    tiny = hand.assign(arch="resnet_tiny")
    speed_only = pd.DataFrame(dict(method="dense", sparsity=0, dataset="x", mode="speed",
                                   seed=0, accuracy=np.nan, arch="resnet50"), index=[0])
    small = hand.head(6).assign(arch="resnet18")
    assert pick_main_arch(pd.concat([tiny, speed_only])) == "resnet_tiny"
    assert pick_main_arch(pd.concat([small, tiny])) == "resnet_tiny"  # most finetuning rows
    assert pick_main_arch(pd.concat([small, tiny]), "resnet18") == "resnet18"  # the study's
    assert pick_main_arch(pd.concat([tiny, speed_only]), "resnet50") == "resnet_tiny"
    assert pick_main_arch(pd.concat([tiny, small.assign(arch="resnet50")])) == "resnet50"
    assert pick_main_arch(speed_only) == "resnet50"
    assert pick_main_arch(hand) is None


def test_methods_appear_by_label_and_csvs_keep_the_key(hand, tmp_path, monkeypatch):
    from reports import figures

    legends: list[str] = []
    save = figures.save_figure

    def keep_legend(fig, path):
        legends.extend(t.get_text() for legend in fig.legends for t in legend.get_texts())
        return save(fig, path)

    monkeypatch.setattr(figures, "save_figure", keep_legend)
    paths = write_report(_study_table(hand), tmp_path)
    text = paths.report_md.read_text()
    for key in ("acdc", "lth_t", "random_uniform"):
        assert key not in text, key
    assert "| AC/DC | 80 % |" in text and "AC/DC; GMP" in text
    assert {"AC/DC", "GMP", "Dense"} <= set(legends) and "acdc" not in legends
    t1 = pd.read_csv(paths.table1_csv)
    row = t1[(t1["dataset"] == "cifar10") & (t1["mode"] == "linear") & (t1["sparsity"] == 90)]
    assert row[["best_methods", "best_methods_label"]].values.tolist() == [["acdc; gmp",
                                                                            "AC/DC; GMP"]]
    for name in ("alpha", "cells", "alpha_by_dataset", "speed"):
        csv = pd.read_csv(tmp_path / f"{name}.csv")
        columns = list(csv.columns)
        assert columns[columns.index("method") + 1] == "method_label", name
        pairs = set(zip(csv["method"], csv["method_label"]))
        assert ("gmp", "GMP") in pairs and not {"GMP", "AC/DC"} & set(csv["method"]), name


def test_labels_from_the_caller_over_the_column_over_the_paper(hand, tmp_path):
    table = _study_table(hand)
    table["method_label"] = table["method"].map({"gmp": "Gradual magnitude"})
    paths = write_report(table, tmp_path, method_labels={"acdc": "Alternating"})
    alpha = pd.read_csv(paths.alpha_csv)
    labels = dict(zip(alpha["method"], alpha["method_label"]))
    assert labels == {"acdc": "Alternating", "gmp": "Gradual magnitude", "lth_t": "LTH-T"}
    assert "| Gradual magnitude | 80 % |" in paths.report_md.read_text()


def test_methods_of_their_own_and_unknown_families_are_reported(hand, tmp_path):
    """Appendix I's label-smoothed STR next to the retrained one, Appendix J's structured AMC and
    a family no report knows: each is a method of its own, listed by family, with colours."""
    extra = []
    for key, label, family, shift in (("str_ls", "STR (label smoothing)", "regularization", -2),
                                      ("amc", "AMC", "structured", -4),
                                      ("kd_prune", "Distilled", "distillation", -1)):
        rows = hand[hand["method"] == "GMP"].assign(method=key, method_label=label,
                                                    family=family)
        extra.append(rows.assign(accuracy=rows["accuracy"] + shift))
    table = pd.concat([hand.assign(family=hand["method"].map(
        {"dense": "dense", "AC/DC": "regularization", "GMP": "progressive",
         "LTH-T": "lottery"})), *extra], ignore_index=True)
    table["lth_source"] = np.where(table["method"] == "LTH-T", "ticket weights", None)
    paths = write_report(table, tmp_path)
    text = paths.report_md.read_text()
    listing = next(line for line in text.splitlines() if line.startswith("Methods (sparsities"))
    order = [listing.index(name) for name in
             ("Dense (0 %; dense)", "GMP (80 %, 90 %; progressive)",
              "STR (label smoothing) (80 %, 90 %; regularization)", "LTH-T (90 %; lottery)",
              "AMC (80 %, 90 %; structured)", "Distilled (80 %, 90 %; distillation)")]
    assert order == sorted(order)
    assert "LTH-T weights (`lth_source`): LTH-T: ticket weights (90 %). \"ticket weights\": " \
        "the reference code's LTH-T, a ticket of Chen et al. (CVPR 2021) as it is" in text
    alpha = pd.read_csv(paths.alpha_csv)
    assert {"str_ls", "amc", "kd_prune"} <= set(alpha["method"])
    assert "fig2_alpha_vs_sparsity.png" in {p.name for p in paths.figures}


def _checkpoint_rows(table: pd.DataFrame, *, measured: bool) -> pd.DataFrame:
    """The checkpoint stage's rows for every backbone of ``table``'s transfer trials."""
    import json

    backbones = table[table["mode"].isin(["linear", "full"])][["method", "sparsity"]]
    rows = []
    for method, sparsity in backbones.drop_duplicates().itertuples(index=False):
        share = sparsity / 1000.0
        layers = {"conv1.weight": [0.0, 0.0], "layer1.0.conv1.weight": [sparsity - 5, 1.0],
                  "layer4.1.conv2.weight": [min(99.0, sparsity + 5), share * 100],
                  "fc.weight": [sparsity, None]}
        rows.append(dict(method=method, sparsity=sparsity, dataset="imagenet",
                         mode="checkpoint", seed=0, status="finished",
                         accuracy=76.0 - sparsity / 10 if measured else np.nan,
                         accuracy_real=83.0 - sparsity / 10 if measured else np.nan,
                         filters_pruned_share=share, sparsity_measured=float(sparsity),
                         layer_stats_json=json.dumps(layers),
                         upstream_eval=("evaluated on ImageNet val, ReaL (50000 validation "
                                        "images)" if measured else
                                        "ImageNet validation not found: expected "
                                        "/data/imagenet/val (...); no upstream accuracy")))
    return pd.DataFrame(rows)


def test_checkpoint_rows_give_table3_appendix_e_and_per_layer_sparsity(hand, tmp_path):
    table = pd.concat([hand, _checkpoint_rows(hand, measured=True)], ignore_index=True)
    paths = write_report(table, tmp_path / "r")
    text = paths.report_md.read_text()
    assert "## Table 3: upstream validation accuracy" in text
    assert "ReaL top-1 (%)" in text and "ImageNetV2" not in text.split("## Table 3")[1][:400]
    t3 = pd.read_csv(tmp_path / "r" / "table3.csv")
    assert t3["top1"].notna().all() and set(t3.columns) >= {"top1", "real", "v2"}
    assert "checkpoint row(s) with `filters_pruned_share`" in text
    names = {p.name for p in paths.figures}
    assert {"appE_filters_pruned.png", "layer_sparsity.png"} <= names
    layers = pd.read_csv(tmp_path / "r" / "layer_sparsity.csv")
    assert set(layers["layer"]) == {"conv1.weight", "layer1.0.conv1.weight",
                                    "layer4.1.conv2.weight", "fc.weight"}


def test_table3_shows_imagenet_v2s_average_beside_each_variant(hand, tmp_path):
    rows = _checkpoint_rows(hand, measured=True)
    for i, variants in enumerate(([50.0, 25.0, 80.0], [60.0, np.nan, 70.0])):
        rows.loc[i, ["accuracy_v2_matched_frequency", "accuracy_v2_threshold07",
                     "accuracy_v2_top_images"]] = variants
    rows.loc[0, "accuracy_v2"] = 155.0 / 3
    rows.loc[1, "upstream_eval"] = "evaluated on ImageNet val; threshold-0.7 not found"
    paths = write_report(pd.concat([hand, rows], ignore_index=True), tmp_path / "r")
    section = paths.report_md.read_text().split("## Table 3")[1].split("\n## ")[0]
    assert ("| ReaL top-1 (%) | ImageNetV2 (average) (%) | V2 matched-frequency (%) | "
            "V2 threshold-0.7 (%) | V2 top-images (%) |") in section
    assert list(rows.loc[:1, "method"]) == ["dense", "AC/DC"]  # the report shows labels
    lines = section.splitlines()
    assert "| Dense | 0 % | 76.00 | 83.00 | 51.67 | 50.00 | 25.00 | 80.00 |" in lines
    assert "| AC/DC | 80 % | 68.00 | 75.00 | — | 60.00 | — | 70.00 |" in lines
    assert "**It is left empty for 1 backbone(s)** that lack a variant" in section
    t3 = pd.read_csv(tmp_path / "r" / "table3.csv")
    assert t3["v2"].notna().sum() == 1 and t3["v2_top_images"].notna().sum() == 2


def test_table3_says_in_one_line_why_nothing_was_measured(hand, tmp_path):
    table = pd.concat([hand, _checkpoint_rows(hand, measured=False)], ignore_index=True)
    text = write_report(table, tmp_path / "r").report_md.read_text()
    section = text.split("## Table 3")[1].split("\n## ")[0]
    assert "0 of" in section and "Not measured: ImageNet validation not found" in section
    assert "Appendix E" in text and "**No data** (no rows with mode `checkpoint`" not in text


def test_figure4_marks_extrapolated_epochs(hand, tmp_path):
    speed = pd.DataFrame([
        dict(method=m, sparsity=s, dataset=d, mode="speed", seed=0, accuracy=np.nan,
             epoch_time_s=10.0 if s else 25.0, dense_epoch_time_s=25.0, speedup_inference=3.1,
             epoch_extrapolated=(d == "flowers"))
        for d in ("cifar10", "flowers") for m, s in (("Dense", 0), ("GMP", 90))])
    text = write_report(pd.concat([hand, speed], ignore_index=True),
                        tmp_path).report_md.read_text()
    fig4 = text.split("### Figure 4")[1].split("\n## ")[0]
    assert "2 of 4 epoch time(s) are **extrapolated**" in fig4
    assert "| extrapolated |" in fig4 and "| whole |" in fig4
    assert "Online epochs on: cifar10, flowers." in fig4


def test_the_data_section_names_the_code_libraries_and_machines_of_the_rows(hand, tmp_path):
    """Provenance columns (``common.columns.PROVENANCE``, written by the sweep): each distinct
    code and library set with its rows, each machine, and the rows recorded without them."""
    from common import columns as C

    made = {C.PROJECT_VERSION: "0.1.0", C.CODE_DIGEST: "git:abc", C.PYTHON_VERSION: "3.11.7",
            C.TORCH_VERSION: "2.14.1", C.RAY_VERSION: "2.60.0", C.DEEPSPARSE_VERSION: "1.8.0",
            C.MLFLOW_VERSION: "3.17.2", C.HOSTNAME: "node-a", C.CPU_MODEL: "AMD EPYC"}
    table = hand.assign(**made)
    later = table.index[:3]  # resumed with other code on another machine
    table.loc[later, [C.CODE_DIGEST, C.HOSTNAME]] = ["sha256:0123456789abcdef", "node-b"]
    table.loc[table.index[3], list(made)] = None  # recorded before provenance was kept
    text = write_report(table, tmp_path).report_md.read_text()
    data = text[text.index("## Data"):text.index("\n## ", text.index("## Data") + 1)]
    libraries = ("Python `3.11.7`, torch `2.14.1`, Ray `2.60.0`, DeepSparse `1.8.0`, "
                 "MLflow `3.17.2`")
    assert (f"- sparse-transfer `0.1.0`, code `git:abc`, {libraries}: {len(hand) - 4} row(s)"
            in data)
    assert f"- sparse-transfer `0.1.0`, code `sha256:0123456789abcdef`, {libraries}: 3 row(s)" \
        in data
    assert f"- host `node-a`, CPU `AMD EPYC`: {len(hand) - 4} row(s)" in data
    assert "- host `node-b`, CPU `AMD EPYC`: 3 row(s)" in data
    assert "- 1 row(s) recorded without provenance" in data
    # a table without the columns (another tool's) says nothing about them
    assert "Made by" not in write_report(hand, tmp_path / "plain").report_md.read_text()
