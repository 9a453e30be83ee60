"""The Dynamo operator (DynamoGraphDeployment → Deployments, Services, status) and the Dynamo frontend's
OpenAI-compatible answers behind the API server's service proxy."""

from __future__ import annotations

import copy
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from ..kube.store import Obj
from .base import SimBase
from .pods import command_text, parse_worker
from .workloads import owned_by, owner_ref, pod_ready, set_condition

DGD = ("nvidia.com", "dynamographdeployments")
FINALIZER = "nvidia.com/finalizer"
L_GRAPH = "nvidia.com/dynamo-graph-deployment-name"
L_COMPONENT = "nvidia.com/dynamo-component"
L_TYPE = "nvidia.com/dynamo-component-type"
L_SUBTYPE = "nvidia.com/dynamo-sub-component-type"
L_NAMESPACE = "nvidia.com/dynamo-namespace"


def _services(dgd: Obj) -> dict[str, dict[str, Any]]:
    """Component name -> v1alpha1-shaped service spec (v1beta1 `components` are mapped onto it)."""
    spec = dgd.get("spec") or {}
    if isinstance(spec.get("services"), dict):
        return {k: v or {} for k, v in spec["services"].items()}
    out: dict[str, dict[str, Any]] = {}
    for comp in spec.get("components") or []:
        pod_spec = copy.deepcopy(((comp.get("podTemplate") or {}).get("spec")) or {})
        containers = pod_spec.pop("containers", []) or []
        main = next((c for c in containers if c.get("name") == "main"), containers[0] if containers else {})
        ctype = comp.get("type", "worker")
        out[comp.get("name", "worker")] = {
            "componentType": "frontend" if ctype == "frontend" else "worker",
            "subComponentType": ctype if ctype in ("prefill", "decode") else None,
            "replicas": comp.get("replicas", 1), "extraPodSpec": {**pod_spec, "mainContainer": main},
            "resources": {"_container": main.get("resources") or {}},
            "compilationCache": comp.get("compilationCache"),
        }
    return out


def _resources(svc: dict[str, Any]) -> dict[str, Any]:
    res = svc.get("resources") or {}
    if "_container" in res:
        return copy.deepcopy(res["_container"])
    out: dict[str, Any] = {}
    for kind in ("requests", "limits"):
        src = res.get(kind) or {}
        dst: dict[str, Any] = {}
        for key in ("cpu", "memory"):
            if src.get(key):
                dst[key] = str(src[key])
        if src.get("gpu"):
            dst["nvidia.com/gpu"] = str(src["gpu"])
        for k, v in (src.get("custom") or {}).items():
            dst[k] = str(v)
        if dst:
            out[kind] = dst
    return out


def _update_spec(fields: dict[str, Any]) -> Callable[[Obj], None]:
    def apply(o: Obj) -> None:
        o["spec"].update(copy.deepcopy(fields))
    return apply


class DynamoMixin(SimBase):
    def operator_running(self) -> bool:
        for dep in self.store.list(self.t("apps", "deployments")):
            if dep["metadata"]["name"].endswith("dynamo-operator-controller-manager") and \
                    int((dep.get("status") or {}).get("readyReplicas", 0)) > 0:
                return True
        return False

    def reconcile_dgd(self, ns: str, name: str) -> None:
        rtype = self.store.registry.by_key(DGD)
        if rtype is None:
            return
        dgd = self.store.get(rtype, ns, name)
        if dgd is None or not self.operator_running():
            return
        meta = dgd["metadata"]
        if meta.get("deletionTimestamp"):
            dep_t, svc_t = self.t("apps", "deployments"), self.t("", "services")
            for t in (dep_t, svc_t):
                for obj in self.store.list(t, ns):
                    if owned_by(obj, dgd):
                        self.store.delete(t, ns, obj["metadata"]["name"])
            self.store.mutate(rtype, ns, name, lambda o: o["metadata"].__setitem__(
                "finalizers", [f for f in o["metadata"].get("finalizers") or [] if f != FINALIZER]))
            return
        if FINALIZER not in (meta.get("finalizers") or []):
            dgd = self.store.mutate(rtype, ns, name, lambda o: o["metadata"].setdefault("finalizers", []).append(
                FINALIZER)) or dgd
        services = _services(dgd)
        dep_t, svc_t = self.t("apps", "deployments"), self.t("", "services")
        wanted: set[str] = set()
        statuses: dict[str, Any] = {}
        for comp, svc in services.items():
            dep_name, pod_tmpl = self._component_deployment(dgd, comp, svc)
            wanted.add(dep_name)
            replicas = int(svc.get("replicas", 1) if svc.get("replicas") is not None else 1)
            body = {"metadata": {"name": dep_name, "labels": {L_GRAPH: name, L_COMPONENT: comp,
                                                              "app.kubernetes.io/managed-by": "dynamo-operator"},
                                 "ownerReferences": [owner_ref(dgd)]},
                    "spec": {"replicas": replicas,
                             "selector": {"matchLabels": {L_GRAPH: name, L_COMPONENT: comp}},
                             "template": pod_tmpl}}
            cur = self.store.get(dep_t, ns, dep_name)
            if cur is None:
                self.store.create(dep_t, ns, body)
                self.events.emit(dgd, "Normal", "CreatedDeployment", f"Created Deployment {dep_name}",
                                 "dynamo-operator")
            elif cur["spec"].get("template") != pod_tmpl or cur["spec"].get("replicas") != replicas:
                self.store.mutate(dep_t, ns, dep_name, _update_spec({"template": pod_tmpl, "replicas": replicas}))
            if (svc.get("componentType") or "").lower() == "frontend":
                svc_name = f"{name}-{comp.lower()}"
                if self.store.get(svc_t, ns, svc_name) is None:
                    self.store.create(svc_t, ns, {
                        "metadata": {"name": svc_name, "labels": {L_GRAPH: name, L_COMPONENT: comp},
                                     "ownerReferences": [owner_ref(dgd)]},
                        "spec": {"type": "ClusterIP", "selector": {L_GRAPH: name, L_COMPONENT: comp},
                                 "ports": [{"name": "http", "port": 8000, "targetPort": 8000, "protocol": "TCP"}]}})
            dep = self.store.get(dep_t, ns, dep_name) or {}
            st = dep.get("status") or {}
            statuses[comp] = {"componentKind": "Deployment", "componentName": dep_name, "replicas": replicas,
                              "updatedReplicas": int(st.get("updatedReplicas", 0)),
                              "readyReplicas": int(st.get("readyReplicas", 0)),
                              "availableReplicas": int(st.get("availableReplicas", 0))}
        for dep in self.store.list(dep_t, ns):
            if owned_by(dep, dgd) and dep["metadata"]["name"] not in wanted:
                self.store.delete(dep_t, ns, dep["metadata"]["name"])
        not_ready = [c for c, s in statuses.items() if s["readyReplicas"] < s["replicas"]]
        cur = self.store.get(rtype, ns, name) or dgd
        status = copy.deepcopy(cur.get("status") or {})
        conds = status.get("conditions") or []
        if not_ready:
            conds = set_condition(conds, "Ready", "False", "some_resources_are_not_ready",
                                  f"Resources not ready: {', '.join(sorted(not_ready))}")
            state = "pending"
        else:
            conds = set_condition(conds, "Ready", "True", "all_resources_are_ready", "All resources are ready")
            state = "successful"
        status.update({"state": state, "conditions": conds, "services": statuses,
                       "observedGeneration": cur["metadata"].get("generation", 1)})
        if status != cur.get("status"):
            self.store.update_status(rtype, cur, status)
            if state == "successful" and (cur.get("status") or {}).get("state") != "successful":
                self.events.emit(cur, "Normal", "Ready", "All resources are ready", "dynamo-operator")

    def _component_deployment(self, dgd: Obj, comp: str, svc: dict[str, Any]) -> tuple[str, Obj]:
        name = dgd["metadata"]["name"]
        spec = dgd.get("spec") or {}
        ctype = (svc.get("componentType") or "worker").lower()
        extra = copy.deepcopy(svc.get("extraPodSpec") or {})
        main = extra.pop("mainContainer", None) or {}
        env = [{"name": "DYN_NAMESPACE", "value": f"{dgd['metadata']['namespace']}-{name}"},
               {"name": "DYN_PARENT_DGD_K8S_NAME", "value": name},
               {"name": "DYN_SYSTEM_PORT", "value": "9090"}]
        for e in (spec.get("envs") or []) + (svc.get("envs") or []):
            env.append(copy.deepcopy(e))
        env.extend(copy.deepcopy(main.get("env") or []))
        container: dict[str, Any] = {"name": "main", "image": main.get("image") or
                                     ("nvcr.io/nvidia/ai-dynamo/dynamo-frontend:1.0.0" if ctype == "frontend" else
                                      "nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.0.0"),
                                     "env": env, "resources": _resources(svc)}
        for key in ("command", "args", "workingDir", "securityContext", "ports", "volumeMounts"):
            if main.get(key) is not None:
                container[key] = copy.deepcopy(main[key])
        if not container.get("command") and not container.get("args"):
            container["command"] = ["python3", "-m", "dynamo.frontend" if ctype == "frontend" else "dynamo.vllm"]
        if svc.get("envFromSecret"):
            container["envFrom"] = [{"secretRef": {"name": svc["envFromSecret"]}}]
        if ctype == "frontend":
            container.setdefault("ports", [{"name": "http", "containerPort": 8000, "protocol": "TCP"}])
            container["readinessProbe"] = {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10}
        else:
            container.setdefault("ports", [{"name": "system", "containerPort": 9090, "protocol": "TCP"}])
            container["startupProbe"] = {"httpGet": {"path": "/live", "port": "system"}, "periodSeconds": 10,
                                         "failureThreshold": 720}
        volumes: list[dict[str, Any]] = []
        mounts = list(container.get("volumeMounts") or [])
        for vm in svc.get("volumeMounts") or []:
            vname = vm.get("name")
            if not vname:
                continue
            volumes.append({"name": vname, "persistentVolumeClaim": {"claimName": vname}})
            mounts.append({"name": vname, "mountPath": vm.get("mountPoint") or vm.get("mountPath") or f"/{vname}"})
        cache = svc.get("compilationCache") or {}
        if cache.get("pvcName"):
            volumes.append({"name": cache["pvcName"], "persistentVolumeClaim": {"claimName": cache["pvcName"]}})
            mounts.append({"name": cache["pvcName"], "mountPath": cache.get("mountPath", "/root/.cache/vllm")})
        if mounts:
            container["volumeMounts"] = mounts
        volumes.append({"name": "shared-memory", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}})
        container.setdefault("volumeMounts", []).append({"name": "shared-memory", "mountPath": "/dev/shm"})
        labels = {L_GRAPH: name, L_COMPONENT: comp, L_TYPE: ctype,
                  L_NAMESPACE: f"{dgd['metadata']['namespace']}-{name}"}
        if svc.get("subComponentType"):
            labels[L_SUBTYPE] = str(svc["subComponentType"])
        pod_spec: dict[str, Any] = {"containers": [container], "volumes": volumes,
                                    "terminationGracePeriodSeconds": 60}
        for key, value in extra.items():
            if key in ("containers", "volumes"):
                continue
            pod_spec[key] = copy.deepcopy(value)
        if ctype == "frontend":
            dep_name = f"{name}-{comp.lower()}"
        else:
            digest = hashlib.sha256(json.dumps(container, sort_keys=True).encode()).hexdigest()[:8]
            dep_name = f"{name}-{comp.lower()}-{digest}"
        return dep_name, {"metadata": {"labels": labels}, "spec": pod_spec}

    def after_workload_status(self, obj: Obj) -> None:
        owner = next((r for r in obj["metadata"].get("ownerReferences") or []
                      if r.get("kind") == "DynamoGraphDeployment"), None)
        if owner:
            self.enqueue(DGD, obj["metadata"]["namespace"], owner["name"])
        if obj["metadata"]["name"].endswith("dynamo-operator-controller-manager"):
            for rtype, dgd in self.store.all_objects():
                if rtype.key == DGD:
                    self.enqueue(DGD, dgd["metadata"]["namespace"], dgd["metadata"]["name"])
        if obj["metadata"]["name"] == "efs-csi-controller":
            self.kick("pvc")

    # ---------------------------------------------------------------------------------- frontend answers

    def models_for(self, frontend_pod: Obj) -> list[str]:
        graph = (frontend_pod["metadata"].get("labels") or {}).get(L_GRAPH)
        if not graph:
            return []
        models: list[str] = []
        for p in self.store.list(self.t("", "pods"), frontend_pod["metadata"]["namespace"]):
            labels = p["metadata"].get("labels") or {}
            if labels.get(L_GRAPH) != graph or labels.get(L_TYPE) != "worker" or not pod_ready(p):
                continue
            if labels.get(L_SUBTYPE) == "prefill":
                continue  # prefill workers do not register a model with the frontend
            for c in p["spec"].get("containers") or []:
                served = parse_worker(command_text(c), c)["served"]
                if served not in models:
                    models.append(served)
        return models

    async def proxy(self, ns: str, svc_name: str, port: str, path: str, method: str,
                    body: bytes) -> tuple[int, str, bytes]:
        from ..kube.selectors import labels_match, selector_from_label_selector

        svc = self.store.get(self.t("", "services"), ns, svc_name)
        assert svc is not None
        selector = (svc.get("spec") or {}).get("selector") or {}
        reqs = selector_from_label_selector({"matchLabels": selector})
        pods = [p for p in self.store.list(self.t("", "pods"), ns)
                if selector and labels_match(reqs, p["metadata"].get("labels")) and pod_ready(p)]
        ports = [p for p in (svc.get("spec") or {}).get("ports") or []]
        if port and not any(str(p.get("port")) == port or p.get("name") == port for p in ports):
            return self._status(503, "ServiceUnavailable", f'no endpoints available for service "{svc_name}:{port}"')
        if not pods:
            return self._status(503, "ServiceUnavailable", f'no endpoints available for service "{svc_name}"')
        frontend = next((p for p in pods if (p["metadata"].get("labels") or {}).get(L_TYPE) == "frontend"), None)
        if frontend is None:
            ip = (pods[0].get("status") or {}).get("podIP", "")
            target = ports[0].get("targetPort", ports[0].get("port")) if ports else 80
            return self._status(503, "ServiceUnavailable", f"error trying to reach service: dial tcp {ip}:{target}: "
                                "connect: connection refused")
        models = self.models_for(frontend)
        path = path.split("?", 1)[0]
        if path in ("/health", "/live"):
            return 200, "application/json", json.dumps({
                "status": "healthy" if models else "unhealthy", "endpoints": [f"dyn://{ns}-x.backend.generate"]
                if models else [], "instances": []}).encode()
        if path == "/v1/models" and method == "GET":
            created = int(time.time())
            return 200, "application/json", json.dumps({"object": "list", "data": [
                {"id": m, "object": "model", "created": created, "owned_by": "nvidia"} for m in models]}).encode()
        if path in ("/v1/chat/completions", "/v1/completions") and method == "POST":
            try:
                req = json.loads(body or b"{}")
            except ValueError:
                return self._openai_error(400, "Invalid JSON body", "invalid_request_error")
            model = req.get("model")
            if not model:
                return self._openai_error(400, "missing field `model`", "invalid_request_error")
            if model not in models:
                return self._openai_error(404, f"Model not found: {model}", "model_not_found")
            max_tokens = int(req.get("max_tokens") or req.get("max_completion_tokens") or 64)
            words = ("Hello! I'm running on NVIDIA Dynamo in the dynamo-wizard sandbox. Prefill and decode "
                     "workers share the KV cache through NIXL, and the frontend routes each request to a worker "
                     "that already holds the matching prefix. Ask me anything you like.").split()
            text = " ".join(words[:max(1, min(max_tokens, len(words)))])
            finish = "length" if max_tokens < len(words) else "stop"
            prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in req.get("messages") or []) + 9
            completion_tokens = min(max_tokens, len(words))
            rid = f"chatcmpl-{uuid.uuid4()}"
            created = int(time.time())
            if req.get("stream"):
                chunks = []
                for i, w in enumerate(text.split()):
                    chunks.append({"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                                   "choices": [{"index": 0, "delta": {"role": "assistant", "content": w + " "}
                                                if i == 0 else {"content": w + " "}, "finish_reason": None}]})
                chunks.append({"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                               "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
                payload = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
                return 200, "text/event-stream", payload.encode()
            if path == "/v1/completions":
                return 200, "application/json", json.dumps({
                    "id": rid, "object": "text_completion", "created": created, "model": model,
                    "choices": [{"index": 0, "text": text, "finish_reason": finish}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                              "total_tokens": prompt_tokens + completion_tokens}}).encode()
            return 200, "application/json", json.dumps({
                "id": rid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": finish, "logprobs": None}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}).encode()
        if path == "/metrics":
            return 200, "text/plain", b"# HELP dynamo_frontend_requests_total Total requests\n" \
                                      b"# TYPE dynamo_frontend_requests_total counter\n" \
                                      b"dynamo_frontend_requests_total 0\n"
        return 404, "application/json", json.dumps({"error": {"message": f"Not Found: {path}",
                                                              "type": "not_found"}}).encode()

    @staticmethod
    def _status(code: int, reason: str, message: str) -> tuple[int, str, bytes]:
        return code, "application/json", json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                                     "status": "Failure", "message": message, "reason": reason,
                                                     "code": code}).encode()

    @staticmethod
    def _openai_error(code: int, message: str, kind: str) -> tuple[int, str, bytes]:
        return code, "application/json", json.dumps({"error": {"message": message, "type": kind,
                                                                "code": code}}).encode()


__all__ = ["DynamoMixin", "DGD"]
