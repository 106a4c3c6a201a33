"""A rehearsal's report can never pass for results: every page, CSV and figure is marked."""

from __future__ import annotations

import pandas as pd

from reports import figures
from reports.report import REHEARSAL_BANNER, is_rehearsal, write_report
from tests.reports.sample_results import fake_results


def _two_archs() -> pd.DataFrame:
    return pd.concat([fake_results(arch="resnet50"), fake_results(arch="mobilenet_v1")],
                     ignore_index=True)


def test_every_page_and_csv_of_a_rehearsal_is_marked(tmp_path):
    rows = _two_archs().assign(rehearsal=True)
    paths = write_report(rows, tmp_path, title="Study x")
    pages = [paths, *paths.other_archs]
    assert len(pages) == 2
    for page in pages:
        text = page.report_md.read_text()
        assert text.startswith("# REHEARSAL: Study x")
        assert REHEARSAL_BANNER in text.split("\n## ")[0]  # before the first section
        for csv in (*page.csvs, page.out_dir / "findings.csv"):
            frame = pd.read_csv(csv)
            assert frame.columns[0] == "rehearsal" and frame["rehearsal"].all(), csv
        assert page.figures


def test_a_real_report_has_no_mark_and_one_rehearsal_row_marks_it_all(tmp_path):
    real = fake_results()
    paths = write_report(real, tmp_path / "real")
    assert "REHEARSAL" not in paths.report_md.read_text()
    assert "rehearsal" not in pd.read_csv(paths.table1_csv).columns
    # Mixed (should never happen: the sweep refuses it) is marked, never passed as results.
    mixed = real.assign(rehearsal=[True] + [None] * (len(real) - 1))
    assert is_rehearsal(mixed)
    assert REHEARSAL_BANNER in write_report(mixed, tmp_path / "mixed").report_md.read_text()
    # From MLflow the mark is a tag: the text "True".
    assert is_rehearsal(real.assign(rehearsal="True")) and not is_rehearsal(real)


def test_figures_saved_in_a_stamped_block_carry_the_stamp(tmp_path, monkeypatch):
    texts: list[str] = []
    real_save = figures.save_figure

    def spy(fig, path):
        out = real_save(fig, path)
        texts.extend(t.get_text() for t in fig.texts)
        return out

    monkeypatch.setattr(figures, "save_figure", spy)
    write_report(fake_results().assign(rehearsal=True), tmp_path / "r")
    assert texts and sum("REHEARSAL" in t for t in texts) >= 3
    texts.clear()
    write_report(fake_results(), tmp_path / "real")
    assert not any("REHEARSAL" in t for t in texts)
