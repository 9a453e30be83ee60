"""`helm` inside the sandbox: installs the Dynamo platform's objects into a sandbox cluster (CRDs, the
operator Deployment, NATS with its JetStream volume claim, helm's release Secret), uninstalls them, and
answers status/list — with helm 3's output (tool-output-and-timings.md §2)."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import yaml

from ...core.catalog import load_catalog
from ..kube.errors import ApiError
from ..kube.store import Obj, Store
from . import kubeconfig
from .base import ToolContext, ToolExit
from .versions import HELM_COMMIT as COMMIT
from .versions import HELM_VERSION as VERSION

NOTES = """# SPDX-FileCopyrightText: Copyright (c) 2025 NVIDIA CORPORATION & AFFILIATES. All rights reserved.
# SPDX-License-Identifier: Apache-2.0
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
# http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License."""

_BOOL_FLAGS = {"install", "create-namespace", "wait", "wait-for-jobs", "atomic", "debug", "devel", "reuse-values",
               "reset-values", "all-namespaces", "A", "short", "dry-run", "keep-history", "help", "h", "no-hooks",
               "skip-crds", "force"}
_MULTI = {"values", "set", "set-string", "set-json", "set-file"}


def _parse(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    pos: list[str] = []
    flags: dict[str, Any] = {}
    aliases = {"n": "namespace", "f": "values", "o": "output", "i": "install", "A": "all-namespaces"}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-") and a != "-":
            key, eq, value = a.lstrip("-").partition("=")
            key = aliases.get(key, key)
            if not eq:
                if key in _BOOL_FLAGS:
                    value = "true"
                elif i + 1 < len(argv):
                    value = argv[i + 1]
                    i += 1
            if key in _MULTI:
                flags.setdefault(key, []).append(value)
            else:
                flags[key] = value
        else:
            pos.append(a)
        i += 1
    return pos, flags


def _true(flags: dict[str, Any], key: str) -> bool:
    return str(flags.get(key, "false")).lower() in ("true", "1", "")


def _ansic(t: datetime) -> str:
    return t.strftime("%a %b ") + f"{t.day:2d}" + t.strftime(" %H:%M:%S %Y")


def _go_time(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S.%f") + "000 +0000 UTC"


def _duration(text: str) -> float:
    total, num = 0.0, ""
    for ch in text:
        if ch.isdigit() or ch == ".":
            num += ch
        elif ch in "hms" and num:
            total += float(num) * {"h": 3600, "m": 60, "s": 1}[ch]
            num = ""
    return total + (float(num) if num else 0.0)


def _set_path(values: dict[str, Any], dotted: str, raw: str, as_string: bool = False) -> None:
    parts = re.split(r"(?<!\\)\.", dotted)
    cur = values
    for p in parts[:-1]:
        cur = cur.setdefault(p.replace("\\.", "."), {})
    value: Any = raw
    if not as_string:
        if raw in ("true", "false"):
            value = raw == "true"
        elif re.fullmatch(r"-?\d+", raw):
            value = int(raw)
        elif raw == "null":
            value = None
    cur[parts[-1].replace("\\.", ".")] = value


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def platform_objects(release: str, namespace: str, version: str, values: dict[str, Any]) -> list[Obj]:
    """What the dynamo-platform chart installs (its objects as helm would create them), CRDs marked `_crd`."""
    profile = load_catalog().release(version)
    ns = namespace
    meta_ann = {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": ns}

    def labels(component: str, chart: str) -> dict[str, str]:
        return {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": release,
                "app.kubernetes.io/name": component, "helm.sh/chart": chart,
                "app.kubernetes.io/version": version}
    op_name = f"{release}-dynamo-operator-controller-manager"
    op_labels = {**labels("dynamo-operator", f"dynamo-operator-{version}"), "control-plane": "controller-manager"}
    objs: list[Obj] = []
    for crd in (profile.crds if profile and profile.crds_in_chart else ()):
        plural, group = crd.split(".", 1)
        kind = {"dynamographdeployments": "DynamoGraphDeployment",
                "dynamocomponentdeployments": "DynamoComponentDeployment",
                "dynamographdeploymentrequests": "DynamoGraphDeploymentRequest",
                "dynamographdeploymentscalingadapters": "DynamoGraphDeploymentScalingAdapter",
                "dynamomodels": "DynamoModel", "dynamocheckpoints": "DynamoCheckpoint",
                "dynamoworkermetadatas": "DynamoWorkerMetadata"}.get(plural, plural.capitalize()[:-1])
        short = {"dynamographdeployments": ["dgd"], "dynamocomponentdeployments": ["dcd"],
                 "dynamographdeploymentrequests": ["dgdr"]}.get(plural, [])
        objs.append({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                     "metadata": {"name": crd, "annotations": {"controller-gen.kubebuilder.io/version": "v0.16.4"}},
                     "spec": {"group": group, "scope": "Namespaced",
                              "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                                        "listKind": f"{kind}List", "shortNames": short},
                              "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                                            "subresources": {"status": {}},
                                            "schema": {"openAPIV3Schema": {
                                                "type": "object",
                                                "x-kubernetes-preserve-unknown-fields": True}}}]},
                     "_crd": True})
    objs += [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": op_name, "namespace": ns, "labels": op_labels, "annotations": meta_ann}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": f"{release}-dynamo-operator-manager-role", "labels": op_labels,
                      "annotations": meta_ann},
         "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": f"{release}-dynamo-operator-manager-rolebinding", "labels": op_labels,
                      "annotations": meta_ann},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": f"{release}-dynamo-operator-manager-role"},
         "subjects": [{"kind": "ServiceAccount", "name": op_name, "namespace": ns}]},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": f"{release}-dynamo-operator-webhook-service", "namespace": ns, "labels": op_labels,
                      "annotations": meta_ann},
         "spec": {"selector": {"control-plane": "controller-manager", "app.kubernetes.io/instance": release},
                  "ports": [{"port": 443, "targetPort": 9443, "protocol": "TCP", "name": "webhook"}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": op_name, "namespace": ns, "labels": op_labels, "annotations": meta_ann},
         "spec": {"replicas": 1,
                  "selector": {"matchLabels": {"control-plane": "controller-manager",
                                               "app.kubernetes.io/instance": release}},
                  "template": {"metadata": {"labels": {"control-plane": "controller-manager",
                                                       "app.kubernetes.io/instance": release,
                                                       "app.kubernetes.io/name": "dynamo-operator"}},
                               "spec": {"serviceAccountName": op_name,
                                        "containers": [{
                                            "name": "manager", "command": ["/manager"],
                                            "args": ["--leader-elect", "--discovery-backend=kubernetes"],
                                            "image": f"nvcr.io/nvidia/ai-dynamo/kubernetes-operator:{version}",
                                            "ports": [{"containerPort": 9443, "name": "webhook-server"}],
                                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                                          "limits": {"cpu": "1", "memory": "1Gi"}}}]}}}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": {"name": f"{release}-dynamo-operator-validating-webhook-configuration", "labels": op_labels,
                      "annotations": meta_ann},
         "webhooks": [{"name": "vdynamographdeployment.kb.io", "admissionReviewVersions": ["v1"],
                       "sideEffects": "None", "failurePolicy": "Fail",
                       "clientConfig": {"service": {"name": f"{release}-dynamo-operator-webhook-service",
                                                    "namespace": ns, "path": "/validate"}},
                       "rules": [{"apiGroups": ["nvidia.com"], "apiVersions": ["v1alpha1"],
                                  "operations": ["CREATE", "UPDATE"],
                                  "resources": ["dynamographdeployments"]}]}]},
    ]
    nats_values = values.get("nats") or {}
    nats_enabled = nats_values.get("enabled", bool(profile.nats) if profile else True)
    if nats_enabled:
        nats_name = f"{release}-nats"
        sel = {"app.kubernetes.io/component": "nats", "app.kubernetes.io/instance": release,
               "app.kubernetes.io/name": "nats"}
        nlabels = {**labels("nats", "nats-1.3.2"), "app.kubernetes.io/component": "nats"}
        pvc = (((nats_values.get("config") or {}).get("jetstream") or {}).get("fileStore") or {}).get("pvc") or {}
        claim_spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                                      "resources": {"requests": {"storage": str(pvc.get("size", "10Gi"))}}}
        if pvc.get("storageClassName"):
            claim_spec["storageClassName"] = pvc["storageClassName"]
        objs += [
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": f"{nats_name}-config", "namespace": ns, "labels": nlabels,
                          "annotations": meta_ann},
             "data": {"nats.conf": "jetstream {\n  max_file_store: 10Gi\n  store_dir: /data\n}\nport: 4222\n"}},
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": nats_name, "namespace": ns, "labels": nlabels, "annotations": meta_ann},
             "spec": {"selector": sel, "ports": [{"name": "nats", "port": 4222, "targetPort": 4222}]}},
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": f"{nats_name}-headless", "namespace": ns, "labels": nlabels,
                          "annotations": meta_ann},
             "spec": {"clusterIP": "None", "selector": sel, "publishNotReadyAddresses": True,
                      "ports": [{"name": "nats", "port": 4222, "targetPort": 4222},
                                {"name": "monitor", "port": 8222, "targetPort": 8222}]}},
            {"apiVersion": "apps/v1", "kind": "StatefulSet",
             "metadata": {"name": nats_name, "namespace": ns, "labels": nlabels, "annotations": meta_ann},
             "spec": {"replicas": 1, "serviceName": f"{nats_name}-headless", "selector": {"matchLabels": sel},
                      "podManagementPolicy": "Parallel",
                      "template": {"metadata": {"labels": sel},
                                   "spec": {"containers": [
                                       {"name": "nats", "image": "nats:2.11.8-alpine",
                                        "args": ["--config", "/etc/nats-config/nats.conf"],
                                        "ports": [{"containerPort": 4222, "name": "nats"}],
                                        "volumeMounts": [{"name": f"{nats_name}-js", "mountPath": "/data"}]},
                                       {"name": "reloader",
                                        "image": "natsio/nats-server-config-reloader:0.19.1"}]}},
                      "volumeClaimTemplates": [{"metadata": {"name": f"{nats_name}-js"}, "spec": claim_spec}]}},
            {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
             "metadata": {"name": nats_name, "namespace": ns, "labels": nlabels, "annotations": meta_ann},
             "spec": {"maxUnavailable": 1, "selector": {"matchLabels": sel}}},
        ]
    return objs


class Helm:
    def __init__(self, ctx: ToolContext, flags: dict[str, Any]) -> None:
        self.ctx = ctx
        self.flags = flags
        self.namespace = str(flags.get("namespace") or ctx.env.get("HELM_NAMESPACE") or "default")
        path = kubeconfig.kubeconfig_path(ctx.env, flags.get("kubeconfig"))
        config = kubeconfig.read(path)
        self.server, _ = kubeconfig.server_of(config, flags.get("kube-context"))
        port = kubeconfig.port_of(self.server)
        record = ctx.hub.cluster_for_port(port) if port else None
        if record is None or record.sim is None:
            where = self.server or "http://localhost:8080"
            ctx.err(f'Error: Kubernetes cluster unreachable: Get "{where}/version": dial tcp '
                    f'{where.split("//")[-1]}: connect: connection refused')
            raise ToolExit(1)
        self.sim = record.sim
        self.store: Store = record.sim.store

    def t(self, group: str, plural: str) -> Any:
        return self.store.type_named(group, plural)

    # -------------------------------------------------------------------------------------- releases

    def releases(self, namespace: str | None, name: str | None = None) -> list[Obj]:
        secrets = self.store.list(self.t("", "secrets"), namespace, "owner=helm")
        out = [s for s in secrets if s.get("type") == "helm.sh/release.v1"
               and (name is None or (s["metadata"].get("labels") or {}).get("name") == name)]
        return sorted(out, key=lambda s: int((s["metadata"].get("labels") or {}).get("version", 0)))

    @staticmethod
    def decode(secret: Obj) -> dict[str, Any]:
        raw = base64.b64decode(base64.b64decode(secret["data"]["release"]))
        return json.loads(gzip.decompress(raw))  # type: ignore[no-any-return]

    def write_release(self, rel: dict[str, Any]) -> None:
        blob = base64.b64encode(gzip.compress(json.dumps(rel).encode())).decode()
        name = f"sh.helm.release.v1.{rel['name']}.v{rel['version']}"
        secret: Obj = {"metadata": {"name": name, "labels": {
            "name": rel["name"], "owner": "helm", "status": rel["info"]["status"], "version": str(rel["version"]),
            "modifiedAt": str(int(time.time()))}},
            "type": "helm.sh/release.v1", "data": {"release": base64.b64encode(blob.encode()).decode()}}
        sec_t = self.t("", "secrets")
        if self.store.get(sec_t, rel["namespace"], name) is None:
            self.store.create(sec_t, rel["namespace"], secret)
        else:
            self.store.mutate(sec_t, rel["namespace"], name, lambda o: o.update(
                {"data": secret["data"], "metadata": {**o["metadata"], "labels": secret["metadata"]["labels"]}}))

    # -------------------------------------------------------------------------------------- charts

    def resolve_chart(self, ref: str) -> tuple[str, str, str]:
        """(chart name, version, app version) or exits like helm does."""
        want = self.flags.get("version")
        catalog = load_catalog()
        known = {r.version: r for r in catalog.releases.values()}
        m = re.search(r"/([a-z0-9-]+?)-(\d+\.\d+\.\d+[^/]*)\.tgz$", ref)
        if ref.startswith(("https://", "http://")):
            if not m:
                self.fail(f"failed to fetch {ref} : 404 Not Found")
            name, version = m.group(1), m.group(2)
            if name != "dynamo-platform" or version not in known:
                self.fail(f"failed to fetch {ref} : 404 Not Found")
            return name, version, version
        if ref.startswith("oci://"):
            name = ref.rstrip("/").rsplit("/", 1)[-1]
            if not want:
                self.fail(f'GET "https://{ref[6:].split("/", 1)[0]}/v2/{ref[6:].split("/", 1)[1]}/tags/list": '
                          "response status code 404: Not Found")
            if name != "dynamo-platform" or want not in known:
                self.fail(f'failed to perform "FetchReference" on source: {ref[6:]}:{want}: not found')
            return name, str(want), str(want)
        path = self.ctx.path(ref)
        if path.is_dir() and (path / "Chart.yaml").exists():
            chart = yaml.safe_load((path / "Chart.yaml").read_text(encoding="utf-8")) or {}
            return str(chart.get("name")), str(chart.get("version")), str(chart.get("appVersion") or chart.get("version"))
        if path.is_file() and m:
            return m.group(1), m.group(2), m.group(2)
        if path.is_file():
            return path.stem, str(want or "0.1.0"), str(want or "0.1.0")
        self.fail(f"non-absolute URLs should be in form of repo_name/path_to_chart, got: {ref}",
                  prefix="INSTALLATION FAILED: ")
        raise AssertionError("unreachable")

    def fail(self, message: str, prefix: str = "") -> NoReturn:
        self.ctx.err(f"Error: {prefix}{message}")
        raise ToolExit(1)

    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for f in self.flags.get("values") or []:
            p = self.ctx.path(f)
            try:
                data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
            except FileNotFoundError:
                self.fail(f"open {f}: no such file or directory")
            except yaml.YAMLError as err:
                self.fail(f"failed to parse {f}: error converting YAML to JSON: {err}")
            if isinstance(data, dict):
                values = _deep_merge(values, data)
        for kind in ("set", "set-string"):
            for item in self.flags.get(kind) or []:
                for pair in re.split(r"(?<!\\),", item):
                    key, _, raw = pair.partition("=")
                    _set_path(values, key, raw, as_string=kind == "set-string")
        return values

    # -------------------------------------------------------------------------------------- objects

    def apply_objects(self, objs: list[Obj]) -> None:
        for obj in objs:
            is_crd = obj.pop("_crd", False)
            rtype = self.store.kind_type(obj["apiVersion"], obj["kind"])
            ns = obj["metadata"].get("namespace") if rtype.namespaced else None
            cur = self.store.get(rtype, ns, obj["metadata"]["name"])
            if cur is None:
                self.store.create(rtype, ns, obj)
            elif not is_crd:
                self.store.patch(rtype, ns, obj["metadata"]["name"], {k: v for k, v in obj.items()
                                                                       if k not in ("apiVersion", "kind")}, "apply")

    def release_objects(self, release: str) -> list[tuple[Any, Obj]]:
        out = []
        for rtype, obj in self.store.all_objects():
            ann = obj["metadata"].get("annotations") or {}
            if ann.get("meta.helm.sh/release-name") == release and \
                    ann.get("meta.helm.sh/release-namespace") == self.namespace:
                out.append((rtype, obj))
        return out

    async def wait_ready(self, release: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = False
            for rtype, obj in self.release_objects(release):
                st = obj.get("status") or {}
                want = int((obj.get("spec") or {}).get("replicas", 1))
                if rtype.key in (("apps", "deployments"), ("apps", "statefulsets")) and \
                        int(st.get("readyReplicas", 0)) < want:
                    pending = True
            if not pending:
                return True
            await asyncio.sleep(max(0.05, self.ctx.clock.scaled(2)))
        return False

    # -------------------------------------------------------------------------------------- commands

    async def install(self, pos: list[str], upgrade: bool) -> int:
        if len(pos) < 2:
            self.fail(f'"helm {"upgrade" if upgrade else "install"}" requires 2 arguments')
        release, chart_ref = pos[0], pos[1]
        installing = not upgrade or _true(self.flags, "install")
        existing = self.releases(self.namespace, release)
        last = self.decode(existing[-1]) if existing else None
        if upgrade and last is None and not installing:
            self.fail(f'"{release}" has no deployed releases', prefix="UPGRADE FAILED: ")
        if not upgrade and last is not None and last["info"]["status"] != "uninstalled":
            self.fail("cannot re-use a name that is still in use", prefix="INSTALLATION FAILED: ")
        if upgrade and last is None:
            self.ctx.out(f'Release "{release}" does not exist. Installing it now.')
        if self.ctx.hub.faults.take_fail_once("helm"):
            await self.ctx.sleep(5)
            self.fail(f'Kubernetes cluster unreachable: Get "{self.server}/version": dial tcp '
                      f'{(self.server or "").split("//")[-1]}: i/o timeout')
        chart, version, app_version = self.resolve_chart(chart_ref)
        values = self.values()
        ns_t = self.t("", "namespaces")
        if self.store.get(ns_t, None, self.namespace) is None:
            if not _true(self.flags, "create-namespace"):
                self.fail(f'create: failed to create: namespaces "{self.namespace}" not found')
            self.store.create(ns_t, None, {"metadata": {"name": self.namespace, "labels": {
                "name": self.namespace}}})
        await self.ctx.sleep(self.ctx.clock.real("helm_install"))
        now = datetime.now(UTC)
        revision = (int(last["version"]) + 1) if last else 1
        rel: dict[str, Any] = {"name": release, "namespace": self.namespace, "version": revision,
               "info": {"first_deployed": (last or {}).get("info", {}).get("first_deployed") or now.isoformat(),
                        "last_deployed": now.isoformat(), "deleted": "",
                        "description": "Upgrade complete" if last else "Install complete",
                        "status": "pending-upgrade" if last else "pending-install", "notes": NOTES},
               "chart": {"metadata": {"name": chart, "version": version, "appVersion": app_version,
                                      "apiVersion": "v2", "type": "application",
                                      "description": "A Helm chart for NVIDIA Dynamo Platform."},
                         "values": {}},
               "config": values, "manifest": ""}
        objs = platform_objects(release, self.namespace, version, values) if chart == "dynamo-platform" else []
        rel["manifest"] = "\n".join("---\n" + yaml.safe_dump({k: v for k, v in o.items() if k != "_crd"})
                                    for o in objs if not o.get("_crd"))
        self.write_release(rel)
        try:
            self.apply_objects(objs)
        except ApiError as err:
            rel["info"]["status"] = "failed"
            rel["info"]["description"] = f"Release \"{release}\" failed: {err.message}"
            self.write_release(rel)
            self.fail(err.message, prefix="" if upgrade and not last else "INSTALLATION FAILED: ")
        if last:
            last["info"]["status"] = "superseded"
            self.write_release(last)
        if _true(self.flags, "wait") or _true(self.flags, "atomic"):
            timeout = self.ctx.clock.timeout(_duration(str(self.flags.get("timeout", "5m0s"))))
            if not await self.wait_ready(release, timeout):
                rel["info"]["status"] = "failed"
                rel["info"]["description"] = f'Release "{release}" failed: context deadline exceeded'
                self.write_release(rel)
                if _true(self.flags, "atomic"):
                    self.fail(f"release {release} failed, and has been uninstalled due to atomic being set: "
                              "context deadline exceeded", prefix="INSTALLATION FAILED: " if not upgrade else "")
                prefix = "UPGRADE FAILED: " if last else ("" if upgrade else "INSTALLATION FAILED: ")
                self.fail("context deadline exceeded", prefix=prefix)
        rel["info"]["status"] = "deployed"
        self.write_release(rel)
        if last:
            self.ctx.out(f'Release "{release}" has been upgraded. Happy Helming!')
        self.print_status(rel)
        return 0

    def print_status(self, rel: dict[str, Any]) -> None:
        deployed = datetime.fromisoformat(rel["info"]["last_deployed"])
        self.ctx.out(f"NAME: {rel['name']}")
        self.ctx.out(f"LAST DEPLOYED: {_ansic(deployed)}")
        self.ctx.out(f"NAMESPACE: {rel['namespace']}")
        self.ctx.out(f"STATUS: {rel['info']['status']}")
        self.ctx.out(f"REVISION: {rel['version']}")
        self.ctx.out("TEST SUITE: None")
        if rel["info"].get("notes"):
            self.ctx.out("NOTES:")
            self.ctx.out(rel["info"]["notes"].strip())

    async def uninstall(self, pos: list[str]) -> int:
        if not pos:
            self.fail('"helm uninstall" requires at least 1 argument')
        for release in pos:
            existing = self.releases(self.namespace, release)
            if not existing:
                self.fail(f"uninstall: Release not loaded: {release}: release: not found")
            for rtype, obj in self.release_objects(release):
                if rtype.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
                    continue  # helm never deletes CRDs from a chart's crds/ directory
                try:
                    self.store.delete(rtype, obj["metadata"].get("namespace"), obj["metadata"]["name"])
                except ApiError:
                    pass
            for secret in existing:
                self.store.delete(self.t("", "secrets"), self.namespace, secret["metadata"]["name"])
            await self.ctx.sleep(3)
            if _true(self.flags, "wait"):
                deadline = time.monotonic() + self.ctx.clock.timeout(_duration(str(self.flags.get("timeout", "5m"))))
                while self.release_objects(release) and time.monotonic() < deadline:
                    await asyncio.sleep(max(0.05, self.ctx.clock.scaled(2)))
            self.ctx.out(f'release "{release}" uninstalled')
        return 0

    def status(self, pos: list[str]) -> int:
        if not pos:
            self.fail('"helm status" requires 1 argument')
        existing = self.releases(self.namespace, pos[0])
        if not existing:
            self.fail("release: not found")
        rel = self.decode(existing[-1])
        if self.flags.get("output") in ("json", "yaml"):
            data = {k: rel[k] for k in ("name", "info", "config", "version", "namespace")}
            data["chart"] = {"metadata": rel["chart"]["metadata"]}
            text = json.dumps(data) if self.flags["output"] == "json" else yaml.safe_dump(data, sort_keys=False)
            self.ctx.out(text.rstrip())
        else:
            self.print_status(rel)
        return 0

    def list(self) -> int:
        ns = None if _true(self.flags, "all-namespaces") else self.namespace
        rows = []
        by_name: dict[tuple[str, str], dict[str, Any]] = {}
        for secret in self.releases(ns):
            rel = self.decode(secret)
            if rel["info"]["status"] in ("superseded", "uninstalled"):
                continue
            by_name[(rel["namespace"], rel["name"])] = rel
        for rel in by_name.values():
            meta = rel["chart"]["metadata"]
            rows.append({"name": rel["name"], "namespace": rel["namespace"], "revision": str(rel["version"]),
                         "updated": _go_time(datetime.fromisoformat(rel["info"]["last_deployed"])),
                         "status": rel["info"]["status"], "chart": f"{meta['name']}-{meta['version']}",
                         "app_version": meta.get("appVersion", "")})
        if self.flags.get("output") == "json":
            self.ctx.out(json.dumps(rows))
        elif self.flags.get("output") == "yaml":
            self.ctx.out(yaml.safe_dump(rows).rstrip())
        elif _true(self.flags, "short"):
            for r in rows:
                self.ctx.out(r["name"])
        else:
            self.ctx.out("NAME           \tNAMESPACE    \tREVISION\tUPDATED                                \tSTATUS  "
                         "\tCHART                 \tAPP VERSION")
            for r in rows:
                self.ctx.out(f"{r['name']}\t{r['namespace']}\t{r['revision']}\t{r['updated']}\t{r['status']}\t"
                             f"{r['chart']}\t{r['app_version']}")
        return 0


async def main(ctx: ToolContext) -> int:
    pos, flags = _parse(ctx.argv)
    if not pos:
        ctx.out("The Kubernetes package manager (sandbox)\n\nUsage:\n  helm [command]")
        return 0
    cmd, rest = pos[0], pos[1:]
    if cmd == "version":
        if _true(flags, "short"):
            ctx.out(f"{VERSION}+g{COMMIT[:7]}")
        else:
            ctx.out(f'version.BuildInfo{{Version:"{VERSION}", GitCommit:"{COMMIT}", GitTreeState:"clean", '
                    'GoVersion:"go1.24.7"}')
        return 0
    if cmd not in ("install", "upgrade", "uninstall", "delete", "del", "un", "status", "list", "ls"):
        ctx.err(f'Error: unknown command "{cmd}" for "helm" (the sandbox\'s helm knows install, upgrade, '
                "uninstall, status, list and version)")
        return 1
    helm = Helm(ctx, flags)
    if cmd in ("install", "upgrade"):
        return await helm.install(rest, upgrade=cmd == "upgrade")
    if cmd in ("uninstall", "delete", "del", "un"):
        return await helm.uninstall(rest)
    if cmd == "status":
        return helm.status(rest)
    return helm.list()


__all__ = ["main", "Path"]
