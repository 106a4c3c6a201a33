"""Can the cluster ever run a stage's trials? Checked before the stage starts.

Why: Ray queues a request that no node can hold and waits forever (a Ray Train worker group
retries its start every 60 s without end), so a study asking for more than the cluster has
showed "0/3 done · 1 running" with no hint why. A request is checked against the live nodes'
total resources (``ray.nodes()``), not what is free now: a request that fits once the running
trials end is fine. On an autoscaling cluster the node types its autoscaler can launch count
too (``launchable_nodes``), so a request for a node that is not up yet is not refused. A
Ray Train worker group asks for all its workers at once; Ray Train packs them softly
(``PACK``), so they may spread over nodes: it can start when each worker fits some node,
enough workers fit the nodes together, and the total fits the cluster.

What the study's trials ask for (``full_worker_plan``, ``mode_trial``, ``ray_train_trial``,
``ray_train_concurrency``) is computed here too, for the stages to declare
(``orchestrator.stages``). Pure functions of plain dicts, so the rules are tested without Ray.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from common.errors import BadInput
from search_spaces.schema import ModeSpec, Study
from trainables.entry.context import FullPlan

# Ray keeps resources in units of 1/10000; a float sum such as 0.2 + 2 * 0.9 must still fit 2.
EPS = 1e-4


class Unschedulable(BadInput):
    """A stage's trials ask for more than any live node (or the whole cluster) can hold;
    ``fits``: the ``--set key=value`` options that would fit, best first."""

    fits: tuple[str, ...] = ()


def set_option(key: str, value: object, note: str = "") -> str:
    """A changed study value as the ``--set`` option that makes it (pasteable), then a note."""
    return f"--set {key}={value}" + (f" ({note})" if note else "")


@dataclass(frozen=True)
class Node:
    """A live node's total resources (``{"CPU": 8.0, "GPU": 1.0, "speed_node": 1.0}``)."""

    node_id: str
    resources: dict[str, float]

    def get(self, key: str) -> float:
        return float(self.resources.get(key, 0.0))


@dataclass(frozen=True)
class Request:
    """What one trial of a stage asks for at once.

    ``trial``: the Tune trial (or Ray task) itself. ``workers`` x ``per_worker``: the Ray
    Train worker group it starts, if any. ``keys``: the study keys (name -> value) that set
    these numbers, named in the message when the request cannot be met.
    """

    kind: str
    trial: dict[str, float]
    workers: int = 0
    per_worker: dict[str, float] = field(default_factory=dict)
    keys: tuple[tuple[str, object], ...] = ()

    def total(self, key: str) -> float:
        return self.trial.get(key, 0.0) + self.workers * self.per_worker.get(key, 0.0)


def live_nodes() -> list[Node]:
    """The cluster's alive nodes and their total resources, from ``ray.nodes()``."""
    import ray

    return [Node(n["NodeID"], {k: float(v) for k, v in n.get("Resources", {}).items()})
            for n in ray.nodes() if n.get("Alive")]


# Where `ray up` puts the autoscaler's config on the head (cluster.yaml's `ray start --head
# --autoscaling-config=~/ray_bootstrap_config.yaml`), with each type's resources filled in.
AUTOSCALING_CONFIG = "~/ray_bootstrap_config.yaml"
AUTOSCALING_CONFIG_ENV = "SPARSE_TRANSFER_AUTOSCALING_CONFIG"
# A type with unbounded max_workers still counts as this many nodes: enough for any request.
MAX_COPIES = 64


def node_types(config: dict[str, Any]) -> list[Node]:
    """The worker nodes an autoscaler config can launch: ``max_workers`` copies of each of
    its ``available_node_types`` but the head's, with the resources the type advertises
    (a type whose resources are still ``{}`` is detected at launch and is left out)."""
    types = config.get("available_node_types") or {}
    head = config.get("head_node_type")
    found = []
    for name, t in types.items():
        res = {k: float(v) for k, v in (t.get("resources") or {}).items()}
        count = t.get("max_workers", config.get("max_workers", 0))
        if name == head or not res or not count:
            continue
        count = MAX_COPIES if count < 0 else min(int(count), MAX_COPIES)
        found += [Node(f"type:{name}", res)] * count
    return found


def launchable_nodes(environ: Mapping[str, str] = os.environ) -> list[Node]:
    """Nodes an autoscaling cluster can add: from the cluster config the autoscaler reported
    to the GCS (KubeRay, autoscaler v2), else from its config file on the head (``ray up``
    writes it to ``~/ray_bootstrap_config.yaml``; ``$SPARSE_TRANSFER_AUTOSCALING_CONFIG``
    names another); none on a fixed cluster."""
    try:
        import ray._private.state

        reported = ray._private.state.state.get_cluster_config()
    except Exception:  # noqa: BLE001 - a private API: fall back to the file
        reported = None
    if reported is not None and reported.node_group_configs:
        found = []
        for group in reported.node_group_configs:
            count = group.max_count
            if count == 0 or not group.resources:
                continue
            count = MAX_COPIES if count < 0 else min(count, MAX_COPIES)
            res = {k: float(v) for k, v in group.resources.items()}
            found += [Node(f"type:{group.name}", res)] * count
        return found
    path = Path(environ.get(AUTOSCALING_CONFIG_ENV) or AUTOSCALING_CONFIG).expanduser()
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return []
    return node_types(config) if isinstance(config, dict) else []


def cluster_nodes(autoscaling: bool = True) -> list[Node]:
    """What the cluster can ever hold: its live nodes, plus the nodes its autoscaler can
    launch (``autoscaling``: the sweep joined a cluster rather than starting its own Ray)."""
    return live_nodes() + (launchable_nodes() if autoscaling else [])


def _fits(need: dict[str, float], node: Node) -> bool:
    return all(node.get(k) + EPS >= v for k, v in need.items() if v > 0)


def _copies(need: dict[str, float], node: Node) -> int:
    """How many of ``need`` one node holds side by side."""
    counts = [math.floor((node.get(k) + EPS) / v) for k, v in need.items() if v > 0]
    return min(counts) if counts else 10**9


def problem(request: Request, nodes: list[Node]) -> str | None:
    """Why the cluster can never run one trial of ``request``; None when it can."""
    if not nodes:
        return "the cluster has no live node"
    if not any(_fits(request.trial, n) for n in nodes):
        return f"no node has {_fmt(request.trial)} for one trial"
    if request.workers:
        if not any(_fits(request.per_worker, n) for n in nodes):
            return f"no node has {_fmt(request.per_worker)} for one Ray Train worker"
        if sum(_copies(request.per_worker, n) for n in nodes) < request.workers:
            return (f"the nodes together hold fewer than {request.workers} workers of "
                    f"{_fmt(request.per_worker)}")
        keys = sorted(set(request.trial) | set(request.per_worker))
        for k in keys:
            have = sum(n.get(k) for n in nodes)
            if request.total(k) > have + EPS:
                return (f"the {request.workers} workers plus the trial need "
                        f"{_num(request.total(k))} {k} at once, the cluster has {_num(have)}")
    return None


def largest(nodes: list[Node]) -> Node | None:
    """The node with most CPUs (then GPUs): the one a user compares the request with."""
    return max(nodes, key=lambda n: (n.get("CPU"), n.get("GPU")), default=None)


Alternatives = list[list[tuple[str, Request]]]


def what_fits(alternatives: Alternatives, nodes: list[Node]) -> list[str]:
    """From each group of changed requests (best first), the first the cluster can run."""
    found = []
    for group in alternatives:
        for text, changed in group:
            if problem(changed, nodes) is None:
                found.append(text)
                break
    return found


def check(request: Request, nodes: list[Node], alternatives: Alternatives = ()) -> None:
    """Raise ``Unschedulable`` naming the study keys, the largest node and what would fit."""
    why = problem(request, nodes)
    if why is None:
        return
    fits = what_fits(list(alternatives), nodes)
    big = largest(nodes)
    asked = _fmt(request.trial)
    if request.workers:
        asked = (f"{request.workers} Ray Train worker(s) x {_fmt(request.per_worker)} at once, "
                 f"plus {_fmt(request.trial)} for the Tune trial")
    cluster = {k: sum(n.get(k) for n in nodes) for k in ("CPU", "GPU")}
    extra = sum(n.node_id.startswith("type:") for n in nodes)
    count = (f"{len(nodes) - extra} live node(s) and {extra} the autoscaler can launch"
             if extra else f"{len(nodes)} live node(s)")
    where = (f"largest node: {_fmt_node(big)}; {count}, "
             f"{_fmt(cluster, zeros=True)} in all") if big else "no live node"
    keys = ", ".join(f"{k} = {v}" for k, v in request.keys)
    text = (f"{request.kind} cannot start on this cluster: each asks for {asked}, but {why} "
            f"({where}). Ray would wait for it forever, so the sweep stops before the stage.")
    if keys:
        text += f" Study keys: {keys}."
    if fits:
        text += f" What fits here (add one to the command): {'; or '.join(fits)}."
    else:
        text += " Add a node that holds it, or lower the request."
    error = Unschedulable(text)
    error.fits = tuple(f.split(" (", 1)[0] for f in fits)
    raise error


def _num(x: float) -> str:
    return f"{x:g}"


def _fmt(res: dict[str, float], zeros: bool = False) -> str:
    shown = {k: v for k, v in res.items() if v > 0 or zeros}
    return "{" + ", ".join(f"{k}: {_num(v)}" for k, v in shown.items()) + "}"


def _fmt_node(node: Node) -> str:
    main = {"CPU": node.get("CPU"), "GPU": node.get("GPU")}
    if node.node_id.startswith("type:"):
        return f"{_fmt(main, zeros=True)} (node type {node.node_id[5:]}, launchable)"
    return f"{_fmt(main, zeros=True)} (node {node.node_id[:8]})"


# ---------------------------------------------------------------------------------------
# What a study's trials ask for: the arithmetic each stage declares its requests with.

# CPUs of a Tune trial that only drives a TorchTrainer (its workers ask for the rest).
DRIVER_CPUS = 0.2


def full_worker_plan(mode: ModeSpec, res: Mapping[str, float]) -> FullPlan:
    """Ray Train workers of a full-finetuning trial (``mode``: the study's ``modes.full``) on a
    cluster with totals ``res``: GPUs when present (``use_gpu: auto``), else CPU; in the Tune
    trial itself when ``trainer: auto`` leaves one CPU worker, nothing to distribute."""
    has_gpu = res.get("GPU", 0) >= 1
    use_gpu = mode.use_gpu == "yes" or (mode.use_gpu == "auto" and has_gpu)
    cpus = min(mode.cpus, max(1.0, res.get("CPU", 1) - DRIVER_CPUS))
    in_trial = mode.trainer == "auto" and mode.workers == 1 and not use_gpu
    return FullPlan(num_workers=mode.workers, use_gpu=use_gpu, cpus_per_worker=cpus,
                    gpus_per_worker=mode.gpus if use_gpu else 0, in_trial=in_trial,
                    start_timeout_s=mode.start_timeout_s)


def worker_resources(plan: FullPlan) -> dict[str, float]:
    """What each Ray Train worker asks for: ``ScalingConfig`` adds one GPU per worker when
    ``use_gpu`` (``run_full_finetune_trainer`` passes only the CPUs)."""
    return {"CPU": plan.cpus_per_worker, "GPU": 1.0 if plan.use_gpu else 0.0}


def totals(nodes: list[Node]) -> dict[str, float]:
    """The nodes' resources summed, as ``ray.cluster_resources()`` gives them."""
    res: dict[str, float] = {}
    for n in nodes:
        for k, v in n.resources.items():
            res[k] = res.get(k, 0.0) + v
    return res


def cpu_steps(cpus: float) -> list[float]:
    """CPU counts below ``cpus`` in 0.1 steps, largest first: the candidates that might fit."""
    top = math.ceil(round(cpus * 10, 6)) - 1
    return [round(i / 10, 1) for i in range(top, 0, -1)]


def one_cpu(kind: str) -> list[tuple[Request, Alternatives]]:
    """Trials (or tasks) of one CPU each, with nothing smaller to try."""
    return [(Request(kind, {"CPU": 1.0}), [])]


def mode_trial(kind: str, mode: ModeSpec, nodes: list[Node]) -> tuple[Request, Alternatives]:
    """A Tune trial asking ``modes.<mode>.cpus`` and ``.gpus``; fewer CPUs, or the GPUs some
    node has, to try instead."""
    key = f"modes.{mode.name}"
    trial = {"CPU": float(mode.cpus), "GPU": float(mode.gpus)}
    req = Request(kind, trial, keys=((f"{key}.cpus", mode.cpus), (f"{key}.gpus", mode.gpus)))
    gpus = sorted({math.floor(n.get("GPU")) for n in nodes if n.get("GPU") < mode.gpus},
                  reverse=True)
    return req, [
        [(set_option(f"{key}.cpus", f"{c:g}"), replace(req, trial={**trial, "CPU": c}))
         for c in cpu_steps(mode.cpus)],
        [(set_option(f"{key}.gpus", f"{g:g}"), replace(req, trial={**trial, "GPU": float(g)}))
         for g in gpus],
    ]


def ray_train_trial(mode: ModeSpec, plan: FullPlan,
                    trial_cpus: float) -> tuple[Request, Alternatives]:
    """A full-finetuning trial: in the Tune trial (one CPU worker) or a Tune trial of
    ``trial_cpus`` driving a Ray Train worker group that asks for all its workers at once;
    fewer workers, fewer CPUs each or CPU workers to try instead."""
    key = f"modes.{mode.name}"
    gpus = mode.gpus if plan.use_gpu else (
        f"{mode.gpus:g} (unused: the workers train on CPU, {key}.use_gpu = {mode.use_gpu})")
    keys = ((f"{key}.workers", mode.workers), (f"{key}.cpus", mode.cpus),
            (f"{key}.gpus", gpus), (f"{key}.use_gpu", mode.use_gpu))
    trial = {"CPU": float(trial_cpus)}
    if plan.in_trial:
        req = Request("full-finetuning trials (in the Tune trial: one CPU worker)", trial,
                      keys=keys[1:2])
        return req, [[(set_option(f"{key}.cpus", f"{c:g}"), replace(req, trial={"CPU": c}))
                      for c in cpu_steps(trial["CPU"])]]
    per = worker_resources(plan)
    req = Request("full-finetuning trials (Ray Train, DDP)", trial, plan.num_workers, per,
                  keys=keys if plan.use_gpu else keys[:3])
    alternatives: Alternatives = [
        [(set_option(f"{key}.workers", w), replace(req, workers=w))
         for w in range(plan.num_workers - 1, 0, -1)],
        [(set_option(f"{key}.cpus", f"{c:g}", f"with workers {plan.num_workers}"),
          replace(req, per_worker={**per, "CPU": c}))
         for c in cpu_steps(plan.cpus_per_worker)],
    ]
    if plan.use_gpu:
        alternatives.append([(set_option(f"{key}.use_gpu", "no", "CPU workers"),
                              replace(req, per_worker={**per, "GPU": 0.0}))])
    return req, alternatives


def ray_train_concurrency(plan: FullPlan, res: Mapping[str, float],
                          cap: int | None) -> int | None:
    """How many Ray Train trials fit side by side (their workers and drivers), at most
    ``cap`` (``--max-concurrent``); ``cap`` alone for trials that train in the Tune trial."""
    if plan.in_trial:
        return cap
    per = plan.num_workers * plan.cpus_per_worker + DRIVER_CPUS
    n = max(1, math.floor(res.get("CPU", 1) / per))
    if plan.use_gpu:
        gpus = plan.num_workers * worker_resources(plan)["GPU"]
        n = min(n, max(1, math.floor(res.get("GPU", 1) / gpus)))
    return min(cap, n) if cap else n


def check_capacity(study: Study, stages: Iterable[Any], nodes: list[Node] | None = None,
                   autoscaling: bool = False) -> None:
    """Raise ``Unschedulable`` when a trial of one of ``stages`` (``orchestrator.stages``
    records) can never start on the cluster's live nodes, or the nodes its autoscaler can
    launch (Ray would queue it forever)."""
    nodes = cluster_nodes(autoscaling) if nodes is None else nodes
    for stage in stages:
        for req, alternatives in stage.requests(study, nodes):
            check(req, nodes, alternatives)
