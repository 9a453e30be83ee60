"""The AWS front: every AWS call of the sandbox passes here (real HTTP from boto3, the AWS CLI, the fake
eksctl), and is answered by moto, by sandbox.awsgaps, or by this front where moto's behaviour differs from
AWS in ways the wizard must cope with."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from .. import awsgaps
from ..faults import Faults
from ..timings import SimClock
from .routes import Call, identify

if TYPE_CHECKING:
    from ..hub import Hub

log = logging.getLogger("sandbox.aws")
INTERNAL_HEADER = "X-Dynamo-Wizard-Sandbox-Internal"
ACCOUNT = "123456789012"

Response = tuple[int, dict[str, str], bytes]
# The shortest time an intermediate AWS state (EFS creating/deleting, EKS DELETING) lasts, whatever the speed:
# long enough for a client to see it once.
OBSERVABLE = 0.5


def _ec2_error(code: str, message: str, status: int = 400) -> Response:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>")
    return status, {"Content-Type": "text/xml;charset=UTF-8"}, body.encode()


def _query_error(code: str, message: str, status: int = 400) -> Response:
    body = (f'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
            "</ErrorResponse>")
    return status, {"Content-Type": "text/xml"}, body.encode()


def _rest_error(code: str, message: str, status: int = 400) -> Response:
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": code,
                    "x-amzn-RequestId": str(uuid.uuid4())}, json.dumps({"message": message, "Message": message,
                                                                         "ErrorCode": code}).encode()


def _json_error(code: str, message: str, status: int = 400) -> Response:
    return status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": str(uuid.uuid4())}, \
        json.dumps({"__type": code, "message": message}).encode()


def error_for(call: Call, code: str, message: str, status: int = 400) -> Response:
    if call.service == "ec2":
        return _ec2_error(code, message, status)
    if call.service in ("iam", "sts", "cloudformation", "autoscaling", "elb", "rds", "sns", "sqs"):
        return _query_error(code, message, status)
    if call.service in ("eks", "efs", "lambda"):
        return _rest_error(code, message, status)
    return _json_error(code, message, status)


def throttle_for(call: Call) -> Response:
    if call.service == "ec2":
        return _ec2_error("RequestLimitExceeded", "Request limit exceeded.", 503)
    if call.service in ("iam", "sts", "cloudformation"):
        return _query_error("Throttling", "Rate exceeded", 400)
    if call.service in ("eks", "efs"):
        return _rest_error("ThrottlingException", "Rate exceeded", 429)
    code = "TooManyRequestsException" if call.service == "service-quotas" else "ThrottlingException"
    return _json_error(code, "Rate exceeded", 400)


class MotoApp:
    """moto's WSGI app, called in-process, one call at a time. Its backends are saved to disk (pickled: ids,
    tags and states exactly as they were) so a restarted service finds the same AWS."""

    # the services the sandbox and the wizard use; their backends are what a restart must keep
    PERSISTED = ("ec2", "iam", "cloudformation", "eks", "efs", "sts")

    def __init__(self, snapshot: Path | None) -> None:
        self.lock = threading.RLock()  # re-entrant: a backend read may be what first brings moto up
        self.snapshot = snapshot
        self.mutations = 0
        self.saved_mutations = 0
        self.restored = False
        self._app: Any = None
        self._init_lock = threading.Lock()

    @property
    def app(self) -> Any:
        """moto's app, imported and restored from the snapshot on first use (the service answers its health
        URL before that: importing moto costs a second or more)."""
        if self._app is None:
            with self._init_lock:
                if self._app is None:
                    import werkzeug.test  # noqa: F401 - before moto, in this one thread (see `call`)
                    from moto.server import DomainDispatcherApplication, create_backend_app

                    app = DomainDispatcherApplication(create_backend_app)
                    self.restored = self.load()
                    self._app = app
        return self._app

    def call(self, method: str, url: str, headers: dict[str, str], body: bytes, mutating: bool) -> Response:
        # moto (and werkzeug with it) is imported once, under the init lock: two threads importing werkzeug's
        # modules at once (the warm-up and a first request) can see them half initialised.
        app = self.app
        from werkzeug.test import EnvironBuilder, run_wsgi_app

        split = urlsplit(url)
        builder = EnvironBuilder(path=split.path, method=method, query_string=split.query, headers=list(headers.items()),
                                 data=body, base_url="http://127.0.0.1")
        environ = builder.get_environ()
        with self.lock:
            if mutating:
                self.mutations += 1
            app_iter, status, resp_headers = run_wsgi_app(app, environ, buffered=True)
            try:
                payload = b"".join(app_iter)
            finally:
                close = getattr(app_iter, "close", None)
                if close:
                    close()
        return int(status.split()[0]), {k: v for k, v in resp_headers.items()
                                        if k.lower() not in ("content-length", "transfer-encoding", "connection",
                                                             "server", "date")}, payload

    def save(self) -> bool:
        """Write the backends (all at once, so references between services survive). True if written."""
        import os
        import pickle

        from moto.backends import get_backend

        if self.snapshot is None or self._app is None:
            return False
        with self.lock:
            if self.mutations == self.saved_mutations and (self.snapshot.exists() or self.mutations == 0):
                return False
            data = pickle.dumps({svc: get_backend(svc) for svc in self.PERSISTED},  # type: ignore[call-overload]
                                protocol=pickle.HIGHEST_PROTOCOL)
            self.saved_mutations = self.mutations
        tmp = self.snapshot.with_name(self.snapshot.name + f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(self.snapshot)
        return True

    def load(self) -> bool:
        import pickle

        from moto.backends import get_backend

        if self.snapshot is None or not self.snapshot.exists():
            return False
        try:
            saved = pickle.loads(self.snapshot.read_bytes())  # noqa: S301 - our own file, written above
        except Exception:
            log.exception("the saved AWS state in %s cannot be read; starting with a fresh AWS", self.snapshot)
            return False
        with self.lock:
            for svc, backends in saved.items():
                current = get_backend(svc)  # type: ignore[call-overload]
                current.clear()
                current.update(backends)
        return True

    def backend(self, service: str, region: str) -> Any:
        from moto.backends import get_backend

        _ = self.app  # restored before anything reads a backend
        return get_backend(service)[ACCOUNT][region]  # type: ignore[call-overload]


def live_enis(ec2: Any, filters: dict[str, list[str]]) -> list[Any]:
    """Network interfaces still in use (moto keeps those of terminated instances and deleted NAT gateways)."""
    gone = {getattr(getattr(n, "_eni", None), "id", None) for n in getattr(ec2, "nat_gateways", {}).values()
            if getattr(n, "state", "") == "deleted"}
    return [e for e in ec2.get_all_network_interfaces(filters=filters)
            if not (e.instance is not None and e.instance.state == "terminated") and e.id not in gone]


class AwsFront:
    def __init__(self, hub: Hub, moto: MotoApp, gaps: awsgaps.SandboxState, faults: Faults,
                 clock: SimClock) -> None:
        self.hub = hub
        self.moto = moto
        self.gaps = gaps
        self.faults = faults
        self.clock = clock
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="moto")
        # EFS lifecycle the way AWS shows it: id -> (created monotonic, real seconds until available)
        self.efs_created: dict[str, float] = {}
        self.mt_created: dict[str, float] = {}
        self.mt_deleting: dict[str, float] = {}
        self.calls = 0

    # -------------------------------------------------------------------------------------- plumbing

    async def moto_call(self, method: str, url: str, headers: dict[str, str], body: bytes, mutating: bool) -> Response:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self.moto.call, method, url, headers, body, mutating)

    async def backend_read(self, fn: Callable[[], Any]) -> Any:
        def locked() -> Any:
            with self.moto.lock:
                return fn()
        return await asyncio.get_running_loop().run_in_executor(self.pool, locked)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items()}
        url = str(request.rel_url)
        status, resp_headers, payload = await self.dispatch(request.method, url, headers, body)
        resp_headers.setdefault("x-amzn-RequestId", str(uuid.uuid4()))
        return web.Response(status=status, body=payload, headers=resp_headers)

    async def dispatch(self, method: str, url: str, headers: dict[str, str], body: bytes) -> Response:
        self.calls += 1
        call = identify(method, url, headers, body)
        internal = headers.pop(INTERNAL_HEADER, None) is not None or \
            headers.pop(INTERNAL_HEADER.lower(), None) is not None
        if call is None:
            return await self.moto_call(method, "http://127.0.0.1" + url, headers, body, method != "GET")
        if not internal:
            if self.faults.should_throttle():
                return throttle_for(call)
            if call.operation and self.faults.take_fail_once(call.operation, f"{call.service}:{call.operation}"):
                return error_for(call, "InternalFailure" if call.service not in ("ec2",) else "InternalError",
                                 f"injected sandbox fault: fail-once={call.operation}; the request was not "
                                 "processed — retry it", 500 if call.service == "ec2" else 400)
        pre = await self.before(call, method, url, headers, body)
        if pre is not None:
            return pre
        gap = None
        if call.operation:
            gap = await asyncio.get_running_loop().run_in_executor(
                self.pool, awsgaps.handle, self.gaps, call.service, call.operation, call.params, call.region)
        if gap is not None:
            status, resp_headers, payload = gap
            resp_headers = dict(resp_headers)
        else:
            status, resp_headers, payload = await self.moto_call(method, "http://127.0.0.1" + url, headers, body,
                                                                 call.mutating)
        return await self.after(call, status, resp_headers, payload)

    # -------------------------------------------------------------------------------------- before

    async def before(self, call: Call, method: str, url: str, headers: dict[str, str], body: bytes) -> Response | None:
        op, p, region = call.operation, call.params, call.region
        if call.service == "ec2" and op == "DeleteSecurityGroup":
            sg = p.get("GroupId")
            if sg:
                enis = await self.backend_read(lambda: live_enis(self.moto.backend("ec2", region), {"group-id": [sg]}))
                if enis:
                    return _ec2_error("DependencyViolation", f"resource {sg} has a dependent object")
        if call.service == "ec2" and op == "DeleteSubnet":
            sn = str(p.get("SubnetId", ""))
            enis = await self.backend_read(lambda: live_enis(self.moto.backend("ec2", region), {"subnet-id": [sn]}))
            if enis:
                return _ec2_error("DependencyViolation", f"The subnet '{sn}' has dependencies and cannot be deleted.")
        if call.service == "ec2" and op == "DeleteVpc":
            vpc = p.get("VpcId")

            def deps() -> bool:
                ec2 = self.moto.backend("ec2", region)
                subnets = ec2.describe_subnets(filters={"vpc-id": [vpc]})
                groups = [g for g in ec2.describe_security_groups(filters={"vpc-id": [vpc]})
                          if g.name != "default"]
                return bool(subnets or groups)
            if await self.backend_read(deps):
                return _ec2_error("DependencyViolation", f"The vpc '{vpc}' has dependencies and cannot be deleted.")
        if call.service == "efs" and op == "CreateMountTarget":
            fs = p.get("FileSystemId", "")
            if self._efs_state(fs) == "creating":
                return _rest_error("IncorrectFileSystemLifeCycleState", f"File system '{fs}' is in 'creating' "
                                   "state; wait until it is 'available'.", 409)
        if call.service == "efs" and op == "DeleteMountTarget":
            mt = p.get("MountTargetId", "")
            exists = await self.backend_read(lambda: mt in self.moto.backend("efs", region).mount_targets_by_id)
            if not exists:
                return _rest_error("MountTargetNotFound", f"Mount target '{mt}' does not exist.", 404)
            if mt not in self.mt_deleting:
                self.mt_deleting[mt] = time.monotonic()
                asyncio.get_running_loop().create_task(self._delete_later(
                    method, url, headers, body, self.clock.duration("efs_mt_delete", OBSERVABLE)))
            return 204, {}, b""
        if call.service == "cloudformation" and op == "DeleteStack":
            name = str(p.get("StackName", ""))
            await self.hub.delete_stack(region, name, wait=False)
            answer = ('<DeleteStackResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
                      f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
                      "</DeleteStackResponse>")
            return 200, {"Content-Type": "text/xml"}, answer.encode()
        if call.service == "eks" and op == "DeleteCluster":
            name = p.get("name", "")
            record = self.hub.cluster(region, name)
            if record is not None and record.status == "DELETING":
                return _rest_error("ResourceInUseException", f"Cluster {name} is being deleted.", 409)
            status, hdrs, payload = await self.moto_call("GET", f"http://127.0.0.1/clusters/{name}", headers, b"",
                                                         False)
            if status != 200:
                return status, hdrs, payload
            data = json.loads(payload)
            self.hub.cluster_deleting(region, name)
            asyncio.get_running_loop().create_task(self._delete_later(method, url, headers, body,
                                                                      max(self.clock.scaled(240), OBSERVABLE)))
            return 200, {"Content-Type": "application/json"}, json.dumps(
                {"cluster": self.hub.overlay_cluster(region, data["cluster"])}).encode()
        return None

    async def _delete_later(self, method: str, url: str, headers: dict[str, str], body: bytes, delay: float) -> None:
        await asyncio.sleep(delay)
        call = identify(method, url, headers, body)
        status, _, payload = await self.moto_call(method, "http://127.0.0.1" + url, headers, body, True)
        if call is not None and call.service == "eks":
            self.hub.cluster_deleted(call.region, call.params.get("name", ""))
        if call is not None and call.service == "efs":
            self.mt_deleting.pop(call.params.get("MountTargetId", ""), None)
        if status >= 300:
            log.warning("delayed %s %s answered %s: %s", method, url, status, payload[:200])

    # -------------------------------------------------------------------------------------- after

    def _efs_state(self, fs_id: str) -> str | None:
        created = self.efs_created.get(fs_id)
        if created is None:
            return None
        return "creating" if time.monotonic() - created < self.clock.duration("efs_fs_available", OBSERVABLE) \
            else "available"

    def _mt_state(self, mt_id: str) -> str | None:
        if mt_id in self.mt_deleting:
            return "deleting"
        created = self.mt_created.get(mt_id)
        if created is None:
            return None
        return "creating" if time.monotonic() - created < self.clock.duration("efs_mt_available", OBSERVABLE) \
            else "available"

    async def after(self, call: Call, status: int, headers: dict[str, str], payload: bytes) -> Response:
        op, region = call.operation, call.region
        if status >= 300:
            return status, headers, payload
        if call.service == "eks" and op in ("CreateCluster", "DescribeCluster"):
            data = json.loads(payload)
            if op == "CreateCluster":
                await self.hub.cluster_created(region, call.params, data["cluster"])
            data["cluster"] = self.hub.overlay_cluster(region, data["cluster"])
            return status, headers, json.dumps(data).encode()
        if call.service == "eks" and op == "CreateAddon":
            self.hub.addon_created(region, call.params.get("clusterName", ""), call.params.get("addonName", ""))
        if call.service == "eks" and op == "DeleteAddon":
            self.hub.addon_deleted(region, call.params.get("clusterName", ""), call.params.get("addonName", ""))
        if call.service == "efs" and op == "CreateFileSystem":
            data = json.loads(payload)
            self.efs_created.setdefault(data["FileSystemId"], time.monotonic())
            data["LifeCycleState"] = self._efs_state(data["FileSystemId"]) or data.get("LifeCycleState")
            self.hub.mark_dirty()
            return status, headers, json.dumps(data).encode()
        if call.service == "efs" and op == "DescribeFileSystems":
            data = json.loads(payload)
            for fs in data.get("FileSystems") or []:
                fs["LifeCycleState"] = self._efs_state(fs["FileSystemId"]) or fs.get("LifeCycleState")
            return status, headers, json.dumps(data).encode()
        if call.service == "efs" and op == "CreateMountTarget":
            data = json.loads(payload)
            self.mt_created.setdefault(data["MountTargetId"], time.monotonic())
            data["LifeCycleState"] = self._mt_state(data["MountTargetId"]) or data.get("LifeCycleState")
            return status, headers, json.dumps(data).encode()
        if call.service == "efs" and op == "DescribeMountTargets":
            data = json.loads(payload)
            for mt in data.get("MountTargets") or []:
                mt["LifeCycleState"] = self._mt_state(mt["MountTargetId"]) or mt.get("LifeCycleState")
            return status, headers, json.dumps(data).encode()
        return status, headers, payload

    # -------------------------------------------------------------------------------------- persistence

    def lifecycle_snapshot(self) -> dict[str, Any]:
        # stored as "seconds ago" so a restarted service keeps the remaining delays
        now = time.monotonic()
        return {"efs": {k: now - v for k, v in self.efs_created.items()},
                "mt": {k: now - v for k, v in self.mt_created.items()}}

    def load_lifecycle(self, data: dict[str, Any]) -> None:
        now = time.monotonic()
        self.efs_created = {k: now - float(v) for k, v in (data.get("efs") or {}).items()}
        self.mt_created = {k: now - float(v) for k, v in (data.get("mt") or {}).items()}
