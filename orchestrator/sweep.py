"""``python -m orchestrator.sweep``: run a whole transfer study as one resumable Ray sweep.

With no arguments it runs the built-in ``tiny`` study (upstream pretraining and pruning on
procedural images, transfer to datasets that ship with installed packages, DeepSparse speed
trials, report) on the local machine. Rerunning the same command resumes: finished trials
are skipped, interrupted ones continue from their last checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
from pathlib import Path

from common.errors import BadInput
from common.storage import masked
from orchestrator.options import (
    SweepOptions, check_count, check_out_dir, check_ray_address, check_runs_name,
    check_storage, check_storage_uri, check_tracking_uri,
)
from search_spaces.loader import builtin_studies, load_study, narrow, study_file
from search_spaces.schema import Study, StudyError

EXAMPLES = """\
examples:
  python -m orchestrator.sweep                              # the tiny study, end to end, on this machine
  python -m orchestrator.sweep --smoke-test                 # a minimal version for CI (about 2 minutes)
  python -m orchestrator.sweep --study paper --dry-run      # print the paper's grid and compute estimate
  python -m orchestrator.sweep --study paper --data-root /data --checkpoint-dir /ckpt \\
      --methods gmp,acdc --sparsities 90,95 --datasets pets,dtd --modes linear --seeds 2
  python -m orchestrator.sweep --study my_study.yaml --address auto --tracking-uri http://head:5000
  python -m orchestrator.sweep --study paper --address auto --storage s3://my-bucket/sparse-transfer
  python -m orchestrator.sweep --study paper --rehearsal   # the paper's 2,222 trials, synthetic: check a cluster
  python -m orchestrator.sweep --retry-failed               # rerun only the trials that failed
  ray job submit --working-dir . -- python -m orchestrator.sweep --study paper --out /mnt/shared/runs/paper

Rerunning the same command after a crash or kill finishes only what is missing.
Exit codes: 0 all finished; 1 some failed on bad input; 2 bad study, options or resources, or
another sweep on the same --out; 3 the sweep stopped; 4 some trials errored; 130 Ctrl-C;
143 SIGTERM.
Open the results: mlflow ui --backend-store-uri sqlite:///runs/tiny/mlflow.db --host 127.0.0.1
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m orchestrator.sweep",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("study")
    g.add_argument(
        "--study", default="tiny",
        help=f"built-in study name ({', '.join(builtin_studies())}) or a YAML file path "
        "(default: tiny)",
    )
    g.add_argument("--methods", help="comma list of methods to keep, e.g. gmp,acdc "
                   "(the dense baseline is always kept)")
    g.add_argument("--sparsities", help="comma list of sparsities in percent, e.g. 90,95")
    g.add_argument("--datasets", help="comma list of datasets, e.g. pets,dtd")
    g.add_argument("--modes", help="linear, full, or linear,full")
    g.add_argument("--seeds", type=int, help="keep the first N seeds of each mode")
    g.add_argument("--archs", help="architectures to run, e.g. resnet50,resnet18")
    g.add_argument("--data-root", help="folder holding the downstream datasets "
                   "(overrides the study's data_root)")
    g.add_argument("--checkpoint-dir", help="folder holding <arch>/<method>_<sparsity>.pth "
                   "checkpoints (overrides the study's checkpoint_dir)")
    r = p.add_argument_group("run")
    r.add_argument("--out", type=Path, help="output folder (default: runs/<study name>/): "
                   "Ray results, feature cache, MLflow store, results.parquet, report")
    r.add_argument("--storage", help="cloud storage for what trials keep when the cluster's "
                   "nodes share no folder, e.g. s3://bucket/prefix or gs://bucket/prefix (any "
                   "URI pyarrow opens): Ray Tune and Ray Train storage, full-finetuning "
                   "checkpoints, the feature cache and the zoo go under <URI>/<--out's name>; "
                   "the ledger, the lock and the MLflow SQLite store stay in --out")
    r.add_argument("--dry-run", action="store_true",
                   help="print the grid, resources and compute estimate; start nothing")
    r.add_argument("--smoke-test", action="store_true",
                   help="a minimal version of the study (Ray's convention for CI)")
    r.add_argument("--address", help="Ray cluster address ('auto' on a cluster's head node, "
                   "'local' for a Ray of the sweep's own); default: $RAY_ADDRESS (set by Ray "
                   "Jobs), else a local Ray")
    r.add_argument("--num-cpus", type=int, help="CPUs for a local Ray (default: all)")
    r.add_argument("--max-concurrent", type=int, help="cap on trials running at once")
    r.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else a SQLite "
                   "file in the output folder)")
    r.add_argument("--retry-failed", action="store_true",
                   help="rerun the trials recorded as failed on bad input (a rerun always "
                   "tries trials recorded as error again; finished ones never)")
    r.add_argument("--max-failures", type=int, default=2,
                   help="Ray Tune's retries of a trial that raises anything but bad input: "
                   "out of memory, a dead worker, an I/O error, a bug (default: 2)")
    r.add_argument("--rehearsal", action="store_true",
                   help="run every trial of the study as a synthetic stand-in (no checkpoints, "
                   "datasets or GPUs; numbers made up, every report page and MLflow run marked "
                   "REHEARSAL) to check a cluster, Ray Tune, MLflow and the report at the "
                   "study's size before spending GPU hours (default --out runs/<study>-rehearsal)")
    r.add_argument("--no-speed", action="store_true", help="skip the DeepSparse speed trials")
    r.add_argument("--no-report", action="store_true", help="skip writing the report")
    r.add_argument("-q", "--quiet", action="store_true", help="less progress output")
    r.add_argument("-v", "--verbose", action="count", default=0,
                   help="Ray Tune's own progress output too (its trial status table) and the "
                   "trials' logs; -vv adds each trial's results")
    return p


def study_from_args(args: argparse.Namespace) -> Study:
    study = load_study(args.study)
    if args.smoke_test:
        from orchestrator.smoke import smoke_study

        study = smoke_study(study)
    study = narrow(
        study, methods=args.methods, sparsities=args.sparsities, datasets=args.datasets,
        modes=args.modes, seeds=args.seeds, archs=args.archs,
    )
    changes = {}
    # Absolute here, in the driver: Tune trials run in their own folder, on any node.
    for key, given in (("data_root", args.data_root), ("checkpoint_dir", args.checkpoint_dir)):
        value = given or getattr(study, key)
        if value:
            changes[key] = str(Path(value).expanduser().resolve())
    if args.no_speed:
        changes.update(speed=dataclasses.replace(study.speed, enabled=False))
    return dataclasses.replace(study, **changes) if changes else study


def check_prune_settings(study: Study, name_or_path: str) -> None:
    """Each pruning run's settings (``upstream.prune`` with the method's
    ``prune_overrides``) against that method's config dataclass, at start-up: a key of
    another method, ``cycles: lots`` or ``alpha: 2`` failed only when the prune trial ran,
    after pretraining. Imports torch, so only for studies with an upstream stage; messages
    name the study file as the loader's do."""
    if study.upstream is None:
        return
    try:
        _check_prune_settings(study)
    except StudyError as e:
        raise StudyError(f"{study_file(name_or_path)}: {e}") from None


def _check_prune_settings(study: Study) -> None:
    u = study.upstream
    from search_spaces.schema import config_from, config_values
    from trainables.pruning import METHODS

    overrides = dict(u.prune_overrides)
    loader_keys = frozenset({"batch_size"})
    for m in study.methods:
        if m.family == "dense" or m.mask_from or m.name not in METHODS.names():
            continue  # no prune trial of its own (as in the grid), or the grid says why
        cls = METHODS.get(m.name).meta["config"]
        owner = f"pruning method {m.name!r}"
        shared = config_values("upstream.prune", cls, dict(u.prune), owner, loader_keys,
                               hint=" (upstream.prune goes to every method; one method's own "
                               f"settings go under upstream.prune_overrides.{m.name})")
        own = config_values(f"upstream.prune_overrides.{m.name}", cls,
                            dict(overrides.get(m.name, ())), owner, loader_keys)
        config_from(f"upstream.prune{' with prune_overrides.' + m.name if own else ''} "
                    f"(method {m.name!r})", cls, {**shared, **own})


def command_line(argv: list[str]) -> str:
    """How this sweep was started, as a shell command (the one that resumes it)."""
    return shlex.join(["python", "-m", "orchestrator.sweep", *argv])


def check_run_options(args: argparse.Namespace, study: Study) -> Path:
    """The run options a sweep cannot start with, refused before anything is written; returns
    the output folder."""
    check_count("--num-cpus", args.num_cpus, 1)
    check_count("--max-concurrent", args.max_concurrent, 1)
    check_count("--max-failures", args.max_failures, 0)
    check_storage_uri(args.storage)
    from_env = args.tracking_uri == os.environ.get("MLFLOW_TRACKING_URI")
    check_tracking_uri(args.tracking_uri,
                       "MLFLOW_TRACKING_URI" if from_env and args.tracking_uri else
                       "--tracking-uri")
    if args.out is not None:
        check_out_dir(args.out)
        return args.out
    runs = Path("runs")
    out_dir = runs / (study.name + ("-smoke" if args.smoke_test else "")
                      + ("-rehearsal" if args.rehearsal else ""))
    check_runs_name(out_dir, runs, study.name)
    check_out_dir(out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        study = study_from_args(args)
        out_dir = check_run_options(args, study)
    except (StudyError, BadInput) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from orchestrator.grid import expand

    if args.dry_run:
        from orchestrator.plan import describe

        try:
            check_prune_settings(study, args.study)
            root = SweepOptions(out_dir=out_dir.resolve(), storage=args.storage).trials_root()
            grid = expand(study, out_dir, hash_files=False, root=root)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(describe(grid))
        print(f"\noutput folder: {out_dir}  (dry run: nothing was started)")
        if root:
            print(f"trials' storage: {masked(root)} (Ray Tune and Train, features, zoo)")
        return 0
    options = SweepOptions(
        out_dir=out_dir.resolve(), tracking_uri=args.tracking_uri, address=args.address,
        retry_failed=args.retry_failed, num_cpus=args.num_cpus,
        max_concurrent=args.max_concurrent, max_failures=args.max_failures,
        speed=not args.no_speed, report=not args.no_report, smoke_test=args.smoke_test,
        verbose=0 if args.quiet else 1 + args.verbose, command=command_line(argv),
        rehearsal=args.rehearsal, storage=args.storage,
    )
    # A finished sweep run again answers before MLflow, torch or Ray are imported (seconds).
    from orchestrator.resume import rerun_exit_code

    code = rerun_exit_code(study, options)
    if code is not None:
        return code
    from orchestrator.runner import ray_address, run_sweep
    from orchestrator.tracking import TrackingError, check_store

    # What answers over the network, before run_sweep makes the output folder: a cluster or
    # a store that fails leaves nothing behind, and says so in seconds. The pruning settings
    # last: checking them imports torch.
    try:
        check_ray_address(ray_address(options), "--address" if args.address else "RAY_ADDRESS")
        if args.tracking_uri:
            check_store(args.tracking_uri)
        check_storage(args.storage)
        check_prune_settings(study, args.study)
    except (BadInput, TrackingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return run_sweep(study, options)


if __name__ == "__main__":
    sys.exit(main())
