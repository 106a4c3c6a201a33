"""``python -m trainables.datasets``: the layouts (Table 3's sets included) and ``--check``."""

from __future__ import annotations

from tests.trainables.datasets.samples import STUDY_TABLE
from trainables.datasets.__main__ import main


def test_cli_prints_layouts_and_checks(tmp_path, capsys):
    assert main(["--layouts"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name}:" in out for name in STUDY_TABLE) and "digits:" in out
    # Table 3's upstream sets too: ImageNet val, ReaL and each of ImageNetV2's three variants
    assert "imagenet/val/<wnid>/" in out and "imagenet/real.json" in out
    assert all(f"imagenetv2/imagenetv2-{v}-format-val/<class index 0..999>/" in out
               for v in ("matched-frequency", "threshold0.7", "top-images"))
    assert main(["--check", str(tmp_path), "pets", "lfw_faces"]) == 2
    out = capsys.readouterr().out
    assert "ERROR" in out and "140 train / 60 test" in out
