"""The provisioning graph (issue 5 §1): the upstream guide's steps, as a graph the runner runs.

    cluster ─┬─ kube-access ─┬─ namespace ─┬─ hf-secret ──────────────┐
             │               │             ├──────────────┐           │
             │               ├─ default-storageclass ─ platform ──────┼─ model-download ─┐
             │               ├─ gpu-nodepool ─┬─ gpu-warmup (optional) │                  ├─ graph ─┬─ efa-check
             │               └─ reserved-capacity (with a reservation) │                  │         └─ smoke-test
             └─ efs ───────────────────────── efs-volumes ─────────────┘ (namespace too)  │
                                                                                          (platform, secret, pools)

- EFS does not wait for helm; the download starts as soon as its PVC and the platform are ready; the
  GPU nodes are launched and the runtime image pulled (gpu-warmup) while the model downloads, and the
  warm-up pods make room for the graph's workers when it is applied.
- Every step is idempotent: it looks for what it would create (by name, creation token or our
  tag/labels) and adopts it (status "skipped": already present). The ledger gets `intent` before each
  create and `created`/`adopted` after. AWS resources carry the tag `dynamo-wizard/deployment=<name>`,
  Kubernetes objects our labels (core.manifests puts them on).
- Steps talk only to core.protocols (cloud/ implements them): no boto3, no kubernetes, no subprocess.

`build_provision_graph(plan, backends, options)` gives the steps; `provision_step_infos(plan)` the same
graph without actions, and `step_durations` / `guide_sequential_minutes` the duration model the
confirm-to-serving benchmark compares (critical path vs the guide's order).
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import manifests as mf
from .catalog import Catalog, ReleaseProfile, load_catalog, parse_memory_gib
from .cleanup import (
    CLUSTER,
    DGD,
    FILE_SYSTEM,
    HELM_RELEASE,
    JOB,
    MOUNT_TARGET,
    NAMESPACE,
    NODECLASS,
    NODEPOOL,
    PVC,
    SECRET,
    SECURITY_GROUP,
    STORAGE_CLASS,
)
from .efa import BackendReport, detect_backend
from .errors import StepError
from .paths import deployment_dir
from .plan import Mode, Plan
from .podview import fold
from .pricing import instances_needed
from .protocols import (
    BackendError,
    ClusterInfo,
    Conflict,
    Kube,
    NotAuthorized,
    ProvisionBackends,
    SubnetInfo,
    Unreachable,
)
from .redact import register_secret
from .runner import CancelToken, Step, StepContext, StepInfo, StepResult, done, skipped

# Step ids --------------------------------------------------------------------------------------------

S_CLUSTER = "cluster"
S_KUBE = "kube-access"
S_NAMESPACE = "namespace"
S_GPU_POOL = "gpu-nodepool"
S_RESERVED = "reserved-capacity"
S_DEFAULT_SC = "default-storageclass"
S_EFS = "efs"
S_EFS_VOLUMES = "efs-volumes"
S_PLATFORM = "platform"
S_SECRET = "hf-secret"
S_DOWNLOAD = "model-download"
S_WARMUP = "gpu-warmup"
S_GRAPH = "graph"
S_EFA = "efa-check"
S_SMOKE = "smoke-test"

# How long (seconds, real AWS) an earlier attempt's cluster stack may take to create its EKS cluster.
STACK_CLUSTER_APPEARS = 10 * 60.0

# Ledger kind for the warm-up Deployment (cleanup's kinds cover the rest).
WARMUP_KIND = "deployment"
WARMUP_APP = "dynamo-wizard-gpu-warmup"

# Step timeouts in minutes (real AWS; the sandbox scales them down with `timeout_scale`).
TIMEOUT_MINUTES: dict[str, float] = {
    S_CLUSTER: 45, S_KUBE: 10, S_NAMESPACE: 3, S_GPU_POOL: 3, S_RESERVED: 20, S_DEFAULT_SC: 3,
    S_EFS: 20, S_EFS_VOLUMES: 10, S_PLATFORM: 20, S_SECRET: 3, S_DOWNLOAD: 90, S_WARMUP: 30,
    S_GRAPH: 45, S_EFA: 10, S_SMOKE: 15,
}

# The benchmark's step-duration model (issue 5, "Checked by"), in minutes, and where each phase happens.
PHASE_MINUTES: dict[str, float] = {
    "cluster": 15, "efs": 3, "platform": 3, "download": 6, "gpu_node": 4, "image_pull": 8, "model_load": 2,
}


@dataclass(frozen=True)
class ProvisionOptions:
    hf_token: str | None = None
    catalog: Catalog | None = None
    warm_gpu_nodes: bool = True  # launch GPU nodes and pull the runtime image while the model downloads
    poll: float = 2.0  # first poll interval of every wait (seconds); waits back off up to poll_max
    poll_max: float = 10.0
    timeout_scale: float = 1.0  # the sandbox runs on a faster clock
    workdir: Path | None = None  # where the eksctl config and helm values are written (default: deployment dir)
    smoke_prompt: str = "Say hello in five words."


# --------------------------------------------------------------------------------------------------
# The graph's shape (no backends needed: the benchmark and the UI use it too)


def _graph_shape(plan: Plan, options: ProvisionOptions) -> list[tuple[str, str, tuple[str, ...], bool]]:
    """(id, title, deps, optional) in graph order, for this plan."""
    reserved = plan.reservation is not None
    efs = plan.storage.efs
    pools = (S_GPU_POOL,) + ((S_RESERVED,) if reserved else ())
    shape: list[tuple[str, str, tuple[str, ...], bool]] = [
        (S_CLUSTER, f"EKS Auto Mode cluster {plan.cluster_name}", (), False),
        (S_KUBE, "Kubernetes access (EKS token)", (S_CLUSTER,), False),
        (S_NAMESPACE, f"Namespace {plan.namespace}", (S_KUBE,), False),
        (S_GPU_POOL, "GPU NodePool", (S_KUBE,), False),
    ]
    if reserved:
        shape.append((S_RESERVED, "Reserved capacity NodeClass and NodePool", (S_KUBE,), False))
    shape.append((S_DEFAULT_SC, "Default StorageClass", (S_KUBE,), False))
    if efs:
        shape.append((S_EFS, "EFS file system and mount targets", (S_CLUSTER,), False))
        shape.append((S_EFS_VOLUMES, "EFS StorageClass and cache PVCs", (S_EFS, S_NAMESPACE), False))
    shape.append((S_PLATFORM, f"Dynamo platform {plan.dynamo.release} (helm)", (S_NAMESPACE, S_DEFAULT_SC), False))
    shape.append((S_SECRET, "Hugging Face token Secret", (S_NAMESPACE,), False))
    graph_deps: list[str] = [S_PLATFORM, S_SECRET, *pools]
    if efs:
        shape.append((S_DOWNLOAD, f"Download {plan.serving.model} to EFS", (S_EFS_VOLUMES, S_SECRET, S_PLATFORM),
                      False))
        graph_deps.append(S_DOWNLOAD)
    if options.warm_gpu_nodes:
        shape.append((S_WARMUP, "Warm GPU nodes (launch, pull the runtime image)", (S_NAMESPACE, *pools), True))
        graph_deps.append(S_WARMUP)
    shape.append((S_GRAPH, f"DynamoGraphDeployment {plan.graph_name}", tuple(graph_deps), False))
    if plan.serving.mode is Mode.DISAGG_EFA:
        shape.append((S_EFA, "EFA check (NIXL backend)", (S_GRAPH,), True))
    shape.append((S_SMOKE, "Smoke test (/v1/models, one chat completion)", (S_GRAPH,), False))
    return shape


def provision_step_infos(plan: Plan, options: ProvisionOptions | None = None) -> list[StepInfo]:
    """The graph's ids and dependencies without actions (benchmark, docs, UI)."""
    options = options or ProvisionOptions()
    return [StepInfo(i, t, d, TIMEOUT_MINUTES[i] * 60 * options.timeout_scale, o)
            for i, t, d, o in _graph_shape(plan, options)]


def step_durations(plan: Plan, phases: Mapping[str, float] | None = None, *, warm: bool = True) -> dict[str, float]:
    """Minutes per step under the duration model: which phase of the guide each step spends its time in."""
    p = dict(PHASE_MINUTES, **(phases or {}))
    durations = {S_CLUSTER: p["cluster"], S_PLATFORM: p["platform"]}
    if plan.storage.efs:
        durations[S_EFS] = p["efs"]
        durations[S_DOWNLOAD] = p["download"]
    if warm:
        durations[S_WARMUP] = p["gpu_node"] + p["image_pull"]
        durations[S_GRAPH] = p["model_load"]
    else:
        durations[S_GRAPH] = p["gpu_node"] + p["image_pull"] + p["model_load"]
    return durations


def guide_sequential_minutes(phases: Mapping[str, float] | None = None) -> float:
    """The guide's order: every phase one after the other."""
    return float(sum(dict(PHASE_MINUTES, **(phases or {})).values()))


# --------------------------------------------------------------------------------------------------
# Small helpers


def _labels(obj: Mapping[str, Any] | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("labels") or {})


def _uid(obj: Mapping[str, Any] | None) -> str | None:
    uid = ((obj or {}).get("metadata") or {}).get("uid")
    return str(uid) if uid else None


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for c in ((obj.get("status") or {}).get("conditions") or []):
        if isinstance(c, Mapping) and c.get("type") == kind:
            return c
    return None


def _true(obj: Mapping[str, Any], kind: str) -> bool:
    c = _condition(obj, kind)
    return c is not None and str(c.get("status")) == "True"


def pod_ready(pod: Mapping[str, Any]) -> bool:
    return _true(pod, "Ready")


def oom_killed(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    if status.get("reason") == "OOMKilled":
        return True
    for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        for key in ("state", "lastState"):
            term = ((cs or {}).get(key) or {}).get("terminated") or {}
            if term.get("reason") == "OOMKilled":
                return True
    return False


def suggest_memory(current: str) -> str:
    """Twice the memory that was OOM-killed, at least 16Gi, as a Kubernetes quantity."""
    try:
        gib = parse_memory_gib(current)
    except ValueError:
        gib = 8.0
    return f"{max(16, int(math.ceil(gib * 2)))}Gi"


def _first_error_line(lines: tuple[str, ...] | list[str]) -> str:
    """The line that says why a tool failed: its last `[✖]` line (eksctl's cause) before a bare `Error:`
    summary (eksctl ends with `Error: failed to create cluster`, which says nothing of why)."""
    for marks in (("[✖]",), ("Error:",), ("error", "Error", "ERROR")):
        for line in reversed(lines):
            if any(m in line for m in marks):
                return _TOOL_TIMESTAMP.sub("", line.strip())
    return lines[-1].strip() if lines else "no output"


_TOOL_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+")  # eksctl's line prefix


def pick_mount_subnets(subnets: list[SubnetInfo]) -> dict[str, SubnetInfo]:
    """One subnet per zone for EFS mount targets (EFS allows one per zone), private subnets preferred."""
    chosen: dict[str, SubnetInfo] = {}
    for s in sorted(subnets, key=lambda s: (s.zone, s.public, s.id)):
        chosen.setdefault(s.zone, s)
    return dict(sorted(chosen.items()))


# --------------------------------------------------------------------------------------------------
# The steps


class _Provision:
    def __init__(self, plan: Plan, backends: ProvisionBackends, options: ProvisionOptions) -> None:
        self.plan = plan
        self.b = backends
        self.o = options
        self.catalog = options.catalog or load_catalog()
        self.profile: ReleaseProfile = mf.release_profile(plan, self.catalog)
        self.ns = plan.namespace
        self.workdir = options.workdir or deployment_dir(plan.deployment)
        if options.hf_token:
            register_secret(options.hf_token)

    # -- shared --------------------------------------------------------------------------------------

    def kube(self, ctx: StepContext) -> Kube:
        return ctx.state["kube"]  # type: ignore[no-any-return]

    def wait(self, ctx: StepContext, probe: Callable[[], Any], what: str, *, timeout: float | None = None,
             fix: str | None = None) -> Any:
        """ctx.wait_until with this run's pacing; a transient API failure is logged and retried."""
        said: list[str] = []

        def guarded() -> Any:
            try:
                return probe()
            except (Unreachable, NotAuthorized) as err:
                text = f"(retrying) {err.message}"
                if not said or said[-1] != text:
                    said.append(text)
                    ctx.log(text)
                return None

        return ctx.wait_until(guarded, what, interval=self.o.poll, max_interval=self.o.poll_max,
                              timeout=timeout, fix=fix)

    def known(self, ctx: StepContext, kind: str, name: str) -> bool:
        """The ledger already holds this resource as created or adopted (so a resume writes nothing new)."""
        if ctx.ledger is None:
            return False
        res = ctx.ledger.find(kind, name)
        return res is not None and res.state in ("created", "adopted")

    def ours(self, obj: Mapping[str, Any]) -> bool:
        labels = _labels(obj)
        return labels.get(mf.LABEL_MANAGED_BY) == mf.MANAGED_BY and labels.get(mf.LABEL_DEPLOYMENT) == self.plan.deployment

    def ensure(self, ctx: StepContext, obj: dict[str, Any], kind: str) -> str:
        """Create `obj`, or bring an existing one of ours up to date. Returns created | present | updated |
        foreign (exists, not ours: used as it is, never changed or recorded, so cleanup leaves it alone)."""
        kube = self.kube(ctx)
        meta = obj["metadata"]
        name, ns = meta["name"], meta.get("namespace")
        extra: dict[str, Any] = {"apiVersion": obj["apiVersion"]}
        if ns:
            extra["namespace"] = ns
        title = f"{obj['kind']} {ns + '/' if ns else ''}{name}"
        existing = kube.get(obj["apiVersion"], obj["kind"], name, ns)
        if existing is None:
            ctx.intent(kind, name, **extra)
            result = kube.apply(obj)
            ctx.created(kind, name, _uid(result.object), **extra)
            ctx.log(f"created {title}")
            return "created"
        if not self.ours(existing):
            ctx.log(f"{title} exists and was not made by this deployment: using it as it is")
            return "foreign"
        result = kube.apply(obj)
        if not self.known(ctx, kind, name):
            ctx.adopted(kind, name, _uid(existing), **extra)
        if result.action == "patched":
            ctx.log(f"updated {title} to match the plan")
            return "updated"
        ctx.log(f"{title} is already as planned")
        return "present"

    @staticmethod
    def outcome(results: list[str], summary: str) -> StepResult:
        if results and all(r in ("present", "foreign") for r in results):
            return skipped(summary)
        return done(summary)

    def report_pods(self, ctx: StepContext, pods: list[dict[str, Any]], seen: dict[str, str]) -> None:
        """Log each pod's state when it changes, with why a pending pod waits (its latest event)."""
        events: list[dict[str, Any]] = []
        if any(not pod_ready(p) for p in pods):
            try:
                events = self.kube(ctx).list("v1", "Event", self.ns)
            except BackendError:
                events = []
        for row in fold(pods, events):
            line = f"pod {row.name}: {row.status} {row.ready_text}"
            if row.node:
                line += f" on {row.node}"
            if row.reason:
                line += f" — {row.reason}"
            if seen.get(row.name) != line:
                seen[row.name] = line
                ctx.log(line)

    def report_nodeclaims(self, ctx: StepContext, seen: dict[str, str]) -> None:
        """Log Auto Mode NodeClaims of our pools as they launch (why a GPU pod is still Pending)."""
        try:
            claims = self.kube(ctx).nodeclaims([mf.GPU_NODEPOOL, mf.RESERVED_NODEPOOL])
        except BackendError:
            return
        for claim in claims:
            labels = _labels(claim)
            name = claim["metadata"]["name"]
            status = claim.get("status") or {}
            conds = [c for c in status.get("conditions") or [] if isinstance(c, Mapping)]
            state = "Ready" if _true(claim, "Ready") else next(
                (f"{c.get('type')}: {c.get('reason') or c.get('status')}" for c in conds
                 if str(c.get("status")) != "True" and c.get("type") != "Ready"), "launching")
            itype = labels.get(mf.INSTANCE_TYPE_LABEL, "?")
            zone = labels.get(mf.ZONE_TOPOLOGY, "")
            capacity = labels.get(mf.CAPACITY_TYPE_LABEL, "")
            node = status.get("nodeName") or ""
            line = f"nodeclaim {name}: {itype} {capacity} {zone} {node} — {state}".replace("  ", " ")
            if seen.get(name) != line:
                seen[name] = line
                ctx.log(line)

    # -- cluster -------------------------------------------------------------------------------------

    def cluster(self, ctx: StepContext) -> StepResult:
        aws, plan = self.b.aws, self.plan
        name = plan.cluster_name
        info = aws.describe_cluster(name)
        if info is not None:
            owner = info.tags.get(mf.TAG_DEPLOYMENT)
            if owner != plan.deployment:
                raise StepError(
                    f"an EKS cluster named {name} already exists in {plan.region} and was not created by "
                    f"deployment {plan.deployment} (tag {mf.TAG_DEPLOYMENT}={owner or 'missing'})",
                    "set cluster.name in the plan to a name that is free, or delete that cluster first")
            if info.status == "FAILED":
                raise StepError(f"cluster {name} is in state FAILED",
                                f"clean it up (dynamo-wizard cleanup --deployment {plan.deployment}), then apply again")
            if info.status == "DELETING":
                raise StepError(f"cluster {name} is being deleted", "wait until it is gone, then apply again")
            ctx.log(f"cluster {name} exists ({info.status}); adopting it")
            if info.status != "ACTIVE":
                info = self.wait_active(ctx, name)
            if not self.known(ctx, CLUSTER, name):
                ctx.adopted(CLUSTER, name, info.arn, region=plan.region)
            ctx.state["cluster"] = info
            return skipped(f"cluster {name} was already there ({info.status}); adopted")
        zones = list(plan.zones) or aws.control_plane_zones()
        config = mf.eksctl_cluster_config(plan, mf.ClusterFacts(zones=tuple(zones)))
        path = self.workdir / "eksctl-cluster.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        ctx.intent(CLUSTER, name, region=plan.region, config=str(path))
        ctx.log(f"$ eksctl create cluster -f {path}")
        # Not interruptible by a plain cancel: stopping eksctl mid-create leaves a half-made cluster.
        result = self.b.tools.eksctl(["create", "cluster", "-f", str(path)],
                                     _noting_soft_cancel(ctx, "eksctl keeps going until the cluster is made "
                                                              "(stopping it now would leave a half-made cluster)"),
                                     ctx.cancel)
        if not result.ok:
            ctx.check()  # a forced cancel or the deadline: say that, not eksctl's exit code
            line = _first_error_line(result.last_lines)
            if any("AlreadyExists" in x for x in result.last_lines):
                # An earlier attempt's stack: still being made (its eksctl outlived a killed apply, or runs
                # elsewhere) is waited for and adopted; a failed one is in the way until cleaned up.
                adopted = self._cluster_of_an_earlier_stack(ctx, name)
                if adopted is not None:
                    ctx.state["cluster"] = adopted
                    return done(f"cluster {name} of an earlier attempt is ACTIVE; adopted")
                fix = (f"a CloudFormation stack of an earlier attempt is in the way: run `dynamo-wizard cleanup "
                       f"--deployment {plan.deployment}`, then apply again")
            else:
                fix = "read eksctl's output above, fix the cause, then apply again (an existing cluster is adopted)"
            raise StepError(f"eksctl could not create cluster {name} (exit {result.returncode}): {line}", fix)
        # Record it before any safe point: a stop asked for during eksctl lands right after this.
        made = aws.describe_cluster(name)
        if made is not None:
            ctx.created(CLUSTER, name, made.arn, region=plan.region)
        info = made if made is not None and made.status == "ACTIVE" and made.endpoint else self.wait_active(ctx, name)
        if made is None:
            ctx.created(CLUSTER, name, info.arn, region=plan.region)
        ctx.state["cluster"] = info
        return done(f"cluster {name} is ACTIVE (Kubernetes {info.version or '?'})")

    def _cluster_of_an_earlier_stack(self, ctx: StepContext, name: str) -> ClusterInfo | None:
        """eksctl found its stack made already. Its cluster, when it exists, is adopted (when it is ours);
        while the stack is still being created (that attempt's eksctl outlived a killed apply, or runs
        elsewhere), its cluster is waited for. None when the stack failed, or finished without a cluster
        (deleted since): the caller says to clean up."""
        aws, plan = self.b.aws, self.plan
        stack = mf.eksctl_cluster_stack_name(plan)
        info = aws.describe_cluster(name)
        if info is None:
            status = aws.stack_status(stack)
            if status != "CREATE_IN_PROGRESS":
                ctx.log(f"stack {stack} is {status or 'gone'} and there is no cluster {name}: it will not make one")
                return None
            ctx.log(f"stack {stack} of an earlier attempt is {status}: waiting for its cluster (that attempt's "
                    "eksctl may still be running; a second cluster is not started)")

            def appeared() -> ClusterInfo | None:
                found = aws.describe_cluster(name)
                if found is not None:
                    return found
                now = aws.stack_status(stack)
                if now != "CREATE_IN_PROGRESS":
                    raise StepError(f"stack {stack} of an earlier attempt went {now or 'away'} without making "
                                    f"cluster {name}", f"run `dynamo-wizard cleanup --deployment "
                                    f"{plan.deployment}`, then apply again")
                return None

            info = self.wait(ctx, appeared, f"the cluster of stack {stack} to appear",
                             timeout=STACK_CLUSTER_APPEARS * self.o.timeout_scale)
        owner = info.tags.get(mf.TAG_DEPLOYMENT)
        if owner != plan.deployment:
            raise StepError(f"the cluster {name} that stack {stack} made is not deployment {plan.deployment}'s "
                            f"(tag {mf.TAG_DEPLOYMENT}={owner or 'missing'})",
                            "set cluster.name in the plan to a name that is free")
        if info.status != "ACTIVE" or not info.endpoint:
            info = self.wait_active(ctx, name)
        if not self.known(ctx, CLUSTER, name):
            ctx.created(CLUSTER, name, info.arn, region=plan.region)
        return info

    def wait_active(self, ctx: StepContext, name: str) -> ClusterInfo:
        last: list[str] = []

        def active() -> ClusterInfo | None:
            info = self.b.aws.describe_cluster(name)
            status = info.status if info else "not found"
            if not last or last[-1] != status:
                last.append(status)
                ctx.log(f"cluster {name}: {status}")
            if info is not None and info.status in ("FAILED", "DELETING"):
                raise StepError(f"cluster {name} went {info.status}",
                                f"clean up (dynamo-wizard cleanup --deployment {self.plan.deployment}), then apply again")
            return info if info is not None and info.status == "ACTIVE" and info.endpoint else None

        return self.wait(ctx, active, f"cluster {name} to become ACTIVE")  # type: ignore[no-any-return]

    # -- Kubernetes access ---------------------------------------------------------------------------

    def kube_access(self, ctx: StepContext) -> StepResult:
        name = self.plan.cluster_name
        info = self.b.aws.describe_cluster(name) or ctx.state["cluster"]
        ctx.state["cluster"] = info
        access = self.b.kube_access(info)
        kube = self.b.connect(access)
        ctx.log(f"API server {access.endpoint} (token from a presigned STS call)")
        version = self.wait(ctx, kube.server_version, "the API server to accept our token", timeout=600 *
                            self.o.timeout_scale,
                            fix="the EKS access entry of this AWS identity may be missing: the identity that "
                                "created the cluster has one; check `aws eks list-access-entries`")
        ctx.state["access"] = access
        ctx.state["kube"] = kube
        return done(f"Kubernetes {version} answers at {access.endpoint}")

    # -- simple objects ------------------------------------------------------------------------------

    def namespace(self, ctx: StepContext) -> StepResult:
        r = self.ensure(ctx, mf.namespace(self.plan), NAMESPACE)
        return self.outcome([r], f"namespace {self.ns} {'was already there' if r != 'created' else 'created'}")

    def gpu_nodepool(self, ctx: StepContext) -> StepResult:
        r = self.ensure(ctx, mf.gpu_nodepool(self.plan), NODEPOOL)
        families = ", ".join(self.plan.gpu.families)
        return self.outcome([r], f"NodePool {mf.GPU_NODEPOOL} ({families}; {', '.join(self.plan.gpu.capacity_types)})")

    def default_storage_class(self, ctx: StepContext) -> StepResult:
        r = self.ensure(ctx, mf.default_storage_class(self.plan), STORAGE_CLASS)
        return self.outcome([r], f"default StorageClass {mf.DEFAULT_STORAGE_CLASS}")

    def reserved_capacity(self, ctx: StepContext) -> StepResult:
        kube, plan = self.kube(ctx), self.plan
        assert plan.reservation is not None
        default = self.wait(ctx, lambda: kube.get("eks.amazonaws.com/v1", "NodeClass", mf.DEFAULT_NODECLASS),
                            f"Auto Mode's NodeClass {mf.DEFAULT_NODECLASS}")
        spec = default.get("spec") or {}
        if not spec.get("role"):
            raise StepError(f"NodeClass {mf.DEFAULT_NODECLASS} has no spec.role to copy",
                            "check the cluster's Auto Mode configuration (eksctl autoModeConfig)")
        facts = mf.ClusterFacts(node_role=spec.get("role"),
                                subnet_selector_terms=tuple(spec.get("subnetSelectorTerms") or ()),
                                security_group_selector_terms=tuple(spec.get("securityGroupSelectorTerms") or ()))
        ctx.log(f"copying role {facts.node_role} and selector terms from NodeClass {mf.DEFAULT_NODECLASS}")
        results = [self.ensure(ctx, mf.reserved_nodeclass(plan, facts), NODECLASS),
                   self.ensure(ctx, mf.reserved_nodepool(plan), NODEPOOL)]
        wanted = set(plan.reservation.ids)
        said: list[str] = []

        def active() -> list[dict[str, Any]] | None:
            nc = kube.get("eks.amazonaws.com/v1", "NodeClass", mf.RESERVED_NODECLASS) or {}
            found = [r for r in (nc.get("status") or {}).get("capacityReservations") or [] if isinstance(r, dict)]
            text = ", ".join(f"{r.get('id')} {r.get('state', '?')}" for r in found) or "none matched yet"
            if not said or said[-1] != text:
                said.append(text)
                ctx.log(f"NodeClass {mf.RESERVED_NODECLASS} capacity reservations: {text}")
            live = [r for r in found if r.get("state") == "active"]
            if wanted:
                ids = {r.get("id") for r in live}
                return live if wanted <= ids else None
            return live or None

        live = self.wait(ctx, active, "the capacity reservation to show as active on the NodeClass",
                         fix="check the reservation's state and start time (dynamo-wizard reservations); a "
                             "Capacity Block only becomes active at its start time")
        summary = "reserved NodeClass and NodePool; active: " + ", ".join(
            f"{r.get('id')} ({r.get('instanceType', '?')} in {r.get('availabilityZone', '?')})" for r in live)
        return self.outcome(results, summary)

    # -- EFS -----------------------------------------------------------------------------------------

    def efs(self, ctx: StepContext) -> StepResult:
        aws, plan = self.b.aws, self.plan
        cluster: ClusterInfo = ctx.state["cluster"]
        if not cluster.vpc_id:
            cluster = aws.describe_cluster(plan.cluster_name) or cluster
        all_subnets = aws.describe_subnets(cluster.subnet_ids)
        vpc_id = cluster.vpc_id or next((s.vpc_id for s in all_subnets if s.vpc_id), None)
        if not vpc_id:
            raise StepError(f"cluster {cluster.name} has no VPC", "check the cluster in the EKS console")
        tags = {mf.TAG_DEPLOYMENT: plan.deployment}
        adopted_all = True
        cidr = aws.vpc_cidr(vpc_id)
        # Security group: NFS from the whole VPC.
        sg_name = mf.EFS_SECURITY_GROUP_NAME
        sg = aws.find_security_group(vpc_id, sg_name)
        if sg is None:
            adopted_all = False
            ctx.intent(SECURITY_GROUP, sg_name, vpcId=vpc_id)
            try:
                sg = aws.create_security_group(vpc_id, sg_name, "NFS to EFS from the EKS cluster (dynamo-wizard)",
                                               dict(tags, Name=sg_name))
            except Conflict:
                sg = aws.find_security_group(vpc_id, sg_name)
                if sg is None:
                    raise
            ctx.created(SECURITY_GROUP, sg_name, sg.id, vpcId=vpc_id)
            ctx.log(f"created security group {sg.id} ({sg_name}) in {vpc_id}")
        else:
            if sg.tags.get(mf.TAG_DEPLOYMENT) != plan.deployment:
                # Ours are tagged at creation (atomically), so an untagged one is someone else's: never touch it.
                raise StepError(
                    f"security group {sg.id} named {sg_name} in {vpc_id} was not made by dynamo-wizard for "
                    f"{plan.deployment}; it is left as it is",
                    f"rename or delete that group if it is not needed (aws ec2 delete-security-group --group-id "
                    f"{sg.id} --region {plan.region}), then run the same command again to resume")
            if not self.known(ctx, SECURITY_GROUP, sg_name):
                ctx.adopted(SECURITY_GROUP, sg_name, sg.id, vpcId=vpc_id)
            ctx.log(f"security group {sg.id} ({sg_name}) is already there")
        if aws.allow_nfs_from(sg.id, cidr):
            adopted_all = False
            ctx.log(f"allowed NFS (tcp 2049) from {cidr}")
        # File system, found by its creation token (the guide's has none, so a re-run made a second one).
        token = mf.efs_creation_token(plan)
        fs_name = mf.efs_name_tag(plan)
        fs = aws.find_file_system(token)
        if fs is None:
            adopted_all = False
            ctx.intent(FILE_SYSTEM, fs_name, creationToken=token)
            try:
                fs = aws.create_file_system(token, dict(tags, Name=fs_name))
            except Conflict:
                fs = aws.find_file_system(token)
                if fs is None:
                    raise
            ctx.created(FILE_SYSTEM, fs_name, fs.id, creationToken=token)
            ctx.log(f"created file system {fs.id} (elastic throughput, encrypted)")
        else:
            if not self.known(ctx, FILE_SYSTEM, fs_name):
                ctx.adopted(FILE_SYSTEM, fs_name, fs.id, creationToken=token)
            ctx.log(f"file system {fs.id} is already there ({fs.state})")
        fs_id = fs.id

        def fs_available() -> bool:
            current = aws.describe_file_system(fs_id)
            if current is None:
                raise StepError(f"file system {fs_id} disappeared", "run apply again to create a new one")
            return current.state == "available"

        self.wait(ctx, fs_available, f"file system {fs_id} to become available")
        # Mount targets: one per zone of the cluster's subnets, private subnets preferred.
        subnets = pick_mount_subnets(all_subnets)
        if not subnets:
            raise StepError(f"cluster {cluster.name} has no subnets to mount EFS in", "check the cluster's VPC")
        existing = {mt.zone: mt for mt in aws.mount_targets(fs_id)}
        for zone, subnet in subnets.items():
            mt = existing.get(zone)
            if mt is not None:
                if not self.known(ctx, MOUNT_TARGET, zone):
                    ctx.adopted(MOUNT_TARGET, zone, mt.id, fileSystemId=fs_id, subnetId=mt.subnet_id)
                continue
            adopted_all = False
            ctx.intent(MOUNT_TARGET, zone, fileSystemId=fs_id, subnetId=subnet.id)
            try:
                mt = self.b.aws.create_mount_target(fs_id, subnet.id, [sg.id])
            except Conflict:
                mt = next((m for m in aws.mount_targets(fs_id) if m.zone == zone), None)
                if mt is None:
                    raise
            ctx.created(MOUNT_TARGET, zone, mt.id, fileSystemId=fs_id, subnetId=subnet.id)
            ctx.log(f"created mount target {mt.id} in {zone} ({'public' if subnet.public else 'private'} "
                    f"subnet {subnet.id})")
        said: list[str] = []

        def targets_available() -> bool:
            states = {mt.zone: mt.state for mt in aws.mount_targets(fs_id)}
            text = ", ".join(f"{z} {s}" for z, s in sorted(states.items()))
            if not said or said[-1] != text:
                said.append(text)
                ctx.log(f"mount targets: {text}")
            return all(states.get(z) == "available" for z in subnets)

        self.wait(ctx, targets_available, "the EFS mount targets to become available")
        ctx.state["fs_id"] = fs_id
        summary = f"file system {fs_id} with {len(subnets)} mount targets; security group {sg.id}"
        return skipped(summary) if adopted_all else done(summary)

    def efs_volumes(self, ctx: StepContext) -> StepResult:
        kube, plan = self.kube(ctx), self.plan
        fs_id = ctx.state["fs_id"]
        sc = mf.efs_storage_class(plan, mf.ClusterFacts(efs_file_system_id=fs_id))
        current = kube.get(sc["apiVersion"], sc["kind"], mf.EFS_STORAGE_CLASS)
        if current is not None and self.ours(current) and \
                (current.get("parameters") or {}).get("fileSystemId") != fs_id:
            # StorageClass parameters are immutable: an old one points at a file system that is gone.
            ctx.log(f"StorageClass {mf.EFS_STORAGE_CLASS} points at another file system; replacing it")
            kube.delete(sc["apiVersion"], sc["kind"], mf.EFS_STORAGE_CLASS, wait=60 * self.o.timeout_scale + 5,
                        cancel=ctx.cancel)
            ctx.deleted(STORAGE_CLASS, mf.EFS_STORAGE_CLASS)
        results = [self.ensure(ctx, sc, STORAGE_CLASS)]
        for pvc in mf.cache_pvcs(plan):
            results.append(self.ensure(ctx, pvc, PVC))
        names = list(mf.CACHE_PVCS)
        said: list[str] = []

        def bound() -> bool:
            phases = {}
            for name in names:
                obj = kube.get("v1", "PersistentVolumeClaim", name, self.ns) or {}
                phases[name] = (obj.get("status") or {}).get("phase") or "Pending"
            text = ", ".join(f"{n} {p}" for n, p in phases.items())
            if not said or said[-1] != text:
                said.append(text)
                ctx.log(f"PVCs: {text}")
                if any(p != "Bound" for p in phases.values()):
                    for name in names:
                        ev = kube.latest_event(self.ns, "PersistentVolumeClaim", name)
                        if ev is not None and phases[name] != "Bound":
                            ctx.log(f"  {name}: {ev.get('reason')}: {ev.get('message')}")
            return all(p == "Bound" for p in phases.values())

        self.wait(ctx, bound, "the cache PVCs to be Bound",
                  fix="the EFS CSI driver add-on (aws-efs-csi-driver) must be running; check its pods in kube-system")
        return self.outcome(results, f"StorageClass {mf.EFS_STORAGE_CLASS} ({fs_id}) and PVCs {', '.join(names)} Bound")

    # -- platform ------------------------------------------------------------------------------------

    def helm_status(self, ctx: StepContext) -> dict[str, Any] | None:
        lines: list[str] = []
        result = self.b.tools.helm(["status", self.profile.release_name, "--namespace", self.ns, "-o", "json"],
                                   ctx.state["access"], lines.append, ctx.cancel, interruptible=True)
        if not result.ok:
            return None
        try:
            data = json.loads("\n".join(lines))
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def platform(self, ctx: StepContext) -> StepResult:
        kube, profile = self.kube(ctx), self.profile
        release = profile.release_name
        status = self.helm_status(ctx)
        state = ((status or {}).get("info") or {}).get("status")
        version = (((status or {}).get("chart") or {}).get("metadata") or {}).get("version")
        installed = state == "deployed" and version in (None, profile.version)
        if state in ("pending-install", "pending-upgrade", "pending-rollback"):
            raise StepError(f"helm release {release} is stuck in {state} (an earlier helm was interrupted)",
                            f"run `helm rollback {release} -n {self.ns}` (or `helm uninstall {release} -n {self.ns}`), "
                            "then apply again")
        if installed:
            ctx.log(f"helm release {release} ({profile.chart_name} {version or profile.version}) is already deployed")
            if not self.known(ctx, HELM_RELEASE, release):
                ctx.adopted(HELM_RELEASE, release, namespace=self.ns, chart=profile.chart_url)
        else:
            values = self.workdir / "dynamo-platform-values.yaml"
            values.write_text(yaml.safe_dump(mf.helm_values(self.plan, profile), sort_keys=False), encoding="utf-8")
            args = mf.helm_command(self.plan, profile, str(values))[1:]
            args = _without_wait(args)  # we wait ourselves, and say what we are waiting for
            ctx.intent(HELM_RELEASE, release, namespace=self.ns, chart=profile.chart_url)
            ctx.log("$ helm " + " ".join(args))
            result = self.b.tools.helm(args, ctx.state["access"],
                                       _noting_soft_cancel(ctx, "helm keeps going until the release is installed "
                                                                "(stopping it now would leave it pending-install)"),
                                       ctx.cancel)
            if not result.ok:
                ctx.check()
                line = _first_error_line(result.last_lines)
                fix = ("the chart could not be fetched: check that Dynamo release "
                       f"{profile.version} exists ({profile.chart_url})" if "404" in line or "not found" in line
                       else "read helm's output above, fix the cause, then apply again (helm upgrade --install "
                            "is safe to repeat)")
                raise StepError(f"helm could not install {release} (exit {result.returncode}): {line}", fix)
            ctx.created(HELM_RELEASE, release, namespace=self.ns, chart=profile.chart_url)
        self.wait_platform_ready(ctx, kube)
        summary = f"{profile.chart_name} {profile.version}: operator ready" + (", NATS ready" if profile.nats else "") + \
            f", {len(profile.crds)} CRDs"
        return skipped(summary) if installed else done(summary)

    def wait_platform_ready(self, ctx: StepContext, kube: Kube) -> None:
        profile = self.profile
        seen: dict[str, str] = {}

        def ready() -> bool:
            dep = kube.get("apps/v1", "Deployment", profile.operator_deployment, self.ns) or {}
            want = int((dep.get("spec") or {}).get("replicas") or 1)
            have = int((dep.get("status") or {}).get("readyReplicas") or 0)
            pods = kube.list("v1", "Pod", self.ns)
            platform_pods = [p for p in pods if p["metadata"]["name"].startswith(profile.release_name)]
            self.report_pods(ctx, platform_pods, seen)
            nats_ok = True
            if profile.nats:
                nats = kube.get("v1", "Pod", f"{profile.nats_statefulset}-0", self.ns)
                nats_ok = nats is not None and pod_ready(nats)
            return bool(dep) and have >= want and nats_ok

        self.wait(ctx, ready, "the Dynamo operator" + (" and NATS" if profile.nats else "") + " to be ready",
                  fix="look at the platform pods above: a Pending NATS pod means its volume cannot bind "
                      f"(the default StorageClass {mf.DEFAULT_STORAGE_CLASS} must exist)")
        missing: list[str] = []

        def crds() -> bool:
            missing[:] = [c for c in profile.crds
                          if kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", c) is None]
            return not missing

        self.wait(ctx, crds, "the Dynamo CRDs", timeout=300 * self.o.timeout_scale,
                  fix="the platform chart did not install them: check the release profile's CRDs")
        ctx.log(f"CRDs present: {', '.join(profile.crds)}")

    # -- the HF token --------------------------------------------------------------------------------

    def hf_secret(self, ctx: StepContext) -> StepResult:
        kube = self.kube(ctx)
        token = self.o.hf_token or ""
        if not token:
            ctx.log("no Hugging Face token given: public models download anonymously (rate limited); gated "
                    "models will fail. Set HF_TOKEN to use one.")
        secret = mf.hf_token_secret(self.plan, token)
        existing = kube.get("v1", "Secret", mf.HF_SECRET_NAME, self.ns)
        if existing is not None:
            data = (existing.get("data") or {}).get(mf.HF_SECRET_KEY)
            current = base64.b64decode(data).decode("utf-8", "replace") if data else \
                (existing.get("stringData") or {}).get(mf.HF_SECRET_KEY, "")
            if current == token:
                if self.ours(existing) and not self.known(ctx, SECRET, mf.HF_SECRET_NAME):
                    ctx.adopted(SECRET, mf.HF_SECRET_NAME, _uid(existing), namespace=self.ns)
                return skipped(f"Secret {mf.HF_SECRET_NAME} already holds this token")
            # Replace the value; the old one is never shown or logged.
            kube.patch({"apiVersion": "v1", "kind": "Secret",
                        "metadata": {"name": mf.HF_SECRET_NAME, "namespace": self.ns,
                                     "labels": secret["metadata"]["labels"]},
                        "data": {mf.HF_SECRET_KEY: base64.b64encode(token.encode()).decode()}})
            if not self.known(ctx, SECRET, mf.HF_SECRET_NAME):
                ctx.adopted(SECRET, mf.HF_SECRET_NAME, _uid(existing), namespace=self.ns)
            return done(f"Secret {mf.HF_SECRET_NAME}: token updated")
        ctx.intent(SECRET, mf.HF_SECRET_NAME, namespace=self.ns)
        created = kube.create(secret)
        ctx.created(SECRET, mf.HF_SECRET_NAME, _uid(created), namespace=self.ns)
        return done(f"Secret {mf.HF_SECRET_NAME} created in {self.ns}")

    # -- model download ------------------------------------------------------------------------------

    def job_pods(self, kube: Kube, job: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Pods of this Job (by its uid when the server gives one, so an old Job's pods never count)."""
        uid = _uid(job)
        out = []
        for pod in kube.list("v1", "Pod", self.ns):
            labels = _labels(pod)
            owners = [o for o in (pod.get("metadata") or {}).get("ownerReferences") or [] if isinstance(o, Mapping)]
            if uid:
                mine = any(o.get("uid") == uid for o in owners) or uid in (
                    labels.get("controller-uid"), labels.get("batch.kubernetes.io/controller-uid"))
            else:
                mine = mf.DOWNLOAD_JOB in (labels.get("job-name"), labels.get("batch.kubernetes.io/job-name")) or \
                    any(o.get("kind") == "Job" and o.get("name") == mf.DOWNLOAD_JOB for o in owners)
            if mine:
                out.append(pod)
        return sorted(out, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))

    def model_download(self, ctx: StepContext) -> StepResult:
        kube, plan = self.kube(ctx), self.plan
        job = mf.model_download_job(plan, self.catalog)
        memory = mf.download_memory(plan, self.catalog)
        existing = kube.get("batch/v1", "Job", mf.DOWNLOAD_JOB, self.ns)
        adopted = False
        if existing is not None:
            same = _job_matches(existing, job)
            if same and _true(existing, "Complete") or (same and int((existing.get("status") or {}).get("succeeded")
                                                                     or 0) >= 1):
                if not self.known(ctx, JOB, mf.DOWNLOAD_JOB):
                    ctx.adopted(JOB, mf.DOWNLOAD_JOB, _uid(existing), namespace=self.ns)
                return skipped(f"{plan.serving.model} is already in the model-cache PVC (Job complete)")
            if same and not _true(existing, "Failed"):
                ctx.log(f"Job {mf.DOWNLOAD_JOB} is already running; following it")
                adopted = True
                if not self.known(ctx, JOB, mf.DOWNLOAD_JOB):
                    ctx.adopted(JOB, mf.DOWNLOAD_JOB, _uid(existing), namespace=self.ns)
            else:
                why = "failed" if _true(existing, "Failed") else "was made for another model or memory size"
                ctx.log(f"deleting the old Job {mf.DOWNLOAD_JOB} (it {why}) before running it again")
                kube.delete("batch/v1", "Job", mf.DOWNLOAD_JOB, self.ns, wait=120 * self.o.timeout_scale + 5,
                            cancel=ctx.cancel)
                ctx.check()
                ctx.deleted(JOB, mf.DOWNLOAD_JOB)
                existing = None
        if existing is None:
            ctx.intent(JOB, mf.DOWNLOAD_JOB, namespace=self.ns)
            existing = kube.create(job)
            ctx.created(JOB, mf.DOWNLOAD_JOB, _uid(existing), namespace=self.ns)
            ctx.log(f"started Job {mf.DOWNLOAD_JOB}: {plan.serving.model} into PVC {mf.MODEL_CACHE_PVC} "
                    f"(memory request {memory})")
        return self.follow_download(ctx, kube, memory, adopted)

    def follow_download(self, ctx: StepContext, kube: Kube, memory: str, adopted: bool) -> StepResult:
        followed: set[str] = set()
        followers: list[threading.Thread] = []
        stop = CancelToken(ctx.cancel)
        seen: dict[str, str] = {}

        def follow(pod: str) -> None:
            try:
                for line in kube.follow_log(self.ns, pod, cancel=stop):
                    ctx.log(f"[{pod}] {line}")
            except BackendError as err:
                ctx.log(f"[{pod}] log stream ended: {err.message}")

        def finished() -> str | None:
            job = kube.get("batch/v1", "Job", mf.DOWNLOAD_JOB, self.ns)
            if job is None:
                raise StepError(f"Job {mf.DOWNLOAD_JOB} was deleted while it ran", "run apply again to start it again")
            pods = self.job_pods(kube, job)
            self.report_pods(ctx, pods, seen)
            for pod in pods:
                name = pod["metadata"]["name"]
                phase = (pod.get("status") or {}).get("phase")
                if name not in followed and phase in ("Running", "Succeeded", "Failed"):
                    followed.add(name)
                    follower = threading.Thread(target=follow, args=(name,), name=f"dw-log-{name}", daemon=True)
                    follower.start()
                    followers.append(follower)
                if oom_killed(pod):
                    raise StepError(
                        f"the model download ran out of memory (OOMKilled) with a memory request of {memory}: "
                        "hf-xet's download buffers grow with the model's shards",
                        f"set storage.downloadMemory: {suggest_memory(memory)} in the plan (or storage."
                        "xetHighPerformance: false to cap the buffers), then apply again; the old Job is replaced")
            status = job.get("status") or {}
            if _true(job, "Complete") or int(status.get("succeeded") or 0) >= 1:
                return "complete"
            if _true(job, "Failed"):
                cond = _condition(job, "Failed") or {}
                raise StepError(f"the model download failed: {cond.get('reason', '')} {cond.get('message', '')}".strip(),
                                "read the Job's log above (a 401/403 means the HF token is missing or lacks "
                                "access to the model; 429 is Hugging Face's rate limit), then apply again")
            return None

        try:
            self.wait(ctx, finished, f"Job {mf.DOWNLOAD_JOB} to complete",
                      fix="large models take long: run apply again to keep following the same Job")
            # The pod has ended, so its log stream ends too: let the last lines arrive in order.
            for follower in followers:
                follower.join(timeout=max(1.0, 10 * self.o.poll))
        finally:
            stop.cancel()
        summary = f"{self.plan.serving.model} downloaded to PVC {mf.MODEL_CACHE_PVC}"
        return done(summary + (" (adopted a running Job)" if adopted else ""))

    # -- GPU warm-up ---------------------------------------------------------------------------------

    def warmup_name(self) -> str:
        return f"{self.plan.deployment}-gpu-warmup"[:63]

    def warmup_deployment(self) -> dict[str, Any]:
        plan = self.plan
        itype = mf.instance_type(plan, self.catalog)
        nodes = max(1, instances_needed(plan, itype).instances)
        graph = mf.dynamo_graph(plan, self.catalog, self.profile)
        worker = next(s for s in graph["spec"]["services"].values() if s.get("componentType") == "worker")
        pod_spec = worker.get("extraPodSpec") or {}
        image = (pod_spec.get("mainContainer") or {}).get("image") or self.profile.runtime_image
        labels = mf.labels(plan, {"app": WARMUP_APP})
        gpus = str(itype.gpus)
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": self.warmup_name(), "namespace": self.ns, "labels": labels},
            "spec": {
                "replicas": nodes,
                "selector": {"matchLabels": {"app": WARMUP_APP, mf.LABEL_DEPLOYMENT: plan.deployment}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        # The graph's own placement, so the nodes launched are the ones its workers use.
                        "nodeSelector": dict(pod_spec.get("nodeSelector") or {}),
                        "tolerations": list(pod_spec.get("tolerations") or []),
                        # One pod per node: each asks for all of a node's GPUs.
                        "terminationGracePeriodSeconds": 0,
                        "containers": [{
                            "name": "warmup",
                            "image": image,
                            "command": ["sh", "-c", "echo runtime image pulled; exec sleep infinity"],
                            "resources": {"requests": {"nvidia.com/gpu": gpus, "cpu": "100m", "memory": "64Mi"},
                                          "limits": {"nvidia.com/gpu": gpus}},
                        }],
                    },
                },
            },
        }

    def gpu_warmup(self, ctx: StepContext) -> StepResult:
        kube = self.kube(ctx)
        graph = kube.get(self.profile.graph_api_version, "DynamoGraphDeployment", self.plan.graph_name, self.ns)
        if graph is not None:
            return skipped("the graph is already applied; its own pods hold the GPU nodes")
        dep = self.warmup_deployment()
        replicas = dep["spec"]["replicas"]
        name = dep["metadata"]["name"]
        r = self.ensure(ctx, dep, WARMUP_KIND)
        ctx.log(f"launching {replicas} × {self.plan.serving.instance_type} and pulling {self.profile.runtime_image} "
                "while the model downloads")
        seen: dict[str, str] = {}
        claims: dict[str, str] = {}

        def running() -> bool:
            pods = [p for p in kube.list("v1", "Pod", self.ns, labels={"app": WARMUP_APP})
                    if p["metadata"]["name"].startswith(name)]
            self.report_pods(ctx, pods, seen)
            if any((p.get("status") or {}).get("phase") != "Running" for p in pods) or len(pods) < replicas:
                self.report_nodeclaims(ctx, claims)
            return sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running") >= replicas

        self.wait(ctx, running, "the GPU nodes to start with the runtime image",
                  fix="the graph will launch its nodes itself; look at the NodeClaims above for why none came up")
        return self.outcome([r], f"{replicas} GPU node(s) up with the runtime image pulled")

    # -- the graph -----------------------------------------------------------------------------------

    def graph(self, ctx: StepContext) -> StepResult:
        kube, plan, profile = self.kube(ctx), self.plan, self.profile
        warm = kube.get("apps/v1", "Deployment", self.warmup_name(), self.ns)
        if warm is not None and self.ours(warm):
            # Free the warmed GPUs for the graph's workers (the nodes stay: consolidation waits 300 s). Wait
            # until the pods are gone, or Auto Mode sees the GPUs taken and launches more nodes.
            kube.delete("apps/v1", "Deployment", self.warmup_name(), self.ns)
            ctx.deleted(WARMUP_KIND, self.warmup_name())
            self.wait(ctx, lambda: not kube.list("v1", "Pod", self.ns, labels={"app": WARMUP_APP}),
                      "the warm-up pods to release their GPUs", timeout=120 * self.o.timeout_scale + 5)
            ctx.log("released the warm-up pods; the workers land on the warm nodes")
        dgd = mf.dynamo_graph(plan, self.catalog, profile)
        self.remove_stale_graphs(ctx, kube, dgd["apiVersion"])
        r = self.ensure(ctx, dgd, DGD)
        g = profile.graph
        expected = sum(int(s.get("replicas", 1)) for s in dgd["spec"]["services"].values())
        seen: dict[str, str] = {}
        claims: dict[str, str] = {}
        states: list[str] = []

        def serving() -> bool:
            obj = kube.get(dgd["apiVersion"], "DynamoGraphDeployment", plan.graph_name, self.ns) or {}
            state = str((obj.get("status") or {}).get("state") or "pending")
            if not states or states[-1] != state:
                states.append(state)
                ctx.log(f"graph {plan.graph_name}: {state}")
            if state == "failed":
                cond = _condition(obj, "Ready") or {}
                raise StepError(f"the operator reports graph {plan.graph_name} failed: {cond.get('message', '')}".strip(),
                                "read the pod states above; fix the plan, then apply again")
            pods = kube.list("v1", "Pod", self.ns, labels={g.graph_name_label: plan.graph_name})
            self.report_pods(ctx, pods, seen)
            if any(not pod_ready(p) for p in pods):
                self.report_nodeclaims(ctx, claims)
            self.check_crashloop(ctx, kube, pods)
            ready = sum(1 for p in pods if pod_ready(p))
            return state == "successful" and ready >= expected and all(pod_ready(p) for p in pods)

        self.wait(ctx, serving, f"graph {plan.graph_name}'s pods to be ready",
                  fix="GPU capacity may be short (see the NodeClaims above) or the model slow to load; run apply "
                      "again to keep waiting, or clean up")
        return self.outcome([r], f"graph {plan.graph_name}: {expected} pods ready, state successful")

    def remove_stale_graphs(self, ctx: StepContext, kube: Kube, api_version: str) -> None:
        """A graph of this deployment under another name (the plan's mode or name changed) holds GPU nodes that
        the plan no longer wants: delete it, as applying the plan means converging to it."""
        for old in kube.list(api_version, "DynamoGraphDeployment", self.ns,
                             labels={mf.LABEL_MANAGED_BY: mf.MANAGED_BY, mf.LABEL_DEPLOYMENT: self.plan.deployment}):
            name = old["metadata"]["name"]
            if name == self.plan.graph_name:
                continue
            ctx.log(f"deleting graph {name}: the plan now serves {self.plan.graph_name} instead")
            kube.delete(api_version, "DynamoGraphDeployment", name, self.ns)
            ctx.deleted(DGD, name)

    def check_crashloop(self, ctx: StepContext, kube: Kube, pods: list[dict[str, Any]]) -> None:
        for pod in pods:
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                waiting = ((cs or {}).get("state") or {}).get("waiting") or {}
                if waiting.get("reason") == "CrashLoopBackOff" and int(cs.get("restartCount") or 0) >= 5:
                    name = pod["metadata"]["name"]
                    tail = kube.read_log(self.ns, name, tail_lines=20).splitlines()
                    for line in tail:
                        ctx.log(f"[{name}] {line}")
                    last = tail[-1] if tail else "no log"
                    raise StepError(f"pod {name} keeps crashing ({cs.get('restartCount')} restarts): {last}",
                                    "read its log above (a 429 from Hugging Face means rate limiting: the cached "
                                    "weights on EFS avoid it); fix the plan, then apply again")

    # -- EFA check -----------------------------------------------------------------------------------

    def efa_check(self, ctx: StepContext) -> StepResult:
        kube, plan, g = self.kube(ctx), self.plan, self.profile.graph
        reports: dict[str, BackendReport] = {}

        def decided() -> bool:
            pods = kube.list("v1", "Pod", self.ns, labels={g.graph_name_label: plan.graph_name,
                                                            g.component_type_label: "worker"})
            for pod in pods:
                name = pod["metadata"]["name"]
                if name in reports and reports[name].verdict != "unknown":
                    continue
                reports[name] = detect_backend(kube.read_log(self.ns, name).splitlines())
            return bool(pods) and all(r.verdict != "unknown" for r in reports.values())

        try:
            self.wait(ctx, decided, "the workers' logs to name the NIXL backend", timeout=300 * self.o.timeout_scale)
        except StepError:
            if not reports:
                raise
        for name, report in sorted(reports.items()):
            ctx.log(report.sentence(name))
            if report.evidence:
                ctx.log(f"  log: {report.evidence}")
        ctx.state["efa"] = {n: r.verdict for n, r in reports.items()}
        bad = [n for n, r in reports.items() if r.verdict in ("tcp", "ucx")]
        if bad:
            first = reports[bad[0]]
            raise StepError(first.sentence(bad[0]) + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""),
                            "EFA needs an EFA-capable instance type with vpc.amazonaws.com/efa in the workers' "
                            "resources, all workers in one zone; if the device is there but memory registration "
                            "fails, try serving.privileged: true. The endpoint still works, over TCP.")
        unsure = [n for n, r in reports.items() if r.verdict != "efa"]
        if unsure:
            return done(f"LIBFABRIC selected on {len(reports)} workers; the provider is not in the logs")
        return done(f"EFA in use: NIXL chose LIBFABRIC over the efa provider on all {len(reports)} workers")

    # -- smoke test ----------------------------------------------------------------------------------

    def smoke_test(self, ctx: StepContext) -> StepResult:
        kube, plan = self.kube(ctx), self.plan
        service = mf.frontend_service_name(plan, self.profile)
        port = self.profile.graph.frontend_port
        model = plan.serving.model
        said: list[str] = []

        def note(text: str) -> None:
            if not said or said[-1] != text:
                said.append(text)
                ctx.log(text)

        def models() -> list[str] | None:
            reply = kube.proxy("GET", self.ns, service, port, "/v1/models", timeout=30)
            if not reply.ok:
                note(f"GET /v1/models: {reply.status} (the frontend is not answering yet)")
                return None
            try:
                ids = [str(m.get("id")) for m in json.loads(reply.body).get("data") or []]
            except (ValueError, AttributeError):
                note("GET /v1/models: not JSON yet")
                return None
            if model not in ids:
                note(f"GET /v1/models: {ids or 'no models yet'} (waiting for {model} to register)")
                return None
            return ids

        ids = self.wait(ctx, models, f"the frontend to list {model}")
        ctx.log(f"GET /v1/models → {', '.join(ids)}")
        request = {"model": model, "messages": [{"role": "user", "content": self.o.smoke_prompt}],
                   "max_tokens": 30, "stream": False}

        def completion() -> str | None:
            try:
                reply = kube.proxy("POST", self.ns, service, port, "/v1/chat/completions", request, timeout=180)
            except Unreachable as err:
                note(f"POST /v1/chat/completions: {err.message} (the first request is slow; retrying)")
                return None
            if not reply.ok:
                note(f"POST /v1/chat/completions: {reply.status} {reply.body[:200]} (retrying)")
                return None
            try:
                choice = (json.loads(reply.body).get("choices") or [{}])[0]
                text = str((choice.get("message") or {}).get("content") or choice.get("text") or "")
            except (ValueError, AttributeError, IndexError):
                note("POST /v1/chat/completions: the answer is not OpenAI-shaped JSON (retrying)")
                return None
            return text.strip() or "(an empty completion)"

        answer = self.wait(ctx, completion, "a chat completion from the frontend")
        ctx.log(f"POST /v1/chat/completions → {answer[:200]}")
        ctx.state["smoke"] = {"model": model, "answer": answer, "service": service, "port": port}
        return done(f"{model} answered through {service}:{port}")


def _noting_soft_cancel(ctx: StepContext, why: str) -> Callable[[str], None]:
    """A line sink for a tool a plain cancel does not stop: logs each line, and once, after a stop was asked
    for, why the step still runs and how to stop it now."""
    noted: list[bool] = []

    def on_line(line: str) -> None:
        ctx.log(line)
        if ctx.cancel.cancelled and not ctx.cancel.forced and not noted:
            noted.append(True)
            ctx.log(f"stop requested: {why}; stop again to interrupt it now")

    return on_line


def _without_wait(args: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "--wait":
            continue
        if a == "--timeout":
            skip = True
            continue
        out.append(a)
    return out


def _job_matches(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether a Job on the cluster downloads the same model with the same memory as the plan's."""
    def container(job: Mapping[str, Any]) -> Mapping[str, Any]:
        containers = ((((job.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [{}])
        return containers[0] if containers else {}

    def env(c: Mapping[str, Any]) -> dict[str, str]:
        return {str(e.get("name")): str(e.get("value")) for e in c.get("env") or [] if isinstance(e, Mapping)}

    def mem(c: Mapping[str, Any]) -> Any:
        return ((c.get("resources") or {}).get("requests") or {}).get("memory")

    a, b = container(existing), container(wanted)
    return env(a).get("MODEL_NAME") == env(b).get("MODEL_NAME") and \
        env(a).get("MODEL_REVISION") == env(b).get("MODEL_REVISION") and mem(a) == mem(b)


# --------------------------------------------------------------------------------------------------
# The graph


def build_provision_graph(plan: Plan, backends: ProvisionBackends,
                          options: ProvisionOptions | None = None) -> list[Step]:
    """The steps for `plan`, wired to `backends`. Give them to `core.runner.Runner`."""
    options = options or ProvisionOptions()
    p = _Provision(plan, backends, options)
    actions: dict[str, Callable[[StepContext], StepResult]] = {
        S_CLUSTER: p.cluster, S_KUBE: p.kube_access, S_NAMESPACE: p.namespace, S_GPU_POOL: p.gpu_nodepool,
        S_RESERVED: p.reserved_capacity, S_DEFAULT_SC: p.default_storage_class, S_EFS: p.efs,
        S_EFS_VOLUMES: p.efs_volumes, S_PLATFORM: p.platform, S_SECRET: p.hf_secret, S_DOWNLOAD: p.model_download,
        S_WARMUP: p.gpu_warmup, S_GRAPH: p.graph, S_EFA: p.efa_check, S_SMOKE: p.smoke_test,
    }
    fixes = {
        S_CLUSTER: "EKS clusters take 15-20 minutes; run apply again to keep waiting (the cluster is adopted)",
        S_DOWNLOAD: "large models take long; run apply again to keep following the same Job",
        S_GRAPH: "GPU nodes or the model load are slow; run apply again to keep waiting, or clean up",
    }
    steps = []
    for sid, title, deps, optional in _graph_shape(plan, options):
        steps.append(Step(sid, title, actions[sid], deps, TIMEOUT_MINUTES[sid] * 60 * options.timeout_scale,
                          optional, fixes.get(sid, "check the step's log, then run apply again to resume")))
    return steps
