"""``sparse-transfer``: one installed command whose subcommands are exactly the ``python -m``
forms (the same function, the same options and output), installed as a console script by
the project's ``pip install`` (``make setup``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from orchestrator import cli

REPO = Path(__file__).resolve().parents[2]
FORMS = {"sweep": ("orchestrator.sweep", "main"), "report": ("reports.__main__", "main"),
         "checkpoints": ("trainables.checkpoints.__main__", "main"),
         "datasets": ("trainables.datasets.__main__", "main")}


def _help(run, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        run()
    assert e.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_each_subcommand_is_its_python_m_form(name, capsys):
    import importlib

    module, function = FORMS[name]
    python_m = getattr(importlib.import_module(module), function)
    ours = _help(lambda: cli.main([name, "--help"]), capsys)
    theirs = _help(lambda: python_m(["--help"]), capsys)
    form = cli.COMMANDS[name][0]
    assert form == f"python -m {module.removesuffix('.__main__')}"
    # the same options and text; only the name differs (argparse wraps by its length)
    names = (f"sparse-transfer {name}", form)
    assert _unwrapped(ours, names) == _unwrapped(theirs, names)
    assert ours.startswith(f"usage: sparse-transfer {name}")


def _unwrapped(text: str, names: tuple[str, ...]) -> str:
    """Help text with the command's names taken out and whitespace runs joined: argparse
    wraps the usage line by the name's length."""
    for name in names:
        text = text.replace(name, "PROG")
    return " ".join(text.split())


def test_the_sweep_subcommand_runs_the_sweeps_main(capsys):
    args = ["--study", "paper", "--dry-run", "--set", "modes.linear.seeds=[1]"]
    assert cli.main(["sweep", *args]) == 0
    ours = capsys.readouterr()
    from orchestrator.sweep import main

    assert main(args) == 0
    theirs = capsys.readouterr()
    assert ours.out == theirs.out and "Trials per method and stage" in ours.out
    assert ours.err == theirs.err


def test_no_or_an_unknown_subcommand_exits_2_with_the_list(capsys):
    assert cli.main([]) == 2
    assert "usage: sparse-transfer {sweep,report,checkpoints,datasets}" in capsys.readouterr().err
    assert cli.main(["sweeep"]) == 2
    assert "unknown subcommand 'sweeep'; choose one of sweep, report, checkpoints, datasets" \
        in capsys.readouterr().err
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    for name, (form, _) in cli.COMMANDS.items():
        assert f"  {name}" in text and form in text
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("sparse-transfer 0.")


def test_pyproject_declares_the_command():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"sparse-transfer": "orchestrator.cli:main"}
    assert "pip install" in (REPO / "Makefile").read_text()  # `make setup` installs the project


def test_make_setups_install_puts_the_command_on_the_path(tmp_path):
    """What ``make setup``'s ``pip install`` does with ``[project.scripts]``, from a copy of
    the project (a build leaves ``build/`` and ``*.egg-info`` beside the sources), offline:
    the console script exists and runs each subcommand from the installed packages."""
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "runs", "tests", "__pycache__", "*.pyc", "build", "*.egg-info"))
    target = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(target), str(src)],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    script = target / "bin" / "sparse-transfer"
    assert script.is_file()
    assert (target / "orchestrator" / "stages" / "full.py").is_file()  # every subpackage
    assert (target / "trainables" / "entry" / "trial.py").is_file()
    env = {**os.environ, "PYTHONPATH": str(target), "NM_DISABLE_ANALYTICS": "1"}
    for args, expect in ((["--help"], "sweep"), (["sweep", "--help"], "--set KEY=VALUE"),
                         (["report", "--help"], "usage: sparse-transfer report"),
                         (["datasets", "--layouts"], "digits:")):
        run = subprocess.run([str(script), *args], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=120, check=False)
        assert run.returncode == 0, run.stderr[-2000:]
        assert expect in run.stdout
    dry = subprocess.run([str(script), "sweep", "--study", "tiny", "--dry-run"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    assert dry.returncode == 0 and "Study 'tiny'" in dry.stdout, dry.stderr[-2000:]
    # ... with the installed packages, not this checkout's
    where = subprocess.run([sys.executable, "-c", "import orchestrator.cli as m; "
                            "print(m.__file__)"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=60, check=False)
    assert where.stdout.strip() == str(target / "orchestrator" / "cli.py")
