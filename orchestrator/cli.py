"""``sparse-transfer``: the project's one installed command, a subcommand per job.

``sparse-transfer sweep|report|checkpoints|datasets ...`` is exactly ``python -m
orchestrator.sweep|reports|trainables.checkpoints|trainables.datasets ...``: the same
function is called with the rest of the command line, only the name it shows in ``--help``
and in the resume command differs. Installed by ``make setup`` (``pip install -e .``:
``[project.scripts]`` in ``pyproject.toml``); the ``python -m`` forms keep working.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

NAME = "sparse-transfer"
# subcommand -> (its python -m form, what it does)
COMMANDS = {
    "sweep": ("python -m orchestrator.sweep", "run or resume a study as one Ray sweep"),
    "report": ("python -m reports", "write a study's report from its results or MLflow"),
    "checkpoints": ("python -m trainables.checkpoints",
                    "show what a checkpoint file holds"),
    "datasets": ("python -m trainables.datasets",
                 "where each dataset must be on disk; check or download them"),
}


def usage() -> str:
    """The command's help: its subcommands and their ``python -m`` forms."""
    width = max(map(len, COMMANDS))
    lines = [f"usage: {NAME} {{{','.join(COMMANDS)}}} [options]", "",
             "The project's jobs, each the same as its python -m form:", ""]
    lines += [f"  {name:<{width}}  {what} ({module})"
              for name, (module, what) in COMMANDS.items()]
    lines += ["", f"{NAME} SUBCOMMAND --help lists that subcommand's options."]
    return "\n".join(lines)


def _entry(name: str) -> Callable[..., int]:
    """The ``main`` of a subcommand, imported when it is called (a report needs no Ray)."""
    if name == "sweep":
        from orchestrator.sweep import main
    elif name == "report":
        from reports.__main__ import main
    elif name == "checkpoints":
        from trainables.checkpoints.__main__ import main
    else:
        from trainables.datasets.__main__ import main
    return main


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sparse-transfer SUBCOMMAND ...``; returns its exit code (2: no or an unknown
    subcommand, as argparse answers a bad option)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name == "--version":
        from orchestrator.provenance import project_version

        print(f"{NAME} {project_version()}")
        return 0
    if name not in COMMANDS:
        print(f"{NAME}: error: unknown subcommand {name!r}; choose one of "
              f"{', '.join(COMMANDS)} ({NAME} --help)", file=sys.stderr)
        return 2
    return int(_entry(name)(rest, prog=f"{NAME} {name}") or 0)


if __name__ == "__main__":
    sys.exit(main())
