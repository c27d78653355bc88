"""Deploys as chaos steps: `rolling_restart` and `deploy` (rolling or canary).

Each batch of a service's nodes is taken out through the LBs in front of it (harness/chaos/
lbctl.py): HAProxy `state drain` (no new requests; persistent ones still land), a wait until
its current sessions on the node reach 0, then `state maint`; Nginx `down` plus a graceful
reload, then a wait until the old workers have finished. The node is restarted (a deploy first
swaps its app: the release it replaces is kept at /srv/app.previous), waited for with its own
readiness check, put back (`state ready`; Nginx's stable config) and waited for until the LB's
health checks serve it (HAProxy: UP; Nginx with `check:`: not held `down`, a check passed
since). Without `drain` the node is restarted under the LB's feet: what that costs is what the
known-bad examples measure. A canary deploys `canaries`
nodes (the service's last ones) and gives them `weight` of the traffic (HAProxy `set weight`,
Nginx `weight=`).

The fault is instantaneous in the schedule's sense (no `for:`): `inject()` runs the whole
procedure. Its plan (LBs, servers, batches) is in `detail` before anything is touched, and every
step is appended to `detail["steps"]` and checkpointed to the journal *before* it is applied,
with its timings after, so the journal gives each node's out-of-service time. `rollback()`
(on failure, interrupt, or the end of the run) puts every server of the service back in service
at its configured weight and starts any node left stopped; the app version stays as deployed.
`recover()` does the same from the journal alone."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from docker.errors import APIError, NotFound
from docker.models.containers import Container

from harness.chaos import lbctl
from harness.chaos.base import BaseFault, FaultContext
from harness.chaos.container import STOP_TIMEOUT, container_detail, start_if_stopped
from harness.chaos.deploy_app import install_app, recreate
from harness.errors import InfrastructureError
from harness.runtime.docker import client
from harness.runtime.waits import wait_ready
from harness.spec.models import DeployFault, RollingRestartFault

DOWN = ("exited", "created", "dead", "removing")
UP_TIMEOUT = 30.0  # how long the LB's health checks may take to see a restarted node UP


class Fault(BaseFault):
    def __init__(
        self,
        params: RollingRestartFault | DeployFault,
        ctx: FaultContext,
        kind: str = "rolling_restart",
    ) -> None:
        self.kind, self.params, self.ctx = kind, params, ctx
        self.deploy = params if isinstance(params, DeployFault) else None
        members = [c.instance for c in ctx.plan.instances(params.service)]
        if not members:
            raise InfrastructureError(f"{kind}: no service '{params.service}' in this run")
        live = [i for i in members if self._running(i)]
        if not live:
            raise InfrastructureError(f"{kind}: every instance of '{params.service}' is down")
        self.lbs = lbctl.lbs_in_front(ctx.plan, params.service)
        if params.drain and not self.lbs:
            raise InfrastructureError(
                f"{kind}: no load balancer that can drain routes to '{params.service}' in "
                "this run, so nothing can drain it"
            )
        canary = self.deploy is not None and self.deploy.strategy == "canary"
        if canary:
            assert self.deploy is not None
            nodes = members[-self.deploy.canaries :]
            batches = [[n for n in nodes if n in live]]
        else:
            size = len(live) if params.batch == "all" else int(params.batch)
            batches = [live[i : i + size] for i in range(0, len(live), size)]
        self.batches = [b for b in batches if b]
        self.canaries = self.batches[0] if canary else []
        self.app: Path | None = None
        self.image = self.deploy.image if self.deploy is not None else None
        if self.deploy is not None and self.deploy.app is not None:
            app = Path(self.deploy.app)
            self.app = (app if app.is_absolute() else ctx.base_dir / app).resolve()
        # The service name, not its nodes: each node comes back, so no instance is "removed"
        # in the recovery watcher's sense.
        self.target = params.service
        self.detail: dict[str, Any] = {
            "service": params.service,
            "strategy": getattr(self.deploy, "strategy", "restart"),
            "app": str(self.app) if self.app else None,
            "image": self.image,
            "drain": params.drain,
            "batches": self.batches,
            "canaries": self.canaries,
            "weight": getattr(self.deploy, "weight", None),
            "lbs": [
                {"instance": lb.instance, "kind": lb.kind, "how": lb.how, "servers": lb.servers}
                for lb in self.lbs
            ],
            "containers": container_detail(ctx, [lb.instance for lb in self.lbs] + live),
            "steps": [],
            "nodes": {},
        }
        self.touched = False

    # ------------------------------------------------------------------ helpers

    def _running(self, inst: str) -> bool:
        c = self.ctx.containers.get(inst)
        if c is None:
            return False
        try:
            c.reload()
        except NotFound:
            return False
        return str(c.status) not in DOWN

    def _c(self, inst: str) -> Container:
        return self.ctx.containers[inst]

    def _step(self, what: str, **extra: Any) -> dict[str, Any]:
        """Journal the step (checkpointed) before it is applied; the caller adds its timings."""
        step = {"step": what, "at": time.time(), **extra}
        self.detail["steps"].append(step)
        self.ctx.checkpoint()
        return step

    def _lbs_up(self) -> list[tuple[lbctl.Lb, Container]]:
        """The LBs in front that run now (one another fault stopped is skipped)."""
        return [(lb, self._c(lb.instance)) for lb in self.lbs if self._running(lb.instance)]

    # ------------------------------------------------------------------ the procedure

    def inject(self) -> None:
        self.touched = True
        weights = self._canary_weights() if self.canaries else {}
        for batch in self.batches:
            t0 = time.time()
            if self.params.drain:
                self._take_out(batch)
            out_at = time.time()
            self._replace_all(batch)
            for inst in batch:
                step = self._step("wait_ready", node=inst)
                plan = self.ctx.plan.container(inst)
                wait_ready(self._c(inst), inst, plan.wait)
                step["took"] = time.time() - step["at"]
            back_at = time.time()
            if self.params.drain or weights:
                self._put_back(batch, weights)
            for inst in batch:
                self.detail["nodes"][inst] = {
                    "started": t0,
                    "drained_in": out_at - t0,
                    "restarted_in": back_at - out_at,
                    "back_in_service": time.time(),
                    "out_of_service": time.time() - t0,
                }
        self.ctx.checkpoint()

    def _canary_weights(self) -> dict[str, dict[str, int]]:
        """LB instance -> server -> weight, so the canaries get the deploy's `weight`."""
        assert self.deploy is not None and self.deploy.weight is not None
        out = {}
        for lb in self.lbs:
            n_canary = sum(1 for i in lb.servers if i in self.canaries)
            n_stable = len(lb.servers) - n_canary
            if not n_canary or not n_stable:
                continue
            stable_w, canary_w = lbctl.canary_weights(
                self.deploy.weight, n_stable, n_canary, lb.top_weight
            )
            out[lb.instance] = {
                name: canary_w if inst in self.canaries else stable_w
                for inst, name in lb.servers.items()
            }
        self.detail["weights"] = out
        return out

    def _take_out(self, batch: list[str]) -> None:
        lbs = self._lbs_up()
        for lb, c in lbs:
            names = [lb.servers[i] for i in batch if i in lb.servers]
            lbctl.take_out(lb, c, names, self._weights(lb), self._step)
        for lb, c in lbs:
            names = [lb.servers[i] for i in batch if i in lb.servers]
            lbctl.wait_idle(lb, c, names, self.params.drain_timeout, self._step)

    def _weights(self, lb: lbctl.Lb) -> dict[str, int]:
        return dict(self.detail.get("weights", {}).get(lb.instance, {}))

    def _replace_all(self, batch: list[str]) -> None:
        """Install the app on and restart every node of the batch at the same time (the
        batch *is* what is out at once); each step is journaled before any of them starts."""
        installs = (
            {inst: self._step("install_app", node=inst, app=str(self.app)) for inst in batch}
            if self.app is not None
            else {}
        )
        restarts = {
            inst: self._step("recreate", node=inst, image=self.image)
            if self.image
            else self._step("restart", node=inst)
            for inst in batch
        }
        with ThreadPoolExecutor(max_workers=len(batch)) as pool:
            for fut in [
                pool.submit(self._replace, inst, installs.get(inst), restarts[inst])
                for inst in batch
            ]:
                fut.result()

    def _replace(self, inst: str, install: dict[str, Any] | None, restart: dict[str, Any]) -> None:
        c = self._c(inst)
        if install is not None:
            assert self.app is not None
            install["at"] = time.time()
            install_app(c, inst, self.app)
            install["took"] = time.time() - install["at"]
        restart["at"] = time.time()
        if self.image is not None:
            new = recreate(c, self.ctx.plan, inst, self.image, STOP_TIMEOUT)
            self.ctx.containers[inst] = new
            for ref in self.detail["containers"]:  # what recover() finds it by
                if ref["instance"] == inst:
                    ref["id"] = new.id
            restart["took"] = time.time() - restart["at"]
            return
        try:
            c.restart(timeout=STOP_TIMEOUT)
        except APIError as exc:
            raise InfrastructureError(f"restart of {inst} failed: {exc.explanation}") from None
        restart["took"] = time.time() - restart["at"]

    def _put_back(self, batch: list[str], weights: dict[str, dict[str, int]]) -> None:
        lbs = self._lbs_up()
        for lb, c in lbs:
            names = [lb.servers[i] for i in batch if i in lb.servers]
            lbctl.put_back(lb, c, names, weights.get(lb.instance, {}), self._step)
        for lb, c in lbs:
            names = [lb.servers[i] for i in batch if i in lb.servers]
            lbctl.wait_up(lb, c, names, UP_TIMEOUT, self._step)

    # ------------------------------------------------------------------ undo

    def rollback(self) -> None:
        if not self.touched:
            return
        errors = []
        for batch in self.batches:
            for inst in batch:
                try:
                    start_if_stopped(self._c(inst))
                except NotFound:
                    errors.append(f"{inst}: its container is gone")
                except APIError as exc:
                    errors.append(f"{inst}: {exc.explanation}")
        for lb, c in self._lbs_up():
            try:
                lbctl.restore(lb, c)
            except InfrastructureError as exc:
                errors.append(str(exc))
        if errors:
            raise InfrastructureError(f"rollback of {self.kind} failed: {'; '.join(errors)}")
        self.touched = False


def recover(kind: str, detail: dict[str, Any], restart_stopped: bool = False) -> list[str]:
    """Put every server back in service on each LB the journal names (a killed harness may
    have left one drained, in maintenance or `down`), and start the service's nodes it left
    stopped (always: a deploy stops them only for a moment)."""
    done = []
    refs = {r["instance"]: r for r in detail.get("containers", [])}
    nodes = {i for batch in detail.get("batches", []) for i in batch}
    for inst in sorted(nodes):
        ref = refs.get(inst)
        if ref is None:
            continue
        try:
            if start_if_stopped(client().containers.get(ref["id"])):
                done.append(f"{kind}: started {inst} ({ref['name']})")
        except NotFound:
            done.append(f"{kind}: {inst} ({ref['name']}) is gone")
        except APIError as exc:
            done.append(f"{kind}: {inst}: could not start it ({exc.explanation})")
    for lb_d in detail.get("lbs", []):
        ref = refs.get(lb_d["instance"])
        if ref is None:
            continue
        try:
            lb = lbctl.lb(lb_d["instance"], lb_d["kind"], dict(lb_d["servers"]))
            lbctl.restore(lb, client().containers.get(ref["id"]))
            done.append(f"{kind}: every server of {lb_d['instance']} back in service")
        except NotFound:
            done.append(f"{kind}: {lb_d['instance']} ({ref['name']}) is gone")
        except InfrastructureError as exc:
            done.append(f"{kind}: {lb_d['instance']}: could not restore it ({exc})")
    return done
