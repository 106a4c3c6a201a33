"""``python -m trainables.checkpoints --fetch``: against an imitation of a Seafile folder
share on 127.0.0.1 (``seafile_share``) holding small resnet_tiny checkpoints: a good run, a
wrong file, a cut-off download resumed, a share that answers 404."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bad_input import kit
from tests.trainables.checkpoints.samples import ARCH, pruned_tiny
from tests.trainables.checkpoints.seafile_share import SeafileImitation, Share
from trainables.checkpoints import load_checkpoint, save_reference_checkpoint
from trainables.checkpoints.__main__ import main
from trainables.checkpoints.fetch import Method, method_of, sparsity_in_name

METHODS = {
    "dense": {"family": "dense", "sparsities": [0]},
    "gmp": {"family": "progressive", "sparsities": [90]},
    "acdc": {"label": "AC/DC", "family": "regularization", "sparsities": [80]},
    "lth_t": {"label": "LTH-T", "family": "lottery", "sparsities": [80],
              "tickets": "{arch}/lth_t_{sparsity}_ticket.pth"},
}


def _checkpoint(path: Path, fraction: float) -> Path:
    model, _, _ = pruned_tiny(fraction=fraction)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_reference_checkpoint(path, model, ARCH, "imagenet")
    return path


@pytest.fixture
def share(tmp_path):
    """The share: the authors' own names, a sub-folder and a file that is no checkpoint."""
    root = tmp_path / "share"
    _checkpoint(root / ARCH / "ResNet_tiny_dense.pth", 0.0)
    _checkpoint(root / ARCH / "gmp_90.pth", 0.9)
    _checkpoint(root / ARCH / "AC-DC_80.pth", 0.8)
    _checkpoint(root / "other" / "gmp_95.pth", 0.95)  # a sparsity the study does not want
    (root / "README.txt").write_text("converted checkpoints\n")
    server = SeafileImitation(Share("91de9650cfb54b77b7d1", root))
    yield server
    server.stop()


@pytest.fixture
def study(tmp_path) -> Path:
    return kit.write_study(tmp_path / "study.yaml", ckpt_dir=tmp_path / "unused",
                           methods=METHODS)


def fetch(server: SeafileImitation, folder: Path, study: Path, token: str | None = None) -> int:
    return main(["--fetch", ARCH, "--checkpoint-dir", str(folder), "--share",
                 server.link(token), "--study", str(study)])


def test_names_give_the_method_and_content_the_sparsity():
    methods = [Method("gmp", "GMP", (80, 90)), Method("str", "STR", (80, 90)),
               Method("rigl_erk5x", "RigL ERK 5x", (90,)), Method("acdc", "AC/DC", (90,)),
               Method("dense", "Dense", (0,), dense=True)]
    pick = {n: (m.name if (m := method_of(n, "resnet50", methods)) else None) for n in (
        "resnet50_gmp_90.pth", "ResNet50-STR-80.pth", "rigl_erk5x_resnet50_90.pth",
        "resnet50_AC-DC_90.pth", "resnet50_dense.pth", "resnet50.pth")}
    assert pick == {"resnet50_gmp_90.pth": "gmp", "ResNet50-STR-80.pth": "str",
                    "rigl_erk5x_resnet50_90.pth": "rigl_erk5x", "resnet50_AC-DC_90.pth": "acdc",
                    "resnet50_dense.pth": "dense", "resnet50.pth": None}
    assert sparsity_in_name("resnet50_gmp_90.pth", "resnet50") == 90
    assert sparsity_in_name("rigl_erk1x_resnet50_95.pth", "resnet50") == 95
    assert sparsity_in_name("mobilenet_v1_mfac_89.pth", "mobilenet_v1") == 89
    assert sparsity_in_name("resnet50_dense.pth", "resnet50") is None


def test_a_good_run_lays_out_every_checkpoint_checked_and_a_rerun_fetches_nothing(
        share, study, tmp_path, capsys):
    folder = tmp_path / "checkpoints"
    assert fetch(share, folder, study) == 0
    out, err = capsys.readouterr()
    for method, sparsity in (("dense", 0), ("gmp", 90), ("acdc", 80)):
        ckpt = load_checkpoint(folder / ARCH / f"{method}_{sparsity}.pth", arch=ARCH,
                               expect_sparsity=sparsity)
        assert ckpt.arch == ARCH
    assert "AC-DC_80.pth -> " in out and "(AC/DC, 80 %, checked)" in out
    assert "LTH-T (lth_t): Chen et al.'s tickets were never made public" in out
    assert "3 checkpoint(s) in place" in out and "0 missing, 0 refused" in out
    assert "gmp_90.pth" in err  # the progress bar, on stderr
    assert not list((folder / ".fetch").iterdir())  # no download left half-way
    assert "gmp_95.pth: the study wants no GMP at 95 %; not needed" in out
    assert ("/seafhttp/files/0a1b2c/other/gmp_95.pth", "") not in share.share.requests

    share.share.requests.clear()
    assert fetch(share, folder, study) == 0
    out, _ = capsys.readouterr()
    assert out.count("already there:") == 3
    assert not [p for p, _ in share.share.requests if p.startswith("/seafhttp/")]


def test_a_wrong_file_is_refused_and_not_laid_out(share, study, tmp_path, capsys):
    root = share.share.root / ARCH
    _checkpoint(root / "gmp_90.pth", 0.8)  # named 90 %, pruned to 80 %
    (root / "AC-DC_80.pth").write_text("<!DOCTYPE html><html>Not found</html>")
    folder = tmp_path / "checkpoints"
    assert fetch(share, folder, study) == 1
    out, _ = capsys.readouterr()
    assert ("refused: gmp_90.pth: its name says 90 % but its measured global sparsity is "
            "80.00 %") in out
    assert "refused: AC-DC_80.pth: checkpoint AC-DC_80.pth is a text file" in out
    assert not (folder / ARCH / "gmp_90.pth").exists()
    assert not (folder / ARCH / "acdc_80.pth").exists()
    assert (folder / ARCH / "dense_0.pth").exists()
    assert "missing: gmp 90 %" in out and "2 refused" in out
    assert not list((folder / ".fetch").iterdir())


def test_a_cut_off_download_resumes_where_it_stopped(share, study, tmp_path, capsys):
    name = f"/{ARCH}/gmp_90.pth"
    source = (share.share.root / name.lstrip("/")).read_bytes()
    share.share.cut_after[name] = 4096
    folder = tmp_path / "checkpoints"
    assert fetch(share, folder, study) == 2
    _, err = capsys.readouterr()
    assert f"the download ended after 4096 of {len(source)} bytes" in err
    assert "run the same command again to resume it" in err
    assert (folder / ".fetch" / "gmp_90.pth.part").stat().st_size == 4096

    share.share.requests.clear()
    assert fetch(share, folder, study) == 0
    out, _ = capsys.readouterr()
    assert f"gmp_90.pth: resuming after 4,096 of {len(source):,} bytes" in out
    assert ("/seafhttp/files/0a1b2c/" + name.lstrip("/"), "bytes=4096-") in share.share.requests
    assert (folder / ARCH / "gmp_90.pth").read_bytes() == source


def test_a_share_that_answers_404_is_one_line(share, study, tmp_path, capsys):
    assert fetch(share, tmp_path / "checkpoints", study, token="0123456789abcdef") == 2
    _, err = capsys.readouterr()
    assert err.startswith("error: the share http://127.0.0.1:")
    assert "answers 404 (Share link 0123456789abcdef not found.)" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "checkpoints").exists()


def test_fetch_needs_a_folder_and_no_file(capsys):
    with pytest.raises(SystemExit):
        main(["--fetch", "resnet50"])
    assert "--checkpoint-dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([])
