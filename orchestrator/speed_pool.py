"""A pool of Ray actors that run DeepSparse speed trials, each on a whole CPU node.

Why whole nodes: a speed trial compares runtimes by their wall-clock time, so nothing else
may share the cores it measures on, and DeepSparse ignores Ray's CPU accounting (it uses every
core unless told ``num_cores``). Each actor therefore reserves all the CPUs of one node and
passes that count to the trial.

Placement:
- Cluster: every alive node advertising the custom resource ``resource`` (``"speed_node"``, set
  on a node type of the cluster config) gets one actor, pinned to it, requesting
  ``{resource: 1}`` plus all the node's CPUs.
- Laptop (no node advertises it): one actor on the driver's node requesting all its CPUs; it
  starts only when nothing else holds CPUs there, so call the pool after the transfer stage.

A trial that raises bad input (``common.errors.BadInput``) becomes a row with
``status="failed"``; anything else it raises, or an actor that dies, a row with
``status="error"`` and the traceback (the sweep's rerun tries it again, as for Tune trials).
A dead actor is replaced (while its node lives) and the pool goes on.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from common import columns as C
from common.errors import BadInput
from trainables.speed.trial import SpeedSpec

log = logging.getLogger(__name__)

DEFAULT_RESOURCE = "speed_node"


@dataclass(frozen=True)
class SpeedNode:
    """A node the pool places one actor on, and the CPUs that actor reserves."""

    node_id: str
    cpus: int
    use_resource: bool


def speed_nodes(resource: str = DEFAULT_RESOURCE) -> list[SpeedNode]:
    """Alive nodes advertising ``resource``; else the driver's node alone (laptop mode)."""
    alive = [n for n in ray.nodes() if n.get("Alive")]
    tagged = [
        SpeedNode(n["NodeID"], int(n["Resources"].get("CPU", 0)), True)
        for n in alive
        if n["Resources"].get(resource, 0) >= 1
    ]
    if tagged:
        missing = [n.node_id for n in tagged if n.cpus < 1]
        if missing:
            raise ValueError(f"nodes {missing} advertise {resource!r} but have no CPU resource")
        return tagged
    here = ray.get_runtime_context().get_node_id()
    for n in alive:
        if n["NodeID"] == here:
            cpus = int(n["Resources"].get("CPU", 0))
            if cpus < 1:
                raise ValueError(f"the driver's node {here} has no CPU resource for a speed actor")
            return [SpeedNode(here, cpus, False)]
    raise RuntimeError(f"the driver's node {here} is not among Ray's alive nodes")


@ray.remote
class SpeedActor:
    """Holds one node's CPUs and runs speed trials there, one at a time."""

    def __init__(self, num_cores: int) -> None:
        os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")
        self.num_cores = num_cores
        self.where = {
            C.NODE_ID: ray.get_runtime_context().get_node_id(),
            C.HOSTNAME: socket.gethostname(),
        }

    def location(self) -> dict[str, str]:
        return dict(self.where)

    def run(self, spec: SpeedSpec) -> dict[str, Any]:
        from trainables.speed.trial import speed_trial

        cores = min(spec.num_cores or self.num_cores, self.num_cores)
        try:
            row = speed_trial(replace(spec, num_cores=cores))
        except BadInput as exc:
            log.warning("speed trial %s failed: %s", spec.label(), exc)
            row = failed_row(spec, f"{type(exc).__name__}: {exc}")
        except Exception:  # one broken trial must not take the pool down
            log.warning("speed trial %s raised:\n%s", spec.label(), traceback.format_exc())
            row = failed_row(spec, traceback.format_exc(), status="error")
        row.update(self.where)
        return row


def failed_row(spec: SpeedSpec, error: str, status: str = "failed") -> dict[str, Any]:
    """The results row of a speed trial that did not finish (``failed``: bad input;
    ``error``: anything else, tried again by a rerun)."""
    return {**spec.row(status), C.ERROR: error}


def _start_actor(node: SpeedNode, resource: str) -> Any:
    return SpeedActor.options(
        num_cpus=node.cpus,
        resources={resource: 1} if node.use_resource else None,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False),
        runtime_env={"env_vars": {"NM_DISABLE_ANALYTICS": "1"}},
    ).remote(node.cpus)


def _node_alive(node_id: str) -> bool:
    return any(n["NodeID"] == node_id and n.get("Alive") for n in ray.nodes())


def run_speed_trials(
    specs: Sequence[SpeedSpec],
    *,
    resource: str = DEFAULT_RESOURCE,
    on_result: Callable[[SpeedSpec, dict], None] | None = None,
) -> list[dict]:
    """Run speed trials on whole CPU nodes, one actor per speed node.

    Args:
        specs: the trials; each actor runs one at a time with ``num_cores`` = the CPUs it holds
            (or fewer, if the spec asks for fewer).
        resource: custom resource marking the nodes meant for timing.
        on_result: called in the driver as each trial ends (finished or failed), e.g. to write
            the ledger; an exception raised there stops the pool.

    Returns:
        One row per spec, in spec order; every row carries ``node_id`` and ``hostname`` of the
        actor that ran it (absent only if no actor was left to run it). Failed trials have
        ``status="failed"`` and ``error``.

    Uses the running Ray; if none is initialised, starts a local one and shuts it down after.
    """
    specs = list(specs)
    if not specs:
        return []
    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init()
    pool = _Pool(specs, resource, on_result)
    try:
        nodes = speed_nodes(resource)
        log.info("speed pool: %d actor(s) on %s", len(nodes),
                 ", ".join(f"{n.node_id[:8]} ({n.cpus} CPUs)" for n in nodes))
        for node in nodes:
            pool.start(node)
        while pool.queue or pool.pending:
            pool.submit()
            if not pool.pending:
                pool.give_up()
                break
            pool.collect()
        return [r for r in pool.results if r is not None]
    finally:
        for actor in pool.actors:
            ray.kill(actor)  # give the nodes' CPUs back
        if started_ray:
            ray.shutdown()


class _Pool:
    """The driver's side of the pool: idle actors, the trials queued and running, the rows."""

    def __init__(self, specs: list[SpeedSpec], resource: str,
                 on_result: Callable[[SpeedSpec, dict], None] | None) -> None:
        self.specs, self.resource, self.on_result = specs, resource, on_result
        self.actors: list[Any] = []
        self.idle: deque[tuple[Any, SpeedNode]] = deque()
        self.queue = deque(range(len(specs)))
        self.pending: dict[Any, tuple[Any, SpeedNode, int]] = {}
        self.results: list[dict | None] = [None] * len(specs)

    def start(self, node: SpeedNode) -> None:
        """A new actor on ``node``, idle."""
        actor = _start_actor(node, self.resource)
        self.actors.append(actor)
        self.idle.append((actor, node))

    def finish(self, i: int, row: dict) -> None:
        self.results[i] = row
        if self.on_result is not None:
            self.on_result(self.specs[i], row)

    def submit(self) -> None:
        """A queued trial to each idle actor."""
        while self.idle and self.queue:
            actor, node = self.idle.popleft()
            i = self.queue.popleft()
            try:
                ref = actor.run.remote(self.specs[i])
            except Exception as exc:  # e.g. a spec that cannot be pickled
                self.idle.appendleft((actor, node))
                self.finish(i, failed_row(self.specs[i], f"submitting failed: {exc!r}"))
                continue
            self.pending[ref] = (actor, node, i)

    def give_up(self) -> None:
        """Every actor is gone: the queued trials fail."""
        for i in self.queue:
            self.finish(i, failed_row(self.specs[i], "no speed actor left to run the trial"))
        self.queue.clear()

    def collect(self) -> None:
        """The next trial to end: its row; a dead actor is replaced while its node lives."""
        (ref,), _ = ray.wait(list(self.pending), num_returns=1)
        actor, node, i = self.pending.pop(ref)
        try:
            row = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            row = failed_row(self.specs[i], f"speed actor died: {exc}", status="error")
            row[C.NODE_ID] = node.node_id
            ray.kill(actor)
            if _node_alive(node.node_id):
                self.start(node)
            self.finish(i, row)
            return
        except ray.exceptions.RayError as exc:
            row = failed_row(self.specs[i], f"{type(exc).__name__}: {exc}", status="error")
            row[C.NODE_ID] = node.node_id
        self.idle.append((actor, node))
        self.finish(i, row)
