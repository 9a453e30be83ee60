"""The sandbox's world: its clusters (EKS records and their simulated API servers), the gap-fill state,
faults and clock, and their persistence on disk under the sandbox directory."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import awsgaps
from .aws.bridge import Clients, ServiceBridge
from .aws.front import MotoApp
from .cluster.bootstrap import ClusterInfo, Subnet, efs_csi_objects
from .cluster.sim import ClusterSim
from .faults import Faults
from .timings import SimClock

log = logging.getLogger("sandbox.hub")


@dataclass
class ClusterRecord:
    name: str
    region: str
    status: str  # CREATING | ACTIVE | DELETING
    request: dict[str, Any]
    info: dict[str, Any]
    created: float = field(default_factory=time.time)
    ready_at: float = 0.0  # epoch seconds when the control plane becomes ACTIVE
    port: int = 0
    addons: list[str] = field(default_factory=list)
    sim: ClusterSim | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "region": self.region, "status": self.status, "request": self.request,
                "info": self.info, "created": self.created, "ready_at": self.ready_at, "port": self.port,
                "addons": self.addons}

    @property
    def key(self) -> str:
        return f"{self.region}_{self.name}"


def _dt(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def _parse_dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


class Hub:
    def __init__(self, directory: Path, clock: SimClock, faults: Faults, moto: MotoApp, endpoint: str) -> None:
        self.directory = directory
        self.clock = clock
        self.faults = faults
        self.moto = moto
        self.endpoint = endpoint
        self.clients = Clients(endpoint)
        self.gaps = awsgaps.default_sandbox_state()
        self.gaps.cluster_exists = lambda region, name: (region, name) in self.clusters
        self.gaps.addon_ready_after_s = clock.scaled(60)
        self.clusters: dict[tuple[str, str], ClusterRecord] = {}
        self.instance_reservations: dict[str, str] = {}
        self.dirty = False
        self.aws_saved_at = 0.0
        self.front: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -------------------------------------------------------------------------------------- helpers

    def cluster(self, region: str, name: str) -> ClusterRecord | None:
        return self.clusters.get((region, name))

    def mark_dirty(self) -> None:
        self.dirty = True

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cluster_dir(self, record: ClusterRecord) -> Path:
        d = self.directory / "clusters" / record.key
        d.mkdir(parents=True, exist_ok=True)
        return d

    # -------------------------------------------------------------------------------------- EKS

    async def cluster_created(self, region: str, params: dict[str, Any], cluster: dict[str, Any]) -> None:
        name = cluster["name"]
        keep: dict[str, Any] = {k: params[k] for k in ("computeConfig", "storageConfig", "accessConfig", "kubernetesNetworkConfig",
                                       "upgradePolicy", "zonalShiftConfig", "remoteNetworkConfig") if k in params}
        # Registered before anything is awaited: from now on every DescribeCluster says CREATING.
        record = ClusterRecord(name=name, region=region, status="CREATING", request=keep, info={},
                               ready_at=time.time() + self.clock.duration("eks_control_plane"))
        self.clusters[(region, name)] = record
        vpc_cfg = params.get("resourcesVpcConfig") or {}
        subnet_ids = list(vpc_cfg.get("subnetIds") or [])

        def describe() -> tuple[str, list[Subnet], str]:
            ec2 = self.clients.get("ec2", region)
            subnets: list[Subnet] = []
            vpc_id = ""
            if subnet_ids:
                for s in ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]:
                    vpc_id = s["VpcId"]
                    tags = {t["Key"]: t["Value"] for t in s.get("Tags") or []}
                    public = bool(s.get("MapPublicIpOnLaunch")) or "kubernetes.io/role/elb" in tags
                    subnets.append(Subnet(s["SubnetId"], s["AvailabilityZone"], s.get("AvailabilityZoneId", ""),
                                          s["CidrBlock"], public))
            sg_id = ""
            if vpc_id:
                sg_id = ec2.create_security_group(
                    GroupName=f"eks-cluster-sg-{name}-{abs(hash((name, time.time()))) % 10**10:010d}",
                    Description="EKS created security group applied to ENI that is attached to EKS Control Plane "
                                "master nodes, as well as any managed workloads.",
                    VpcId=vpc_id, TagSpecifications=[{"ResourceType": "security-group", "Tags": [
                        {"Key": "aws:eks:cluster-name", "Value": name},
                        {"Key": f"kubernetes.io/cluster/{name}", "Value": "owned"},
                        {"Key": "Name", "Value": f"eks-cluster-sg-{name}"}]}])["GroupId"]
            return vpc_id, subnets, sg_id
        vpc_id, subnets, sg_id = await asyncio.to_thread(describe)
        compute = params.get("computeConfig") or {}
        node_role = str(compute.get("nodeRoleArn") or "").rsplit("/", 1)[-1]
        info = ClusterInfo(name=name, region=region, version=str(cluster.get("version") or "1.34"), vpc_id=vpc_id,
                           subnets=subnets, cluster_security_group=sg_id, node_role=node_role,
                           node_pools=list(compute.get("nodePools") or []) if compute.get("enabled") else [],
                           auto_mode=bool(compute.get("enabled")))
        record.info = info.to_dict()
        self.mark_dirty()
        self._spawn(self._activate(record))

    async def _activate(self, record: ClusterRecord, fresh: bool = True) -> None:
        delay = max(0.0, record.ready_at - time.time())
        await asyncio.sleep(delay)
        if self.clusters.get((record.region, record.name)) is not record or record.status == "DELETING":
            return
        info = ClusterInfo.from_dict(record.info)
        directory = self.cluster_dir(record)
        sim = ClusterSim(info, self.clock, self.faults, ServiceBridge(self, record.region), directory)
        if not fresh:
            store_file = directory / "store.json"
            if store_file.exists():
                try:
                    sim.load(json.loads(store_file.read_text(encoding="utf-8")))
                except (OSError, ValueError):
                    log.exception("could not load %s; starting the cluster empty", store_file)
                    fresh = True
        record.port = await sim.start(port=record.port, fresh=fresh)
        record.sim = sim
        record.status = "ACTIVE"
        if fresh:
            for addon in record.addons:
                self._install_addon(record, addon)
        self.mark_dirty()
        log.info("cluster %s/%s ACTIVE at %s", record.region, record.name, sim.server.url)

    def overlay_cluster(self, region: str, cluster: dict[str, Any]) -> dict[str, Any]:
        """moto's cluster as EKS shows it: Auto Mode configs kept, our status and API endpoint."""
        record = self.cluster(region, cluster.get("name", ""))
        if record is None:
            # moto has made it and the hub has not seen it yet (a describe racing the create's answer):
            # EKS would say CREATING, without an endpoint; moto says ACTIVE with one that leads nowhere.
            out = dict(cluster)
            out["status"] = "CREATING"
            out.pop("endpoint", None)
            out.pop("certificateAuthority", None)
            return out
        out = dict(cluster)
        out.update(record.request)
        out["status"] = record.status
        info = record.info
        vpc = dict(out.get("resourcesVpcConfig") or {})
        if info.get("cluster_security_group"):
            vpc["clusterSecurityGroupId"] = info["cluster_security_group"]
        if info.get("vpc_id"):
            vpc["vpcId"] = info["vpc_id"]
        out["resourcesVpcConfig"] = vpc
        if record.status == "ACTIVE" and record.sim is not None:
            out["endpoint"] = record.sim.server.url
        else:
            out.pop("endpoint", None)
            if record.status == "CREATING":
                out.pop("certificateAuthority", None)
        out.setdefault("health", {"issues": []})
        out["platformVersion"] = out.get("platformVersion") or "eks.10"
        return out

    def cluster_deleting(self, region: str, name: str) -> None:
        record = self.cluster(region, name)
        if record is None:
            return
        record.status = "DELETING"
        self.mark_dirty()
        self._spawn(self._teardown(record))

    async def _teardown(self, record: ClusterRecord) -> None:
        """What EKS does when a cluster goes: Auto Mode terminates its instances, the control plane stops,
        the cluster security group is deleted."""
        sim = record.sim
        instance_ids: list[str] = []
        if sim is not None:
            for node in sim.store.list(sim.t("", "nodes")):
                provider = (node.get("spec") or {}).get("providerID", "")
                if provider:
                    instance_ids.append(provider.rsplit("/", 1)[-1])
            await sim.stop()
            record.sim = None
        bridge = ServiceBridge(self, record.region)

        def tagged() -> list[str]:
            ec2 = self.clients.get("ec2", record.region)
            out = ec2.describe_instances(Filters=[{"Name": "tag:eks:eks-cluster-name", "Values": [record.name]},
                                                  {"Name": "instance-state-name",
                                                   "Values": ["pending", "running", "stopping", "stopped"]}])
            return [i["InstanceId"] for r in out["Reservations"] for i in r["Instances"]]
        instance_ids = sorted(set(instance_ids) | set(await asyncio.to_thread(tagged)))
        await bridge.terminate_instances(instance_ids)
        sg = record.info.get("cluster_security_group")
        if sg:
            def delete_sg() -> None:
                try:
                    self.clients.get("ec2", record.region).delete_security_group(GroupId=sg)
                except Exception as err:
                    log.warning("cluster security group %s not deleted: %s", sg, err)
            await asyncio.to_thread(delete_sg)

    def cluster_deleted(self, region: str, name: str) -> None:
        record = self.clusters.pop((region, name), None)
        if record is not None:
            shutil.rmtree(self.directory / "clusters" / record.key, ignore_errors=True)
            self.mark_dirty()

    def addon_created(self, region: str, cluster: str, addon: str) -> None:
        record = self.cluster(region, cluster)
        if record is None:
            return
        if addon not in record.addons:
            record.addons.append(addon)
        self.mark_dirty()
        self._install_addon(record, addon)

    def _install_addon(self, record: ClusterRecord, addon: str) -> None:
        sim = record.sim
        if sim is None or addon != "aws-efs-csi-driver":
            return
        for obj in efs_csi_objects():
            rtype = sim.store.kind_type(obj["apiVersion"], obj["kind"])
            ns = obj["metadata"].get("namespace")
            if sim.store.get(rtype, ns, obj["metadata"]["name"]) is None:
                sim.store.create(rtype, ns, obj)

    def addon_deleted(self, region: str, cluster: str, addon: str) -> None:
        record = self.cluster(region, cluster)
        if record is None:
            return
        if addon in record.addons:
            record.addons.remove(addon)
        self.mark_dirty()
        sim = record.sim
        if sim is None or addon != "aws-efs-csi-driver":
            return
        for obj in efs_csi_objects():
            rtype = sim.store.kind_type(obj["apiVersion"], obj["kind"])
            ns = obj["metadata"].get("namespace")
            if sim.store.get(rtype, ns, obj["metadata"]["name"]) is not None:
                sim.store.delete(rtype, ns, obj["metadata"]["name"])

    def cluster_for_port(self, port: int) -> ClusterRecord | None:
        return next((r for r in self.clusters.values() if r.sim is not None and r.sim.server.port == port), None)

    # -------------------------------------------------------------------------------------- persistence

    def apply_op(self, op: str, args: dict[str, Any]) -> None:
        """A change moto has no API for, made to its backend directly (caller holds the moto lock)."""
        if op == "stack_status":
            cfn = self.moto.backend("cloudformation", args["region"])
            stack = next((s for s in cfn.stacks.values() if s.name == args["stack"]), None)
            if stack is not None:
                add_event = getattr(stack, "_add_stack_event", None)
                if add_event is not None:
                    try:
                        add_event(args["status"], resource_status_reason=args.get("reason") or None)
                    except TypeError:
                        pass
                if args["status"] == "DELETE_COMPLETE":
                    cfn.stacks.pop(stack.stack_id, None)
                    stack.status = "DELETE_COMPLETE"
                    cfn.deleted_stacks[stack.stack_id] = stack
                else:
                    stack.status = args["status"]

    def stack_status(self, region: str, name: str) -> str | None:
        with self.moto.lock:
            cfn = self.moto.backend("cloudformation", region)
            stack = next((s for s in cfn.stacks.values() if s.name == name or s.stack_id == name), None)
            return None if stack is None else str(stack.status)

    async def delete_stack(self, region: str, name: str, wait: bool, delay_real: float = 60.0) -> str | None:
        """CloudFormation DeleteStack: DELETE_IN_PROGRESS at once, resources deleted after `delay_real`
        (scaled), then DELETE_COMPLETE or DELETE_FAILED. Returns the failure when `wait`."""
        from .aws.stacks import teardown

        status = self.stack_status(region, name)
        if status is None or status in ("DELETE_COMPLETE", "DELETE_IN_PROGRESS"):
            return None
        stack_name = name
        with self.moto.lock:
            cfn = self.moto.backend("cloudformation", region)
            stack = next((s for s in cfn.stacks.values() if s.name == name or s.stack_id == name), None)
            if stack is not None:
                stack_name = stack.name
        self.set_stack_status(region, stack_name, "DELETE_IN_PROGRESS")

        async def run() -> str | None:
            await self.clock.sleep(delay_real)
            failure = await asyncio.to_thread(teardown, lambda svc: self.clients.get(svc, region), stack_name)
            if failure:
                self.set_stack_status(region, stack_name, "DELETE_FAILED", failure)
            else:
                self.set_stack_status(region, stack_name, "DELETE_COMPLETE")
            return failure
        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await task if wait else None

    def set_stack_status(self, region: str, stack: str, status: str, reason: str = "") -> None:
        args = {"region": region, "stack": stack, "status": status, "reason": reason}
        with self.moto.lock:
            self.apply_op("stack_status", args)
            self.moto.mutations += 1

    def _gaps_snapshot(self) -> dict[str, Any]:
        with self.gaps.lock:
            reservations = {region: [{
                "id": r.id, "instance_type": r.instance_type, "zone": r.zone, "total": r.total,
                "available": r.available, "state": r.state, "reservation_type": r.reservation_type,
                "start": _dt(r.start), "end": _dt(r.end), "end_date_type": r.end_date_type,
                "match_criteria": r.match_criteria, "tags": r.tags, "platform": r.platform, "tenancy": r.tenancy,
                "created": _dt(r.created), "zone_id": r.zone_id, "capacity_block_id": r.capacity_block_id}
                for r in items] for region, items in self.gaps.reservations.items()}
            addons = [{"region": region, "cluster": cluster, "name": a.name, "version": a.version,
                       "created": _dt(a.created), "status": a.status,
                       "service_account_role_arn": a.service_account_role_arn,
                       "configuration_values": a.configuration_values, "tags": a.tags,
                       "pod_identity_associations": a.pod_identity_associations}
                      for (region, cluster), by_name in self.gaps.addons.items() for a in by_name.values()]
        return {"reservations": reservations, "addons": addons}

    def _load_gaps(self, data: dict[str, Any]) -> None:
        with self.gaps.lock:
            if "reservations" in data:
                self.gaps.reservations = {region: [awsgaps.Reservation(**{
                    **r, "start": _parse_dt(r.get("start")), "end": _parse_dt(r.get("end")),
                    "created": _parse_dt(r.get("created"))}) for r in items]
                    for region, items in data["reservations"].items()}
            for a in data.get("addons") or []:
                addon = awsgaps.Addon(name=a["name"], cluster=a["cluster"], version=a["version"],
                                      created=_parse_dt(a.get("created")) or datetime.now(UTC),
                                      status=a.get("status", "ACTIVE"),
                                      service_account_role_arn=a.get("service_account_role_arn"),
                                      configuration_values=a.get("configuration_values"), tags=a.get("tags") or {},
                                      pod_identity_associations=a.get("pod_identity_associations") or [])
                self.gaps.addons.setdefault((a["region"], a["cluster"]), {})[a["name"]] = addon

    def save(self, aws: bool = True) -> None:
        state = {
            "version": 1, "saved": time.time(), "speed": self.clock.speed, "faults": self.faults.to_dict(),
            "clusters": [r.to_dict() for r in self.clusters.values()],
            "instance_reservations": self.instance_reservations,
            "gaps": self._gaps_snapshot(),
            "lifecycle": self.front.lifecycle_snapshot() if self.front is not None else {},
        }
        if aws:
            self.moto.save()
            self.aws_saved_at = time.monotonic()
        _write_json(self.directory / "state.json", state)
        for record in self.clusters.values():
            if record.sim is not None and (record.sim.store.dirty or not (self.cluster_dir(record) / "store.json")
                                           .exists()):
                _write_json(self.cluster_dir(record) / "store.json", record.sim.snapshot())
                record.sim.store.dirty = False
        self.dirty = False

    async def load(self) -> None:
        path = self.directory / "state.json"
        if not path.exists():
            return
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.exception("state.json unreadable; starting with an empty world")
            return
        saved_faults = state.get("faults") or {}
        self.faults.update({k: v for k, v in saved_faults.items()
                            if k in ("throttle", "drop-watch", "pending", "oom-download")})
        for target in saved_faults.get("fail-once") or []:
            self.faults.update({"fail-once": target})
        self.instance_reservations = dict(state.get("instance_reservations") or {})
        self._load_gaps(state.get("gaps") or {})
        if self.front is not None:
            self.front.load_lifecycle(state.get("lifecycle") or {})
        for data in state.get("clusters") or []:
            record = ClusterRecord(name=data["name"], region=data["region"], status=data["status"],
                                   request=data.get("request") or {}, info=data.get("info") or {},
                                   created=data.get("created", time.time()), ready_at=data.get("ready_at", 0.0),
                                   port=int(data.get("port") or 0), addons=list(data.get("addons") or []))
            self.clusters[(record.region, record.name)] = record
            if record.status == "DELETING":
                # the delayed DeleteCluster died with the old process: finish it now
                self._spawn(self._finish_delete(record))
            else:
                was_active = record.status == "ACTIVE"
                record.status = "CREATING"
                self._spawn(self._activate(record, fresh=not was_active))

    async def _finish_delete(self, record: ClusterRecord) -> None:
        """A DeleteCluster the old process had not finished: EKS completes it."""
        await self._teardown(record)

        def delete() -> None:
            with self.moto.lock:
                try:
                    self.moto.backend("eks", record.region).delete_cluster(record.name)
                except Exception:  # already gone from moto
                    pass
                self.moto.mutations += 1
        await asyncio.to_thread(delete)
        self.cluster_deleted(record.region, record.name)

    async def autosave(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                # AWS (moto's pickled backends, megabytes) at most every few seconds; the rest as it changes
                aws = self.moto.mutations != self.moto.saved_mutations and \
                    time.monotonic() - self.aws_saved_at > 3.0
                if aws or self.dirty or any(r.sim is not None and r.sim.store.dirty for r in self.clusters.values()):
                    await asyncio.to_thread(self.save, aws)
            except Exception:
                log.exception("saving the sandbox state")

    async def stop(self) -> None:
        for record in self.clusters.values():
            if record.sim is not None:
                await record.sim.stop()
        for task in list(self._tasks):
            task.cancel()
        self.save()


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)
