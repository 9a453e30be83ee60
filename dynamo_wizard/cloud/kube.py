"""The cluster's API server through the real `kubernetes` client (sync; the runner calls it from threads).

- Access as eksctl's kubeconfig would give it, without a file: the endpoint and CA from EKS
  DescribeCluster and a bearer token from a presigned STS call (`cloud.eks_token`), refreshed as it ages.
  An `http://` endpoint (the sandbox) needs no CA.
- Objects are plain dicts in the API's JSON shape. Core-group kinds go through `CoreV1Api`, everything
  else through `CustomObjectsApi`; every call asks for the raw response (`_preload_content=False`) so
  no field is lost to the client's models and nothing depends on a fake server filling every field.
- `apply` creates, or merge-patches an existing object when the manifest differs from it (a patch that
  changes nothing is not sent, so immutable fields of an unchanged PVC or StorageClass never trip it).
- Label selectors are sent and also applied on the client: kmock ignores them.
- Watches reconnect after a dropped stream with a fresh list (`PodSink.relisted`), so a pod deleted while
  the stream was down does not linger.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from ..core.protocols import (
    ApplyResult,
    BackendError,
    Cancellation,
    Conflict,
    HttpReply,
    KubeAccess,
    NotAuthorized,
    PodSink,
    Unreachable,
)
from ..core.redact import redact

MERGE_PATCH = "application/merge-patch+json"
WATCH_SECONDS = 55  # server-side watch timeout; the stream is then re-opened with a fresh list
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0


# --------------------------------------------------------------------------------------------------
# Kinds


@dataclass(frozen=True)
class KindInfo:
    group: str  # "" for the core group
    version: str
    plural: str
    namespaced: bool
    snake: str = ""  # CoreV1Api method suffix for core kinds ("persistent_volume_claim")


_CORE: dict[str, KindInfo] = {
    "Namespace": KindInfo("", "v1", "namespaces", False, "namespace"),
    "Node": KindInfo("", "v1", "nodes", False, "node"),
    "PersistentVolume": KindInfo("", "v1", "persistentvolumes", False, "persistent_volume"),
    "PersistentVolumeClaim": KindInfo("", "v1", "persistentvolumeclaims", True, "persistent_volume_claim"),
    "Secret": KindInfo("", "v1", "secrets", True, "secret"),
    "ConfigMap": KindInfo("", "v1", "configmaps", True, "config_map"),
    "Service": KindInfo("", "v1", "services", True, "service"),
    "ServiceAccount": KindInfo("", "v1", "serviceaccounts", True, "service_account"),
    "Pod": KindInfo("", "v1", "pods", True, "pod"),
    "Event": KindInfo("", "v1", "events", True, "event"),
}
_OTHER_PLURALS: dict[str, tuple[str, bool]] = {
    "Deployment": ("deployments", True),
    "StatefulSet": ("statefulsets", True),
    "DaemonSet": ("daemonsets", True),
    "ReplicaSet": ("replicasets", True),
    "Job": ("jobs", True),
    "StorageClass": ("storageclasses", False),
    "CustomResourceDefinition": ("customresourcedefinitions", False),
    "NodePool": ("nodepools", False),
    "NodeClaim": ("nodeclaims", False),
    "NodeClass": ("nodeclasses", False),
    "DynamoGraphDeployment": ("dynamographdeployments", True),
    "DynamoComponentDeployment": ("dynamocomponentdeployments", True),
}


def kind_info(api_version: str, kind: str) -> KindInfo:
    group, _, version = api_version.rpartition("/")
    if not group:
        info = _CORE.get(kind)
        if info is None:
            raise BackendError(f"unknown core kind {kind!r}", "this is a bug in dynamo-wizard")
        return KindInfo("", version, info.plural, info.namespaced, info.snake)
    plural, namespaced = _OTHER_PLURALS.get(kind, (kind.lower() + "s", True))
    return KindInfo(group, version, plural, namespaced)


def _describe(kind: str, name: str | None, namespace: str | None) -> str:
    where = f" in {namespace}" if namespace else ""
    return f"{kind} {name}{where}" if name else f"{kind}s{where}"


def matches_labels(obj: Mapping[str, Any], labels: Mapping[str, str] | None) -> bool:
    if not labels:
        return True
    have = (obj.get("metadata") or {}).get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())


def is_subset(desired: Any, actual: Any) -> bool:
    """Whether `actual` already holds everything `desired` says (server defaults may add more)."""
    if isinstance(desired, Mapping):
        if not isinstance(actual, Mapping):
            return False
        return all(is_subset(v, actual.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(desired) != len(actual):
            return False
        return all(is_subset(d, a) for d, a in zip(desired, actual, strict=True))
    if isinstance(desired, (int, float)) and not isinstance(desired, bool) and isinstance(actual, str):
        return str(desired) == actual
    return bool(desired == actual)


# --------------------------------------------------------------------------------------------------
# Errors


def _api_message(err: ApiException) -> str:
    body = getattr(err, "body", None)
    if body:
        try:
            data = json.loads(body)
            if isinstance(data, dict) and data.get("message"):
                return str(data["message"])
        except (ValueError, TypeError):
            pass
    return str(getattr(err, "reason", "") or "")


def _translate(err: BaseException, what: str) -> BackendError:
    if isinstance(err, ApiException):
        status = int(err.status or 0)
        msg = redact(_api_message(err))[:300]
        if status in (401, 403):
            return NotAuthorized(
                f"the API server refused to {what} ({status}: {msg})",
                "check that this AWS identity has an EKS access entry on the cluster (the creator has one); "
                "a new cluster can take a minute to accept it", status=status)
        if status == 409:
            return Conflict(f"cannot {what}: it exists already ({msg})", status=status)
        if status == 0 or status >= 500:
            return Unreachable(f"the API server failed to {what} ({status or 'no answer'}: {msg})",
                               "the cluster may be busy or still starting; run the same command again to resume",
                               status=status)
        return BackendError(f"the API server refused to {what} ({status}: {msg})",
                            "check the object in the step's log", status=status)
    if isinstance(err, (urllib3.exceptions.HTTPError, OSError)):
        return Unreachable(f"could not reach the API server to {what}: {type(err).__name__}",
                           "check the network path to the cluster endpoint; run the same command again to resume")
    return BackendError(f"could not {what}: {redact(str(err))[:300]}")


def _read_json(resp: Any) -> Any:
    """The JSON body of a raw (not preloaded) response."""
    try:
        data = resp.read() or getattr(resp, "data", b"")
    finally:
        with contextlib.suppress(Exception):
            resp.release_conn()
    if not data:
        return None
    return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)


def _stopped(stop: Any) -> bool:
    is_set = getattr(stop, "is_set", None)
    if callable(is_set):
        return bool(is_set())
    return bool(getattr(stop, "cancelled", False))


# --------------------------------------------------------------------------------------------------
# Building a client


_ca_files: list[str] = []


def _remove_ca_files() -> None:
    for path in _ca_files:
        with contextlib.suppress(OSError):
            os.unlink(path)


atexit.register(_remove_ca_files)


def make_api_client(access: KubeAccess) -> client.ApiClient:
    """An ApiClient for `access`: bearer token refreshed on use, the cluster's CA unless the endpoint is http."""
    config = client.Configuration(host=access.endpoint.rstrip("/"))
    config.api_key = {"BearerToken": access.token()}
    config.api_key_prefix = {"BearerToken": "Bearer"}
    token = access.token

    def refresh(cfg: client.Configuration) -> None:
        cfg.api_key["BearerToken"] = token()

    config.refresh_api_key_hook = refresh  # type: ignore[assignment]
    config.connection_pool_maxsize = 32
    if access.endpoint.startswith("https://"):
        if access.ca_data:
            import base64

            fd, path = tempfile.mkstemp(prefix=f"dw-ca-{access.cluster}-", suffix=".pem")
            with os.fdopen(fd, "wb") as f:
                f.write(base64.b64decode(access.ca_data))
            _ca_files.append(path)
            config.ssl_ca_cert = path
        config.verify_ssl = True
    return client.ApiClient(config)


def api_client_for_cluster(cluster: Mapping[str, Any], region: str, session: Any = None) -> client.ApiClient:
    """An ApiClient from an EKS DescribeCluster `cluster` dict (what cleanup's discovery holds)."""
    from .eks_token import EksTokenSource

    name = str(cluster.get("name"))
    endpoint = cluster.get("endpoint")
    if not endpoint:
        raise Unreachable(f"cluster {name} has no API endpoint yet", "wait until the cluster is ACTIVE")
    ca = (cluster.get("certificateAuthority") or {}).get("data")
    access = KubeAccess(cluster=name, endpoint=str(endpoint), ca_data=ca,
                        token=EksTokenSource(name, region, session))
    return make_api_client(access)


# --------------------------------------------------------------------------------------------------
# The client


class KubeClient:
    """core.protocols.Kube over the kubernetes client."""

    def __init__(self, api_client: client.ApiClient, *, watch_seconds: int = WATCH_SECONDS,
                 read_timeout: float = READ_TIMEOUT) -> None:
        self.api = api_client
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.watch_seconds = watch_seconds
        self.read_timeout = read_timeout

    @classmethod
    def from_access(cls, access: KubeAccess) -> KubeClient:
        return cls(make_api_client(access))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.api.close()

    # -- low level -----------------------------------------------------------------------------------

    @property
    def _timeout(self) -> tuple[float, float]:
        return (CONNECT_TIMEOUT, self.read_timeout)

    def _core_call(self, verb: str, info: KindInfo, namespace: str | None, **kw: Any) -> Any:
        verb = "read" if verb == "get" else verb  # CoreV1Api says read_*, CustomObjectsApi get_*
        name = f"{verb}_namespaced_{info.snake}" if info.namespaced else f"{verb}_{info.snake}"
        method = getattr(self.core, name)
        args: list[Any] = []
        if "name" in kw:
            args.append(kw.pop("name"))
        if info.namespaced:
            args.append(namespace)
        return method(*args, _preload_content=False, _request_timeout=self._timeout, **kw)

    def _custom_call(self, verb: str, info: KindInfo, namespace: str | None, **kw: Any) -> Any:
        if info.namespaced:
            method = getattr(self.custom, f"{verb}_namespaced_custom_object")
            return method(info.group, info.version, namespace, info.plural, *_name_arg(kw),
                          _preload_content=False, _request_timeout=self._timeout, **kw)
        method = getattr(self.custom, f"{verb}_cluster_custom_object")
        return method(info.group, info.version, info.plural, *_name_arg(kw),
                      _preload_content=False, _request_timeout=self._timeout, **kw)

    def _call(self, verb: str, api_version: str, kind: str, namespace: str | None, **kw: Any) -> Any:
        info = kind_info(api_version, kind)
        if info.namespaced and not namespace:
            raise BackendError(f"{kind} needs a namespace", "this is a bug in dynamo-wizard")
        ns = namespace if info.namespaced else None
        if info.group == "":
            return _read_json(self._core_call(verb, info, ns, **kw))
        return _read_json(self._custom_call(verb, info, ns, **kw))

    def request(self, method: str, path: str, body: Any = None, *, timeout: float | None = None,
                headers: Mapping[str, str] | None = None) -> HttpReply:
        """Any API path (service proxy, /version), with the client's auth and TLS."""
        header_params = {"Accept": "application/json, */*"}
        if body is not None:
            header_params["Content-Type"] = "application/json"
        header_params.update(headers or {})
        params = self.api.param_serialize(method=method, resource_path=path, header_params=header_params,
                                          body=body, auth_settings=["BearerToken"])
        try:
            resp = self.api.call_api(*params, _request_timeout=(CONNECT_TIMEOUT, timeout or self.read_timeout))
            resp.read()
            data = resp.data or b""
            return HttpReply(int(resp.status), data.decode("utf-8", "replace"))
        except ApiException as err:
            return HttpReply(int(err.status or 0), str(getattr(err, "body", "") or err.reason or ""))
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise _translate(err, f"{method} {path}") from None

    # -- protocol ------------------------------------------------------------------------------------

    def server_version(self) -> str:
        reply = self.request("GET", "/version")
        if reply.status in (401, 403):
            raise NotAuthorized(f"the API server refused us ({reply.status})",
                                "check that this AWS identity has an EKS access entry on the cluster",
                                status=reply.status)
        if not reply.ok:
            raise Unreachable(f"the API server answered {reply.status} to /version", status=reply.status)
        try:
            return str(json.loads(reply.body).get("gitVersion", "unknown"))
        except (ValueError, AttributeError):
            return "unknown"

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            obj = self._call("get", api_version, kind, namespace, name=name)
        except ApiException as err:
            if err.status == 404:
                return None
            raise _translate(err, f"read {_describe(kind, name, namespace)}") from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise _translate(err, f"read {_describe(kind, name, namespace)}") from None
        return obj if isinstance(obj, dict) else None

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in (labels or {}).items()) or None
        info = kind_info(api_version, kind)
        try:
            if info.namespaced and not namespace:
                raw = self._list_all_namespaces(info, selector)
            else:
                raw = self._call("list", api_version, kind, namespace, label_selector=selector)
        except ApiException as err:
            if err.status == 404:
                return []  # the kind is not served (a CRD not installed yet)
            raise _translate(err, f"list {_describe(kind, None, namespace)}") from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise _translate(err, f"list {_describe(kind, None, namespace)}") from None
        items = (raw or {}).get("items") or []
        return [i for i in items if isinstance(i, dict) and matches_labels(i, labels)]

    def _list_all_namespaces(self, info: KindInfo, selector: str | None) -> Any:
        if info.group == "":
            method = getattr(self.core, f"list_{info.snake}_for_all_namespaces")
            return _read_json(method(label_selector=selector, _preload_content=False, _request_timeout=self._timeout))
        return _read_json(self.custom.list_cluster_custom_object(
            info.group, info.version, info.plural, label_selector=selector, _preload_content=False,
            _request_timeout=self._timeout))

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        api_version, kind, name, namespace = _identity(obj)
        body = _with_namespace(obj, namespace, kind_info(api_version, kind))
        try:
            created = self._call("create", api_version, kind, namespace, body=body)
        except ApiException as err:
            raise _translate(err, f"create {_describe(kind, name, namespace)}") from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise _translate(err, f"create {_describe(kind, name, namespace)}") from None
        if not isinstance(created, dict):  # some servers answer 200 with no body the client maps
            created = self.get(api_version, kind, name, namespace) or dict(body)
        return created

    def patch(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        api_version, kind, name, namespace = _identity(obj)
        body = _with_namespace(obj, namespace, kind_info(api_version, kind))
        try:
            patched = self._call("patch", api_version, kind, namespace, name=name, body=body,
                                 _content_type=MERGE_PATCH)
        except ApiException as err:
            raise _translate(err, f"update {_describe(kind, name, namespace)}") from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise _translate(err, f"update {_describe(kind, name, namespace)}") from None
        if not isinstance(patched, dict):
            patched = self.get(api_version, kind, name, namespace) or dict(body)
        return patched

    def patch_status(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Merge-patch the status subresource (test harnesses and fakes play controllers with it)."""
        api_version, kind, name, namespace = _identity(obj)
        info = kind_info(api_version, kind)
        body = {"status": obj.get("status", {})}
        try:
            if info.group == "":
                method_name = (f"patch_namespaced_{info.snake}_status" if info.namespaced
                               else f"patch_{info.snake}_status")
                args = [name, namespace] if info.namespaced else [name]
                raw = getattr(self.core, method_name)(*args, body, _content_type=MERGE_PATCH,
                                                      _preload_content=False, _request_timeout=self._timeout)
            elif info.namespaced:
                raw = self.custom.patch_namespaced_custom_object_status(
                    info.group, info.version, str(namespace), info.plural, name, body, _content_type=MERGE_PATCH,
                    _preload_content=False, _request_timeout=self._timeout)
            else:
                raw = self.custom.patch_cluster_custom_object_status(
                    info.group, info.version, info.plural, name, body, _content_type=MERGE_PATCH,
                    _preload_content=False, _request_timeout=self._timeout)
        except ApiException as err:
            raise _translate(err, f"update the status of {_describe(kind, name, namespace)}") from None
        result = _read_json(raw)
        return result if isinstance(result, dict) else {}

    def apply(self, obj: Mapping[str, Any]) -> ApplyResult:
        api_version, kind, name, namespace = _identity(obj)
        existing = self.get(api_version, kind, name, namespace)
        if existing is None:
            try:
                return ApplyResult("created", self.create(obj))
            except Conflict:
                existing = self.get(api_version, kind, name, namespace)
                if existing is None:
                    raise
        desired = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
        if is_subset(desired, existing):
            return ApplyResult("unchanged", existing)
        return ApplyResult("patched", self.patch(obj))

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
               wait: float | None = None, cancel: Cancellation | None = None,
               propagation: str = "Background") -> bool:
        what = _describe(kind, name, namespace)
        try:
            self._call("delete", api_version, kind, namespace, name=name, propagation_policy=propagation)
        except ApiException as err:
            if err.status == 404:
                return False
            raise _translate(err, f"delete {what}") from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise _translate(err, f"delete {what}") from None
        if wait:
            deadline = time.monotonic() + wait
            pause = 0.2
            while self.get(api_version, kind, name, namespace) is not None:
                if time.monotonic() > deadline:
                    raise BackendError(f"{what} was still there {wait:.0f} s after it was deleted",
                                       "something holds it (a finalizer); look at it with kubectl, then "
                                       "run the same command again")
                if cancel is not None:
                    if cancel.wait(pause):
                        return True
                else:
                    threading.Event().wait(pause)
                pause = min(2.0, pause * 1.5)
        return True

    def events_for(self, namespace: str, kind: str, name: str) -> builtins.list[dict[str, Any]]:
        try:
            raw = _read_json(self.core.list_namespaced_event(
                namespace, field_selector=f"involvedObject.name={name}", _preload_content=False,
                _request_timeout=self._timeout))
        except ApiException as err:
            if err.status == 404:
                return []
            raise _translate(err, f"list events of {kind} {name}") from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise _translate(err, f"list events of {kind} {name}") from None
        items = [e for e in (raw or {}).get("items") or []
                 if isinstance(e, dict) and (e.get("involvedObject") or {}).get("name") == name
                 and (e.get("involvedObject") or {}).get("kind") in (kind, None)]
        return sorted(items, key=event_time)

    def latest_event(self, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
        """The newest Event about an object (why a pod is Pending, why a claim does not bind)."""
        events = self.events_for(namespace, kind, name)
        return events[-1] if events else None

    def nodeclaims(self, nodepools: builtins.list[str] | None = None) -> builtins.list[dict[str, Any]]:
        """Auto Mode / Karpenter NodeClaims, optionally only those of some NodePools."""
        claims = self.list("karpenter.sh/v1", "NodeClaim")
        if nodepools is None:
            return claims
        return [c for c in claims if ((c.get("metadata") or {}).get("labels") or {}).get("karpenter.sh/nodepool")
                in nodepools]

    def read_log(self, namespace: str, pod: str, container: str | None = None,
                 tail_lines: int | None = None) -> str:
        kw: dict[str, Any] = {}
        if container:
            kw["container"] = container
        if tail_lines is not None:
            kw["tail_lines"] = tail_lines
        try:
            resp: Any = self.core.read_namespaced_pod_log(pod, namespace, _preload_content=False,
                                                          _request_timeout=self._timeout, **kw)
            data = resp.read()
            with contextlib.suppress(Exception):
                resp.release_conn()
        except ApiException as err:
            if err.status in (400, 404):
                return ""  # not started yet, or gone
            raise _translate(err, f"read the log of pod {pod}") from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise _translate(err, f"read the log of pod {pod}") from None
        return (data or b"").decode("utf-8", "replace")

    def follow_log(self, namespace: str, pod: str, container: str | None = None, *,
                   cancel: Cancellation | None = None) -> Iterator[str]:
        kw: dict[str, Any] = {"follow": True}
        if container:
            kw["container"] = container
        recent: list[str] = []  # lines seen lately, to drop the overlap after a reconnect
        while cancel is None or not cancel.cancelled:
            try:
                resp: Any = self.core.read_namespaced_pod_log(
                    pod, namespace, _preload_content=False, _request_timeout=(CONNECT_TIMEOUT, self.read_timeout), **kw)
            except ApiException as err:
                if err.status in (400, 404):
                    return  # the container is not running (yet, or any more)
                raise _translate(err, f"follow the log of pod {pod}") from None
            except (urllib3.exceptions.HTTPError, OSError) as err:
                raise _translate(err, f"follow the log of pod {pod}") from None
            replaying = bool(recent)
            pending = b""
            try:
                for chunk in resp.stream(4096, decode_content=False):
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for raw in lines:
                        line = raw.decode("utf-8", "replace").rstrip("\r")
                        if replaying and line in recent:
                            continue
                        replaying = False
                        recent.append(line)
                        del recent[:-200]
                        yield line
                    if cancel is not None and cancel.cancelled:
                        return
                if pending:
                    yield pending.decode("utf-8", "replace")
                return  # the server ended the stream: the container ended
            except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError):
                # Quiet for a while, or the stream dropped: reopen from a little before now.
                kw["since_seconds"] = int(self.read_timeout) + 5
                continue
            finally:
                # Closed, not just released: a half-read stream must not go back to the pool.
                with contextlib.suppress(Exception):
                    resp.close()
                    resp.release_conn()

    def watch_pods(self, namespace: str, sink: PodSink, stop: Any) -> None:
        """Pods and events of `namespace` into `sink`, until `stop` (a CancelToken or a threading.Event)."""
        open_streams: set[Any] = set()
        lock = threading.Lock()

        def close_on_stop() -> None:
            # A watch blocks in a read; closing its response is what ends it promptly.
            _wait(stop, None)
            with lock:
                streams = list(open_streams)
            for resp in streams:
                with contextlib.suppress(Exception):
                    resp.shutdown() if hasattr(resp, "shutdown") else resp.close()

        threading.Thread(target=close_on_stop, name=f"dw-watch-stop-{namespace}", daemon=True).start()
        events_thread = threading.Thread(target=self._watch_loop,
                                         args=("events", namespace, sink, stop, open_streams, lock),
                                         name=f"dw-watch-events-{namespace}", daemon=True)
        events_thread.start()
        self._watch_loop("pods", namespace, sink, stop, open_streams, lock)
        events_thread.join(timeout=2.0)

    def _watch_loop(self, what: str, namespace: str, sink: PodSink, stop: Any, open_streams: set[Any],
                    lock: threading.Lock) -> None:
        backoff = 0.5
        list_fn: Callable[..., Any] = (self.core.list_namespaced_pod if what == "pods"
                                       else self.core.list_namespaced_event)
        while not _stopped(stop):
            try:
                listed = _read_json(list_fn(namespace, _preload_content=False, _request_timeout=self._timeout))
                items = [i for i in (listed or {}).get("items") or [] if isinstance(i, dict)]
                if what == "pods":
                    sink.relisted(items)
                else:
                    for item in items:
                        sink.event_seen(item)
                resp = list_fn(namespace, watch=True, timeout_seconds=self.watch_seconds, _preload_content=False,
                               _request_timeout=(CONNECT_TIMEOUT, self.watch_seconds + 15))
                with lock:
                    open_streams.add(resp)
                if _stopped(stop):
                    break
                backoff = 0.5
                try:
                    for line in _lines(resp, stop):
                        try:
                            event = json.loads(line)
                        except ValueError:
                            continue
                        obj = event.get("object") if isinstance(event, dict) else None
                        if not isinstance(obj, dict) or event.get("type") == "ERROR":
                            break  # expired (410) or an error: relist
                        if what == "pods":
                            sink.pod_changed(str(event.get("type")), obj)
                        elif event.get("type") != "DELETED":
                            sink.event_seen(obj)
                finally:
                    with lock:
                        open_streams.discard(resp)
                    with contextlib.suppress(Exception):
                        resp.close()
                        resp.release_conn()
            except (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError, AttributeError):
                # Dropped, refused, or the cluster is not reachable yet: wait a little, then relist.
                _wait(stop, backoff)
                backoff = min(10.0, backoff * 2)

    def proxy(self, method: str, namespace: str, service: str, port: int, path: str,
              body: Mapping[str, Any] | None = None, timeout: float = 60.0) -> HttpReply:
        path = path.lstrip("/")
        resource = f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/{path}"
        return self.request(method, resource, dict(body) if body is not None else None, timeout=timeout)


def _wait(stop: Any, seconds: float | None) -> None:
    wait = getattr(stop, "wait", None)
    if callable(wait):
        wait(seconds)
    else:
        threading.Event().wait(seconds)


def _lines(resp: Any, stop: Any) -> Iterator[str]:
    pending = b""
    for chunk in resp.stream(65536, decode_content=False):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            if raw.strip():
                yield raw.decode("utf-8", "replace")
        if _stopped(stop):
            return
    if pending.strip():
        yield pending.decode("utf-8", "replace")


def _name_arg(kw: dict[str, Any]) -> list[Any]:
    return [kw.pop("name")] if "name" in kw else []


def _identity(obj: Mapping[str, Any]) -> tuple[str, str, str, str | None]:
    meta = obj.get("metadata") or {}
    api_version, kind, name = obj.get("apiVersion"), obj.get("kind"), meta.get("name")
    if not api_version or not kind or not name:
        raise BackendError("an object without apiVersion, kind or metadata.name", "this is a bug in dynamo-wizard")
    info = kind_info(str(api_version), str(kind))
    namespace = meta.get("namespace") if info.namespaced else None
    if info.namespaced and not namespace:
        raise BackendError(f"{kind} {name} has no namespace", "this is a bug in dynamo-wizard")
    return str(api_version), str(kind), str(name), namespace


def _with_namespace(obj: Mapping[str, Any], namespace: str | None, info: KindInfo) -> dict[str, Any]:
    body = dict(obj)
    if info.namespaced and namespace:
        meta = dict(body.get("metadata") or {})
        meta["namespace"] = namespace
        body["metadata"] = meta
    return body


def event_time(event: Mapping[str, Any]) -> str:
    """Sort key: the latest of an Event's time fields (ISO strings sort in time order)."""
    series = event.get("series") or {}
    meta = event.get("metadata") or {}
    return str(series.get("lastObservedTime") or event.get("lastTimestamp") or event.get("eventTime")
               or event.get("firstTimestamp") or meta.get("creationTimestamp") or "")
