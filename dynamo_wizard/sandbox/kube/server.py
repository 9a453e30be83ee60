"""HTTP front of one sandbox cluster's API server (aiohttp, 127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import unquote

import yaml
from aiohttp import web

from .errors import ApiError
from .logs import LogHub
from .resources import ResourceType, api_resource_list
from .selectors import fields_match, labels_match, parse_field_selector, parse_label_selector
from .store import Obj, Store
from .tables import table

log = logging.getLogger("sandbox.kube")

VERSION_INFO = {
    "major": "1", "minor": "34", "emulationMajor": "1", "emulationMinor": "34",
    "minCompatibilityMajor": "1", "minCompatibilityMinor": "33",
    "gitVersion": "v1.34.2-eks-b3126f4", "gitCommit": "a3aa9ba2e2d6a1e4d0a4bd1c5c5e8e2f7a1b9c3d",
    "gitTreeState": "clean", "buildDate": "2026-10-15T21:07:12Z", "goVersion": "go1.24.9",
    "compiler": "gc", "platform": "linux/amd64",
}

ProxyHandler = Callable[[str, str, str, str, str, bytes], Awaitable[tuple[int, str, bytes]]]


class KubeFaults(Protocol):
    def take_drop_watch(self) -> bool: ...

    def take_kube_failure(self, verb: str, plural: str) -> bool: ...


class NoFaults:
    def take_drop_watch(self) -> bool:
        return False

    def take_kube_failure(self, verb: str, plural: str) -> bool:
        return False


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


def _error(err: ApiError) -> web.Response:
    return _json(err.status(), err.code)


class Route:
    """A parsed resource URL."""

    def __init__(self, rtype: ResourceType, namespace: str | None, name: str | None, sub: str | None,
                 tail: str) -> None:
        self.rtype = rtype
        self.namespace = namespace
        self.name = name
        self.sub = sub
        self.tail = tail


class ApiServer:
    def __init__(self, store: Store, logs: LogHub, faults: KubeFaults | None = None,
                 proxy: ProxyHandler | None = None) -> None:
        self.store = store
        self.logs = logs
        self.faults = faults or NoFaults()
        self.proxy = proxy
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.closing = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> int:
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self.runner.setup()
        try:
            site = web.TCPSite(self.runner, "127.0.0.1", port, reuse_address=True)
            await site.start()
        except OSError:
            if port == 0:
                raise
            site = web.TCPSite(self.runner, "127.0.0.1", 0, reuse_address=True)
            await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        return self.port

    async def stop(self) -> None:
        self.closing = True
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    # ------------------------------------------------------------------------------------------ dispatch

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            # Any bearer token is accepted (sandbox contract §2). A request without one is let in too:
            # kubectl (client-go) never sends a token to an http:// server, and `sandbox env` promises kubectl.
            auth = request.headers.get("Authorization", "")
            if auth and not auth.lower().startswith("bearer "):
                raise ApiError(401, "Unauthorized", "Unauthorized")
            return await self._dispatch(request)
        except ApiError as err:
            return _error(err)
        except (ValueError, KeyError, TypeError) as err:
            log.exception("bad request %s %s", request.method, request.path)
            return _error(ApiError(400, "BadRequest", f"the server rejected our request: {err}"))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        if path in ("/version",):
            return _json(VERSION_INFO)
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if path == "/api":
            return _json({"kind": "APIVersions", "versions": ["v1"],
                          "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                          "serverAddress": f"127.0.0.1:{self.port}"}]})
        if path == "/apis":
            return _json(self._group_list())
        if path == "/":
            return _json({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/version"]})
        if parts and parts[0] in ("openapi", "swagger.json"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif parts and parts[0] == "apis" and len(parts) >= 2:
            group = parts[1]
            if len(parts) == 2:
                return _json(self._group(group))
            version, rest = parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            body = api_resource_list(self.store.registry, group, version)
            if body is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return _json(body)
        route = self._route(group, version, rest)
        verb = self._verb(request, route)
        if self.faults.take_kube_failure(verb, route.rtype.plural):
            raise ApiError(500, "InternalError", f"Internal error occurred: injected sandbox fault "
                           f"(fail-once=kube:{verb}:{route.rtype.plural})")
        return await self._serve(request, route, verb)

    def _group_list(self) -> Obj:
        groups = []
        for g, versions in sorted(self.store.registry.group_versions().items()):
            groups.append({"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in versions],
                           "preferredVersion": {"groupVersion": f"{g}/{versions[0]}", "version": versions[0]}})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def _group(self, group: str) -> Obj:
        versions = self.store.registry.group_versions().get(group)
        if not versions:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group,
                "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
                "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]}}

    def _route(self, group: str, version: str, rest: list[str]) -> Route:
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
            namespace, rest = rest[1], rest[2:]
        plural = rest[0]
        rtype = self.store.registry.lookup(group, version, plural)
        if rtype is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if namespace is not None and not rtype.namespaced:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        tail = "/".join(rest[3:])
        if sub is not None and sub not in rtype.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return Route(rtype, namespace, name, sub, tail)

    @staticmethod
    def _verb(request: web.Request, route: Route) -> str:
        m = request.method
        if m == "GET":
            if route.name is None:
                return "watch" if request.query.get("watch") in ("1", "true", "True") else "list"
            return "get"
        if m == "POST":
            return "create"
        if m == "PUT":
            return "update"
        if m == "PATCH":
            return "patch"
        if m == "DELETE":
            return "delete" if route.name is not None else "deletecollection"
        return m.lower()

    # ------------------------------------------------------------------------------------------ serving

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        if not raw:
            return None
        ctype = request.headers.get("Content-Type", "")
        try:
            if "yaml" in ctype:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as err:
            raise ApiError(400, "BadRequest", f"the body of the request could not be decoded: {err}") from None

    async def _serve(self, request: web.Request, route: Route, verb: str) -> web.StreamResponse:
        q = request.query
        st = self.store
        rtype = route.rtype
        dry_run = q.get("dryRun") == "All"
        if route.sub == "log":
            return await self._serve_log(request, route)
        if route.sub == "proxy":
            return await self._serve_proxy(request, route)
        if route.namespace is not None and verb in ("list", "watch", "create", "deletecollection"):
            ns_type = st.type_named("", "namespaces")
            if verb == "create" and st.get(ns_type, None, route.namespace) is None:
                raise ApiError(404, "NotFound", f'namespaces "{route.namespace}" not found',
                               {"name": route.namespace, "kind": "namespaces"})
        if verb == "get":
            assert route.name is not None
            obj = st.require(rtype, route.namespace, route.name)
            return self._object_response(request, rtype, obj)
        if verb == "list":
            objs = st.list(rtype, route.namespace, q.get("labelSelector"), q.get("fieldSelector"))
            if "as=Table" in request.headers.get("Accept", ""):
                return _json(table(rtype, objs, str(st.rv)))
            return _json({"kind": f"{rtype.kind}List", "apiVersion": rtype.api_version,
                          "metadata": {"resourceVersion": str(st.rv)},
                          "items": [self._versioned(rtype, o, route) for o in objs]})
        if verb == "watch":
            return await self._serve_watch(request, route)
        if verb == "create":
            body = await self._body(request)
            if route.name is not None and route.sub in ("eviction", "binding"):
                return await self._serve_eviction(route)
            obj = st.create(rtype, route.namespace, body or {}, dry_run=dry_run)
            return _json(obj, 201)
        if verb == "update":
            assert route.name is not None
            body = await self._body(request)
            obj = st.replace(rtype, route.namespace, route.name, body or {}, subresource=route.sub, dry_run=dry_run)
            return _json(obj)
        if verb == "patch":
            assert route.name is not None
            body = await self._body(request)
            ctype = request.headers.get("Content-Type", "")
            kind = ("apply" if "apply-patch" in ctype else "json" if "json-patch" in ctype
                    else "merge" if "merge-patch" in ctype else "strategic")
            existed = st.get(rtype, route.namespace, route.name) is not None
            obj = st.patch(rtype, route.namespace, route.name, body, kind, subresource=route.sub, dry_run=dry_run,
                           force=q.get("force") == "true")
            return _json(obj, 201 if kind == "apply" and not existed else 200)
        if verb == "delete":
            assert route.name is not None
            body = await self._body(request) or {}
            propagation = q.get("propagationPolicy") or body.get("propagationPolicy")
            grace_raw = q.get("gracePeriodSeconds", body.get("gracePeriodSeconds"))
            grace = int(grace_raw) if grace_raw is not None else None
            uid = ((body.get("preconditions") or {}).get("uid"))
            obj, gone = st.delete(rtype, route.namespace, route.name, propagation, grace, dry_run, uid)
            if gone and not st.returns_deleted_object(rtype):
                return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "details": {"name": route.name, "group": rtype.group, "kind": rtype.plural,
                                          "uid": obj["metadata"]["uid"]}})
            return _json(obj, 200 if gone else 202 if rtype.key != ("", "pods") else 200)
        if verb == "deletecollection":
            objs = st.list(rtype, route.namespace, q.get("labelSelector"), q.get("fieldSelector"))
            for o in objs:
                st.delete(rtype, o["metadata"].get("namespace"), o["metadata"]["name"],
                          q.get("propagationPolicy"), None, dry_run)
            return _json({"kind": f"{rtype.kind}List", "apiVersion": rtype.api_version,
                          "metadata": {"resourceVersion": str(st.rv)}, "items": objs})
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _versioned(self, rtype: ResourceType, obj: Obj, route: Route | None = None) -> Obj:
        return obj

    def _object_response(self, request: web.Request, rtype: ResourceType, obj: Obj) -> web.Response:
        if "as=Table" in request.headers.get("Accept", ""):
            return _json(table(rtype, [obj], obj["metadata"]["resourceVersion"]))
        return _json(obj)

    async def _serve_eviction(self, route: Route) -> web.Response:
        assert route.name is not None
        self.store.delete(route.rtype, route.namespace, route.name)
        return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)

    async def _serve_watch(self, request: web.Request, route: Route) -> web.StreamResponse:
        st = self.store
        q = request.query
        rtype = route.rtype
        lreqs = parse_label_selector(q.get("labelSelector"))
        freqs = parse_field_selector(q.get("fieldSelector"))
        name_filter = None
        for r in freqs:
            if r.path == ("metadata", "name") and r.equal:
                name_filter = r.value

        def matches(obj: Obj) -> bool:
            meta = obj.get("metadata") or {}
            if route.namespace is not None and meta.get("namespace") != route.namespace:
                return False
            if name_filter is not None and meta.get("name") != name_filter:
                return False
            return labels_match(lreqs, meta.get("labels")) and fields_match(freqs, obj)

        queue: asyncio.Queue[tuple[str, Obj]] = asyncio.Queue()

        def listener(kind: str, t: ResourceType, obj: Obj) -> None:
            if t.key == rtype.key and matches(obj):
                queue.put_nowait((kind, obj))

        rv_param = q.get("resourceVersion")
        initial: list[tuple[str, Obj]] = []
        expired = False
        if rv_param and rv_param != "0":
            try:
                since = int(rv_param)
            except ValueError:
                raise ApiError(400, "BadRequest", f"invalid resourceVersion {rv_param!r}") from None
            if st.history and since < st.history[0][0] - 1 and len(st.history) == st.history.maxlen:
                expired = True
            else:
                initial = [(k, o) for rv, k, key, o in st.history if rv > since and key == rtype.key and matches(o)]
        else:
            initial = [("ADDED", o) for o in st.list(rtype, route.namespace) if matches(o)]

        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                       "Transfer-Encoding": "chunked"})
        await resp.prepare(request)
        if expired:
            err = ApiError(410, "Expired", f"too old resource version: {rv_param} ({st.rv})")
            await resp.write(json.dumps({"type": "ERROR", "object": err.status()}).encode() + b"\n")
            return resp
        st.subscribe(listener)
        drop = self.faults.take_drop_watch()
        timeout = float(q.get("timeoutSeconds") or 1800)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (min(timeout, 0.3) if drop else timeout)
        try:
            for kind, obj in initial:
                await resp.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
            while not self.closing:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    kind, obj = await asyncio.wait_for(queue.get(), timeout=min(remaining, 5.0))
                except TimeoutError:
                    continue
                await resp.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
            if drop:
                # The connection breaks mid-stream, as when an API server restarts or a load balancer cuts it.
                transport = request.transport
                if transport is not None:
                    transport.abort()
                return resp
        except (ConnectionResetError, asyncio.CancelledError):
            return resp
        finally:
            st.unsubscribe(listener)
        try:
            await resp.write_eof()
        except ConnectionResetError:
            pass
        return resp

    async def _serve_log(self, request: web.Request, route: Route) -> web.StreamResponse:
        assert route.name is not None and route.namespace is not None
        pod = self.store.require(route.rtype, route.namespace, route.name)
        containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        q = request.query
        container = q.get("container")
        if not container:
            if len(containers) != 1:
                raise ApiError(400, "BadRequest", f"a container name must be specified for pod {route.name}, "
                               f"choose one of: [{' '.join(containers)}]")
            container = containers[0]
        if container not in containers:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {route.name}")
        statuses = {c.get("name"): c for c in (pod.get("status") or {}).get("containerStatuses") or []}
        state = (statuses.get(container) or {}).get("state") or {}
        if not self.logs.has(route.namespace, route.name, container) and ("running" not in state and
                                                                          "terminated" not in state):
            reason = (state.get("waiting") or {}).get("reason") or "ContainerCreating"
            raise ApiError(400, "BadRequest", f'container "{container}" in pod "{route.name}" is waiting to start: '
                           f"{reason}")
        clog = self.logs.get(route.namespace, route.name, container)
        follow = q.get("follow") in ("true", "1", "True")
        timestamps = q.get("timestamps") in ("true", "1", "True")
        tail = int(q["tailLines"]) if q.get("tailLines") else None
        since = int(q["sinceSeconds"]) if q.get("sinceSeconds") else None
        lines = list(clog.lines)
        if since is not None:
            cutoff = datetime.now(UTC) - timedelta(seconds=since)
            lines = [ln for ln in lines if ln[0] >= cutoff]
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []

        def fmt(item: tuple[datetime, str]) -> bytes:
            when, text = item
            prefix = when.strftime("%Y-%m-%dT%H:%M:%S.%f000Z ") if timestamps else ""
            return (prefix + text + "\n").encode()

        if not follow:
            return web.Response(body=b"".join(fmt(ln) for ln in lines), content_type="text/plain")
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain",
                                                       "Transfer-Encoding": "chunked"})
        await resp.prepare(request)
        sent_upto = len(clog.lines)
        try:
            if lines:
                await resp.write(b"".join(fmt(ln) for ln in lines))
            while not self.closing:
                if len(clog.lines) > sent_upto:
                    new = clog.lines[sent_upto:]
                    sent_upto = len(clog.lines)
                    await resp.write(b"".join(fmt(ln) for ln in new))
                    continue
                if clog.closed or self.store.get(route.rtype, route.namespace, route.name) is None:
                    break
                waiter = clog.changed
                try:
                    await asyncio.wait_for(waiter.wait(), timeout=2.0)
                except TimeoutError:
                    continue
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp

    async def _serve_proxy(self, request: web.Request, route: Route) -> web.StreamResponse:
        assert route.name is not None and route.namespace is not None
        if route.rtype.key != ("", "services") or self.proxy is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name, _, port = route.name.partition(":")
        svc = self.store.get(route.rtype, route.namespace, name)
        if svc is None:
            raise ApiError(404, "NotFound", f'services "{name}" not found', {"name": name, "kind": "services"})
        body = await request.read()
        target = "/" + (route.tail or request.query.get("path", "").lstrip("/"))
        status, ctype, payload = await self.proxy(route.namespace, name, port, target, request.method, body)
        return web.Response(status=status, body=payload, headers={"Content-Type": ctype})
