"""Can the cluster ever run a stage's trials? Checked before the stage starts.

Why: Ray queues a request that no node can hold and waits forever (a Ray Train worker group
retries its start every 60 s without end), so a study asking for more than the cluster has
showed "0/3 done · 1 running" with no hint why. A request is checked against the live nodes'
total resources (``ray.nodes()``), not what is free now: a request that fits once the running
trials end is fine. A Ray Train worker group asks for all its workers at once; Ray Train
packs them softly (``PACK``), so they may spread over nodes: it can start when each worker
fits some node, enough workers fit the nodes together, and the total fits the cluster.

Pure functions of plain dicts, so the rules are tested without Ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from common.errors import BadInput

# Ray keeps resources in units of 1/10000; a float sum such as 0.2 + 2 * 0.9 must still fit 2.
EPS = 1e-4


class Unschedulable(BadInput):
    """A stage's trials ask for more than any live node (or the whole cluster) can hold."""


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
    where = (f"largest node: {_fmt_node(big)}; {len(nodes)} live node(s), "
             f"{_fmt(cluster, zeros=True)} in all") if big else "no live node"
    keys = ", ".join(f"{k} = {v}" for k, v in request.keys)
    text = (f"{request.kind} cannot start on this cluster: each asks for {asked}, but {why} "
            f"({where}). Ray would wait for it forever, so the sweep stops before the stage.")
    if keys:
        text += f" Study keys: {keys}."
    if fits:
        text += f" What fits here: {'; or '.join(fits)}."
    else:
        text += " Add a node that holds it, or lower the request."
    raise Unschedulable(text)


def _num(x: float) -> str:
    return f"{x:g}"


def _fmt(res: dict[str, float], zeros: bool = False) -> str:
    shown = {k: v for k, v in res.items() if v > 0 or zeros}
    return "{" + ", ".join(f"{k}: {_num(v)}" for k, v in shown.items()) + "}"


def _fmt_node(node: Node) -> str:
    main = {"CPU": node.get("CPU"), "GPU": node.get("GPU")}
    return f"{_fmt(main, zeros=True)} (node {node.node_id[:8]})"
