"""The kubelet: a bound pod pulls its images, starts its containers and runs a small program per container
that writes plausible logs (pip and hf download for the model-download Job, vLLM and NIXL for Dynamo
workers, the Dynamo frontend, the operator, NATS) and decides readiness and exit."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ...core.catalog import load_catalog
from ..kube.store import Obj, now_iso
from .base import SimBase
from .capacity import shape
from .workloads import controller_of, set_condition


@dataclass
class Exit:
    code: int
    reason: str


def _image_profile(image: str) -> tuple[str, int]:
    """(duration name, size in bytes) for an image."""
    if "vllm-runtime" in image or "sglang-runtime" in image or "tensorrtllm-runtime" in image:
        return "pull_runtime", 19_812_344_217
    if "dynamo-frontend" in image:
        return "pull_frontend", 1_948_221_007
    if "kubernetes-operator" in image:
        return "pull_small", 151_002_118
    if "nats" in image:
        return "pull_small", 19_884_103
    if image.startswith("python:"):
        return "pull_small", 45_310_980
    return "pull_small", 82_114_432


def _fmt_duration(seconds: float) -> str:
    if seconds >= 60:
        return f"{int(seconds // 60)}m{seconds % 60:.1f}s"
    if seconds >= 1:
        return f"{seconds:.3f}s"
    return f"{seconds * 1000:.0f}ms"


def command_text(container: Obj) -> str:
    return " ".join(str(x) for x in (container.get("command") or []) + (container.get("args") or []))


def container_env(container: Obj) -> dict[str, str]:
    return {e["name"]: str(e.get("value", "")) for e in container.get("env") or [] if "name" in e}


class Ctx:
    """What a container program can do."""

    def __init__(self, sim: SimBase, ns: str, pod: str, uid: str, container: Obj, node: Obj) -> None:
        self.sim = sim
        self.ns = ns
        self.pod = pod
        self.uid = uid
        self.container = container
        self.node = node
        self.name = container["name"]
        self.env = container_env(container)
        self.text = command_text(container)

    def log(self, *lines: str) -> None:
        self.sim.logs.write(self.ns, self.pod, self.name, *lines)

    async def sleep(self, real_seconds: float) -> None:
        await self.sim.clock.sleep(real_seconds)

    def set_ready(self, ready: bool = True) -> None:
        self.sim.set_container(self.ns, self.pod, self.uid, self.name, ready=ready)

    def current(self) -> Obj | None:
        pod = self.sim.store.get(self.sim.t("", "pods"), self.ns, self.pod)
        return pod if pod is not None and pod["metadata"]["uid"] == self.uid else None

    def stamp(self) -> str:
        return datetime.now(UTC).strftime("%m-%d %H:%M:%S")


# ------------------------------------------------------------------------------------------ programs

async def run_generic(ctx: Ctx, batch: bool) -> Exit | None:
    probe = ctx.container.get("readinessProbe") or {}
    delay = float(probe.get("initialDelaySeconds", 0)) + ctx.sim.clock.real("generic_ready")
    if batch:
        if ctx.text:
            ctx.log(f"+ {ctx.text[:300]}")
        await ctx.sleep(ctx.sim.clock.real("generic_ready"))
        return Exit(0, "Completed")
    await ctx.sleep(delay)
    ctx.set_ready()
    return None


async def run_download(ctx: Ctx) -> Exit | None:
    text = ctx.text
    env = ctx.env

    def expand(tok: str) -> str:
        m = re.fullmatch(r"\$\{?(\w+)\}?", tok.strip("\"'"))
        return env.get(m.group(1), tok) if m else tok.strip("\"'")
    m = re.search(r"(?:hf|huggingface-cli)\s+download\s+(\S+)", text)
    model = expand(m.group(1)) if m else env.get("MODEL_NAME", "unknown/model")
    r = re.search(r"--revision\s+(\S+)", text)
    revision = expand(r.group(1)) if r else env.get("MODEL_REVISION", "main")
    if revision.startswith("$"):
        revision = "main"
    hf_home = env.get("HF_HOME", "/root/.cache/huggingface")
    catalog_model = load_catalog().model(model)
    size_gb = catalog_model.weights_gb if catalog_model else 5.0
    files = max(4, int(size_gb / 4) + 6)
    pod = ctx.current()
    job_uid = (controller_of(pod) or {}).get("uid", "") if pod else ""
    oom = job_uid in ctx.sim.oom_jobs
    if not oom and ctx.sim.faults.take_oom_download():
        ctx.sim.oom_jobs.add(job_uid)
        oom = True
    traced = bool(re.search(r"set -\w*x", text))  # `set -eux`: the shell echoes each command with "+ "
    if "pip install" in text:
        if traced:
            ctx.log("+ pip install --no-cache-dir huggingface_hub hf_transfer")
        ctx.log("Collecting huggingface_hub", "  Downloading huggingface_hub-0.36.0-py3-none-any.whl.metadata (14 kB)",
                "Collecting hf_transfer",
                "  Downloading hf_transfer-0.1.9-cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl.metadata (1.7 kB)")
        await ctx.sleep(ctx.sim.clock.real("pip_install") / 2)
        ctx.log("Collecting filelock (from huggingface_hub)", "Collecting fsspec>=2023.5.0 (from huggingface_hub)",
                "Collecting hf-xet<2.0.0,>=1.1.3 (from huggingface_hub)", "Collecting tqdm>=4.42.1 (from huggingface_hub)",
                "Installing collected packages: tqdm, pyyaml, idna, hf-xet, hf_transfer, fsspec, filelock, "
                "charset_normalizer, certifi, requests, huggingface_hub")
        await ctx.sleep(ctx.sim.clock.real("pip_install") / 2)
        ctx.log("Successfully installed certifi-2025.10.5 charset_normalizer-3.4.4 filelock-3.20.0 fsspec-2025.10.0 "
                "hf-xet-1.2.0 hf_transfer-0.1.9 huggingface_hub-0.36.0 idna-3.11 pyyaml-6.0.3 requests-2.32.5 "
                "tqdm-4.67.1",
                "WARNING: Running pip as the 'root' user can result in broken permissions and conflicting behaviour "
                "with the system package manager.")
    if traced:
        ctx.log(f"+ hf download {model} --revision {revision}")
    total = ctx.sim.clock.real("download_gb_per_s")
    duration = size_gb / total
    steps = 10
    ctx.log(f"Fetching {files} files:   0%|          | 0/{files} [00:00<?, ?it/s]")
    for i in range(1, steps + 1):
        await ctx.sleep(duration / steps)
        frac = i / steps
        done = size_gb * frac
        elapsed = duration * frac
        remaining = duration - elapsed
        bar = "█" * int(frac * 10) + " " * (10 - int(frac * 10))
        ctx.log(f"Downloading (incomplete total...): {int(frac * 100):3d}%|{bar}| {done:.1f}G/{size_gb:.1f}G "
                f"[{int(elapsed // 60):02d}:{int(elapsed % 60):02d}<{int(remaining // 60):02d}:"
                f"{int(remaining % 60):02d}, {int(total * 1000)}MB/s]")
        if oom and frac >= 0.4:
            return Exit(137, "OOMKilled")
    ctx.log(f"Fetching {files} files: 100%|██████████| {files}/{files} [{int(duration // 60):02d}:"
            f"{int(duration % 60):02d}<00:00, {duration / files:.2f}s/it]")
    ctx.log(f"{hf_home}/hub/models--{model.replace('/', '--')}/snapshots/{revision if len(revision) > 6 else 'a' * 40}")
    ctx.sim.downloaded_models.add(model)
    return Exit(0, "Completed")


def parse_worker(text: str, container: Obj) -> dict[str, Any]:
    env = container_env(container)
    m = re.search(r"--model(?:[= ])(\S+)", text)
    model = m.group(1).strip("'\"") if m else env.get("MODEL", "Qwen/Qwen3-0.6B")
    served = re.search(r"--served-model-name(?:[= ])(\S+)", text)
    mode = re.search(r"--disaggregation-mode(?:[= ])(\w+)", text)
    if mode:
        role = mode.group(1)
    elif "--is-prefill-worker" in text:
        role = "prefill"
    else:
        role = "aggregated"
    tp = re.search(r"--tensor-parallel-size(?:[= ])(\d+)", text)
    kv: dict[str, Any] = {}
    k = re.search(r"--kv-transfer-config\s+('([^']*)'|\"((?:[^\"\\]|\\.)*)\"|(\S+))", text)
    if k:
        raw = k.group(2) or (k.group(3) or "").replace('\\"', '"') or k.group(4) or ""
        try:
            kv = json.loads(raw)
        except ValueError:
            kv = {"unparsed": raw}
    return {"model": model, "served": served.group(1) if served else model, "role": role,
            "tp": int(tp.group(1)) if tp else 1, "kv": kv}


async def run_vllm(ctx: Ctx) -> Exit | None:
    info = parse_worker(ctx.text, ctx.container)
    res = ctx.container.get("resources") or {}
    gpus = int(str({**(res.get("limits") or {}), **(res.get("requests") or {})}.get("nvidia.com/gpu", 0)))
    efa = int(str({**(res.get("limits") or {}), **(res.get("requests") or {})}.get("vpc.amazonaws.com/efa", 0)))
    node_shape = shape((ctx.node["metadata"].get("labels") or {}).get("node.kubernetes.io/instance-type", ""))
    pid = 300 + len(ctx.pod) % 50
    pfx = f"(EngineCore_DP0 pid={pid}) INFO {ctx.stamp()}"
    ctx.log(f"INFO {ctx.stamp()} [__init__.py:216] Automatically detected platform cuda.",
            f"INFO {ctx.stamp()} dynamo_runtime::distributed: Initializing Dynamo distributed runtime "
            f"(discovery backend: kubernetes)",
            f"INFO {ctx.stamp()} dynamo.vllm: Starting Dynamo vLLM worker: model={info['model']} "
            f"mode={info['role']} tensor_parallel_size={info['tp']}")
    if info["tp"] > max(gpus, 0):
        ctx.log(f"ERROR {ctx.stamp()} [core.py:708] EngineCore failed to start.",
                "Traceback (most recent call last):",
                f"ValueError: World size ({info['tp']}) is larger than the number of available GPUs ({gpus}) in this "
                "node. If this is intentional and you are using:",
                "- ray, set '--distributed-executor-backend ray'.",
                "- multiprocessing, set '--distributed-executor-backend mp'.")
        await ctx.sleep(5)
        return Exit(1, "Error")
    catalog_model = load_catalog().model(info["model"])
    size_gb = catalog_model.weights_gb if catalog_model else 5.0
    load = ctx.sim.clock.real("vllm_load_large" if size_gb > 10 else "vllm_load_small")
    ctx.log(f"{pfx} [core.py:77] Initializing a V1 LLM engine (v0.16.0) with config: model='{info['model']}', "
            f"speculative_config=None, tokenizer='{info['model']}', dtype=torch.bfloat16, max_seq_len=40960, "
            f"tensor_parallel_size={info['tp']}, pipeline_parallel_size=1, quantization=None, "
            f"served_model_name={info['served']}, enable_prefix_caching=True")
    if info["role"] in ("prefill", "decode") or info["kv"]:
        backends = (info["kv"].get("kv_connector_extra_config") or {}).get("backends") or ["UCX"]
        backend = backends[0] if backends else "UCX"
        efa_available = efa > 0 and node_shape is not None and node_shape.efa > 0
        ctx.log(f"{pfx} [nixl_connector.py:745] Initializing NIXL wrapper",
                f"{pfx} [nixl_connector.py:746] Initializing NIXL worker {ctx.pod}",
                f"{ctx.stamp()} NIXL INFO    _api.py:363 Backend {backend} was instantiated")
        if backend == "LIBFABRIC":
            if efa_available:
                ctx.log(f"{pfx} [nixl_connector.py:812] NIXL backend LIBFABRIC: libfabric provider efa, "
                        f"{efa} EFA device(s) (rdmap{', rdmap'.join(str(16 + i) + 's27' for i in range(min(efa, 4)))})")
            else:
                ctx.log(f"{ctx.stamp()} libfabric:1:efa:core:efa_prov_info_alloc(): No EFA devices found; provider "
                        "efa not available",
                        f"{pfx} [nixl_connector.py:812] NIXL backend LIBFABRIC: falling back to libfabric provider "
                        "tcp (TCP fallback; no EFA device on this node)")
        else:
            ctx.log(f"{pfx} [nixl_connector.py:812] NIXL backend {backend} (UCX transports: tcp, cuda_copy, "
                    "cuda_ipc)")
        if info["kv"].get("kv_buffer_device"):
            ctx.log(f"{pfx} [nixl_connector.py:830] KV buffer device: {info['kv']['kv_buffer_device']}")
    ctx.log(f"{pfx} [gpu_model_runner.py:2602] Starting to load model {info['model']}...")
    await ctx.sleep(load * 0.5)
    shards = max(1, int(size_gb / 3.9))
    ctx.log(f"{pfx} Loading safetensors checkpoint shards: 100% Completed | {shards}/{shards} "
            f"[00:{int(load * 0.3):02d}<00:00,  {load * 0.3 / shards:.2f}s/it]",
            f"{pfx} [default_loader.py:267] Loading weights took {load * 0.3:.2f} seconds",
            f"{pfx} [gpu_model_runner.py:2653] Model loading took {size_gb / max(info['tp'], 1) * 0.93:.2f} GiB and "
            f"{load * 0.32:.2f} seconds")
    pod = ctx.current()
    if pod is not None:  # the startup probe fails while the weights load
        ctx.sim.events.emit(pod, "Warning", "Unhealthy", "Startup probe failed: HTTP probe failed with statuscode: "
                            "503", "kubelet", host=ctx.node["metadata"]["name"],
                            field_path=f"spec.containers{{{ctx.name}}}")
    await ctx.sleep(load * 0.5)
    ctx.log(f"{pfx} [backends.py:548] Using cache directory: /home/dynamo/.cache/vllm/torch_compile_cache/3f1c2a9e/"
            "rank_0_0/backbone for vLLM's torch.compile",
            f"{pfx} [monitor.py:34] torch.compile takes {load * 0.25:.2f} s in total",
            f"{pfx} [gpu_worker.py:298] Available KV cache memory: 14.32 GiB",
            f"{pfx} [kv_cache_utils.py:1087] GPU KV cache size: 58,640 tokens",
            f"{pfx} Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 100%|██████████| 67/67 "
            "[00:08<00:00,  7.93it/s]",
            f"{pfx} [core.py:210] init engine (profile, create kv cache, warmup model) took {load * 0.4:.2f} seconds",
            f"INFO {ctx.stamp()} dynamo.vllm: Registered endpoint dynamo.{'prefill' if info['role'] == 'prefill' else 'backend'}"
            f".generate for model {info['served']}",
            f"INFO {ctx.stamp()} dynamo_runtime::system_status_server: System status server listening on 0.0.0.0:9090")
    ctx.set_ready()
    return None


async def run_frontend(ctx: Ctx) -> Exit | None:
    ctx.log(f"{ctx.stamp()} INFO dynamo_runtime::distributed: Initializing Dynamo distributed runtime",
            f"{ctx.stamp()} INFO dynamo_llm::http::service::service_v2: Starting HTTP(S) service "
            'address="0.0.0.0:8000"')
    await ctx.sleep(ctx.sim.clock.real("frontend_ready"))
    ctx.set_ready()
    announced: set[str] = set()
    while not ctx.sim.stopped:
        pod = ctx.current()
        if pod is None:
            return None
        for model in ctx.sim.models_for(pod):
            if model not in announced:
                announced.add(model)
                ctx.log(f"{ctx.stamp()} INFO dynamo_llm::discovery::watcher: added model model_name=\"{model}\"")
        await asyncio.sleep(max(0.05, ctx.sim.clock.scaled(5)))
    return None


async def run_operator(ctx: Ctx) -> Exit | None:
    ctx.log('{"level":"info","ts":"' + now_iso() + '","logger":"setup","msg":"starting manager"}',
            '{"level":"info","ts":"' + now_iso() + '","msg":"Starting EventSource","controller":'
            '"dynamographdeployment","source":"kind source: *v1alpha1.DynamoGraphDeployment"}')
    await ctx.sleep(ctx.sim.clock.real("operator_ready"))
    ctx.log('{"level":"info","ts":"' + now_iso() + '","msg":"Starting workers","controller":"dynamographdeployment",'
            '"worker count":1}')
    ctx.set_ready()
    return None


async def run_nats(ctx: Ctx) -> Exit | None:
    if "reloader" in ctx.name:
        await ctx.sleep(2)
        ctx.set_ready()
        return None
    ts = datetime.now(UTC).strftime("%Y/%m/%d %H:%M:%S.%f")
    ctx.log(f"[1] {ts} [INF] Starting nats-server", f"[1] {ts} [INF]   Version:  2.11.8",
            f"[1] {ts} [INF] Starting JetStream", f"[1] {ts} [INF]     Max Storage:     10.00 GB",
            f"[1] {ts} [INF]     Store Directory: \"/data/jetstream\"")
    await ctx.sleep(ctx.sim.clock.real("nats_ready"))
    ctx.log(f"[1] {ts} [INF] Listening for client connections on 0.0.0.0:4222", f"[1] {ts} [INF] Server is ready")
    ctx.set_ready()
    return None


def choose_program(pod: Obj, container: Obj) -> str:
    image = container.get("image", "")
    text = command_text(container)
    if re.search(r"(?:hf|huggingface-cli)\s+download", text):
        return "download"
    if "dynamo.vllm" in text or ("vllm-runtime" in image and "dynamo.frontend" not in text):
        return "vllm"
    if "dynamo.frontend" in text or "dynamo-frontend" in image:
        return "frontend"
    if "kubernetes-operator" in image:
        return "operator"
    if "nats" in image or container.get("name", "").startswith("nats") or "reloader" in container.get("name", ""):
        return "nats"
    if (pod.get("spec") or {}).get("restartPolicy") in ("Never", "OnFailure"):
        return "batch"
    return "server"


PROGRAMS = {"download": run_download, "vllm": run_vllm, "frontend": run_frontend, "operator": run_operator,
            "nats": run_nats}


class PodsMixin(SimBase):
    def start_pod(self, ns: str, name: str) -> None:
        pod = self.store.get(self.t("", "pods"), ns, name)
        if pod is None:
            return
        uid = pod["metadata"]["uid"]
        self.spawn(f"pod/{uid}", self.run_pod(ns, name, uid))

    def missing_config(self, pod: Obj) -> str | None:
        ns = pod["metadata"]["namespace"]
        sec_t, cm_t = self.t("", "secrets"), self.t("", "configmaps")
        for c in (pod.get("spec") or {}).get("containers") or []:
            for e in c.get("envFrom") or []:
                for kind, t in (("secretRef", sec_t), ("configMapRef", cm_t)):
                    ref = e.get(kind)
                    if ref and not ref.get("optional") and self.store.get(t, ns, ref.get("name", "")) is None:
                        return f'{"secret" if kind == "secretRef" else "configmap"} "{ref.get("name")}" not found'
            for e in c.get("env") or []:
                vf = e.get("valueFrom") or {}
                for kind, t in (("secretKeyRef", sec_t), ("configMapKeyRef", cm_t)):
                    ref = vf.get(kind)
                    if ref and not ref.get("optional"):
                        obj = self.store.get(t, ns, ref.get("name", ""))
                        if obj is None:
                            return f'{"secret" if kind == "secretKeyRef" else "configmap"} "{ref.get("name")}" not found'
                        if ref.get("key") not in (obj.get("data") or {}):
                            return f'couldn\'t find key {ref.get("key")} in {"Secret" if kind == "secretKeyRef" else "ConfigMap"} {ns}/{ref.get("name")}'
        return None

    def set_container(self, ns: str, name: str, uid: str, cname: str, **changes: Any) -> None:
        pod_t = self.t("", "pods")

        def upd(o: Obj) -> None:
            st = o.setdefault("status", {})
            statuses = st.setdefault("containerStatuses", [])
            cs = next((c for c in statuses if c["name"] == cname), None)
            if cs is None:
                spec_c = next(c for c in o["spec"]["containers"] if c["name"] == cname)
                cs = {"name": cname, "image": spec_c.get("image", ""), "imageID": "", "ready": False,
                      "restartCount": 0, "started": False, "state": {"waiting": {"reason": "ContainerCreating"}}}
                statuses.append(cs)
            for k, v in changes.items():
                if k == "state":
                    if "running" not in v and "running" in cs.get("state", {}) and "terminated" in v:
                        pass
                    cs["state"] = v
                elif k == "last_state":
                    cs["lastState"] = v
                else:
                    cs[k] = v
            self._pod_conditions(o)
        self.store.mutate(pod_t, ns, name, lambda o: upd(o) if o["metadata"]["uid"] == uid else None)

    def _pod_conditions(self, o: Obj) -> None:
        st = o["status"]
        statuses = st.get("containerStatuses") or []
        names = [c["name"] for c in o["spec"].get("containers") or []]
        by = {c["name"]: c for c in statuses}
        all_ready = all(by.get(n, {}).get("ready") for n in names)
        states = [by.get(n, {}).get("state", {}) for n in names]
        restart = o["spec"].get("restartPolicy", "Always")
        if all("terminated" in s for s in states) and restart != "Always":
            failed = any(s["terminated"].get("exitCode", 0) != 0 for s in states)
            st["phase"] = "Failed" if failed and restart == "Never" else "Succeeded" if not failed else st["phase"]
        elif any("running" in s for s in states) or (any("terminated" in s for s in states) and restart == "Always"):
            st["phase"] = "Running"
        conds = st.get("conditions") or []
        conds = set_condition(conds, "PodReadyToStartContainers", "True", "", "", lastProbeTime=None)
        conds = set_condition(conds, "Initialized", "True", "", "", lastProbeTime=None)
        terminal = st.get("phase") in ("Succeeded", "Failed")
        reason = "PodCompleted" if terminal else ("" if all_ready else "ContainersNotReady")
        not_ready = [n for n in names if not by.get(n, {}).get("ready")]
        msg = "" if all_ready or terminal else f"containers with unready status: [{' '.join(not_ready)}]"
        conds = set_condition(conds, "ContainersReady", "True" if all_ready and not terminal else "False", reason,
                              msg, lastProbeTime=None)
        conds = set_condition(conds, "Ready", "True" if all_ready and not terminal else "False", reason, msg,
                              lastProbeTime=None)
        conds = set_condition(conds, "PodScheduled", "True", "", "", lastProbeTime=None)
        order = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
        st["conditions"] = sorted(conds, key=lambda c: order.index(c["type"]) if c["type"] in order else 99)

    async def run_pod(self, ns: str, name: str, uid: str) -> None:
        pod_t, node_t = self.t("", "pods"), self.t("", "nodes")
        pod = self.store.get(pod_t, ns, name)
        if pod is None or pod["metadata"]["uid"] != uid:
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") or pod["metadata"].get(
                "deletionTimestamp"):
            return
        node_name = pod["spec"]["nodeName"]
        node = self.store.get(node_t, None, node_name)
        if node is None:
            return
        host = node_name
        node_ip = next((a["address"] for a in (node.get("status") or {}).get("addresses") or []
                        if a["type"] == "InternalIP"), "192.168.100.10")
        running = any("running" in (c.get("state") or {}) for c in (pod.get("status") or {}).get(
            "containerStatuses") or [])
        if not running:
            await self.clock.sleep_for("scheduled_to_pulling")

            def init(o: Obj) -> None:
                st = o.setdefault("status", {})
                st.update({"phase": "Pending", "hostIP": node_ip, "hostIPs": [{"ip": node_ip}],
                           "startTime": st.get("startTime") or now_iso()})
                st["containerStatuses"] = [
                    {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False,
                     "restartCount": 0, "started": False, "state": {"waiting": {"reason": "ContainerCreating"}}}
                    for c in o["spec"].get("containers") or []]
                self._pod_conditions(o)
                st["phase"] = "Pending"
            self.store.mutate(pod_t, ns, name, init)
            # volumes the kubelet must mount
            while not self.stopped:
                pod = self.store.get(pod_t, ns, name)
                if pod is None or pod["metadata"]["uid"] != uid:
                    return
                problem = await self.mount_problem(pod, node)
                if problem is None:
                    break
                self.throttled_event(pod, "Warning", "FailedMount", problem, "kubelet", every_real=120)
                await self.clock.sleep(30)
            pod_ip = self.node_ip((node["metadata"].get("labels") or {}).get("topology.kubernetes.io/zone", ""))
            self.store.mutate(pod_t, ns, name, lambda o: o["status"].update({"podIP": pod_ip,
                                                                            "podIPs": [{"ip": pod_ip}]}))
            for c in pod["spec"].get("containers") or []:
                if self.store.get(pod_t, ns, name) is None:
                    return
                image = c.get("image", "")
                field = f"spec.containers{{{c['name']}}}"
                cached = self.node_images.setdefault(node_name, set())
                if image in cached and c.get("imagePullPolicy") != "Always":
                    self.events.emit(pod, "Normal", "Pulled", f'Container image "{image}" already present on '
                                     "machine", "kubelet", host=host, field_path=field)
                    continue
                dname, size = _image_profile(image)
                self.events.emit(pod, "Normal", "Pulling", f'Pulling image "{image}"', "kubelet", host=host,
                                 field_path=field)
                started = time.monotonic()
                await self.clock.sleep_for(dname)
                took = time.monotonic() - started
                cached.add(image)
                self.events.emit(pod, "Normal", "Pulled", f'Successfully pulled image "{image}" in '
                                 f"{_fmt_duration(took)} ({_fmt_duration(took)} including waiting). Image size: "
                                 f"{size} bytes.", "kubelet", host=host, field_path=field)
            # configuration (secrets, config maps) is resolved when the container is created
            while not self.stopped:
                pod = self.store.get(pod_t, ns, name)
                if pod is None or pod["metadata"]["uid"] != uid:
                    return
                missing = self.missing_config(pod)
                if missing is None:
                    break
                for c in pod["spec"].get("containers") or []:
                    self.set_container(ns, name, uid, c["name"], state={"waiting": {
                        "reason": "CreateContainerConfigError", "message": missing}})
                self.throttled_event(pod, "Warning", "Failed", f"Error: {missing}", "kubelet", every_real=60)
                await self.clock.sleep(20)
        pod = self.store.get(pod_t, ns, name)
        if pod is None or pod["metadata"]["uid"] != uid:
            return
        containers = pod["spec"].get("containers") or []
        await asyncio.gather(*(self.run_container(ns, name, uid, c, node, restarted=running) for c in containers))

    async def mount_problem(self, pod: Obj, node: Obj) -> str | None:
        pvc_t, pv_t = self.t("", "persistentvolumeclaims"), self.t("", "persistentvolumes")
        zone = (node["metadata"].get("labels") or {}).get("topology.kubernetes.io/zone", "")
        for v in (pod.get("spec") or {}).get("volumes") or []:
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            pvc = self.store.get(pvc_t, pod["metadata"]["namespace"], claim)
            if pvc is None or (pvc.get("status") or {}).get("phase") != "Bound":
                return f'Unable to attach or mount volumes: unmounted volumes=[{v["name"]}], unattached volumes=[]: ' \
                       "timed out waiting for the condition"
            pv = self.store.get(pv_t, None, (pvc.get("spec") or {}).get("volumeName", ""))
            handle = (((pv or {}).get("spec") or {}).get("csi") or {}).get("volumeHandle", "")
            if "::" in handle and handle.startswith("fs-"):
                fs_id = handle.split("::", 1)[0]
                zones = await self.bridge.mount_target_zones(fs_id)
                if zones is not None and zone not in zones:
                    return (f'MountVolume.SetUp failed for volume "{pv["metadata"]["name"] if pv else claim}" : rpc '
                            f"error: code = Internal desc = Could not mount \"{fs_id}:/\" at \"/var/lib/kubelet/pods/"
                            f"{pod['metadata']['uid']}/volumes/kubernetes.io~csi/{claim}/mount\": mount failed: exit "
                            f"status 32 Output: Failed to resolve \"{fs_id}.efs.{self.info.region}.amazonaws.com\" - "
                            f"check that your file system ID is correct, and ensure that the VPC has an EFS mount "
                            f"target for this file system ID in the Availability Zone {zone}.")
        return None

    async def run_container(self, ns: str, name: str, uid: str, container: Obj, node: Obj,
                            restarted: bool = False) -> None:
        pod_t = self.t("", "pods")
        cname = container["name"]
        host = node["metadata"]["name"]
        field = f"spec.containers{{{cname}}}"
        backoff = 10.0
        while not self.stopped:
            pod = self.store.get(pod_t, ns, name)
            if pod is None or pod["metadata"]["uid"] != uid or pod["metadata"].get("deletionTimestamp"):
                return
            cs: dict[str, Any] = next((c for c in (pod.get("status") or {}).get("containerStatuses") or []
                                       if c["name"] == cname), {})
            if restarted and "running" in (cs.get("state") or {}) and cs.get("ready"):
                return  # the service restarted, not the container: a ready server just keeps running
            restarted = False
            self.events.emit(pod, "Normal", "Created", f"Created container: {cname}", "kubelet", host=host,
                             field_path=field)
            await self.clock.sleep_for("container_start")
            container_id = f"containerd://{uid.replace('-', '')}{cname.encode().hex()}"[:77]
            self.set_container(ns, name, uid, cname, state={"running": {"startedAt": now_iso()}}, started=True,
                               containerID=container_id, imageID=f"{container.get('image', '')}@sha256:"
                               f"{uid.replace('-', '')}{uid.replace('-', '')}"[:64 + len(container.get("image", "")) + 8])
            pod = self.store.get(pod_t, ns, name)
            if pod is None:
                return
            self.events.emit(pod, "Normal", "Started", f"Started container {cname}", "kubelet", host=host,
                             field_path=field)
            program = choose_program(pod, container)
            ctx = Ctx(self, ns, name, uid, container, node)
            if program in PROGRAMS:
                result = await PROGRAMS[program](ctx)
            else:
                result = await run_generic(ctx, batch=program == "batch")
            if result is None:
                return  # a server: runs until the pod goes
            finished = now_iso()
            terminated = {"terminated": {"exitCode": result.code, "reason": result.reason,
                                         "startedAt": cs.get("state", {}).get("running", {}).get("startedAt", finished),
                                         "finishedAt": finished, "containerID": container_id}}
            pod = self.store.get(pod_t, ns, name)
            if pod is None or pod["metadata"]["uid"] != uid:
                return
            policy = pod["spec"].get("restartPolicy", "Always")
            if policy == "Never" or (policy == "OnFailure" and result.code == 0):
                self.set_container(ns, name, uid, cname, state=terminated, ready=False, started=False)
                self.logs.close(ns, name, cname)
                if result.reason == "OOMKilled":
                    self.events.emit(pod, "Warning", "OOMKilling", f"Memory cgroup out of memory: Killed process in "
                                     f"container {cname}", "kernel-monitor", host=host)
                return
            restarts = int(cs.get("restartCount", 0)) + 1
            self.set_container(ns, name, uid, cname, state={"waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off {int(backoff)}s restarting failed container={cname} pod={name}_{ns}({uid})"}},
                last_state=terminated, ready=False, started=False, restartCount=restarts)
            self.events.emit(pod, "Warning", "BackOff", f"Back-off restarting failed container {cname} in pod "
                             f"{name}_{ns}({uid})", "kubelet", host=host, field_path=field)
            self.enqueue_owner(pod)
            await self.clock.sleep(backoff)
            backoff = min(backoff * 2, 300)

    def enqueue_owner(self, pod: Obj) -> None:
        owner = controller_of(pod)
        if owner:
            key = {"ReplicaSet": ("apps", "replicasets"), "StatefulSet": ("apps", "statefulsets"),
                   "DaemonSet": ("apps", "daemonsets"), "Job": ("batch", "jobs")}.get(owner.get("kind", ""))
            if key:
                self.enqueue(key, pod["metadata"]["namespace"], owner["name"])

    async def terminate_pod(self, ns: str, name: str, uid: str) -> None:
        pod_t = self.t("", "pods")
        pod = self.store.get(pod_t, ns, name)
        if pod is None or pod["metadata"]["uid"] != uid:
            return
        task = self.tasks.get(f"pod/{uid}")
        if task is not None:
            task.cancel()
        node_name = (pod.get("spec") or {}).get("nodeName")
        for c in pod["spec"].get("containers") or []:
            if node_name:
                self.events.emit(pod, "Normal", "Killing", f"Stopping container {c['name']}", "kubelet",
                                 host=node_name, field_path=f"spec.containers{{{c['name']}}}")
        grace = float(pod["metadata"].get("deletionGracePeriodSeconds", 30))
        await self.clock.sleep(min(grace, self.clock.real("pod_termination")))
        pod = self.store.get(pod_t, ns, name)
        if pod is not None and pod["metadata"]["uid"] == uid:
            self.store.remove(pod_t, pod)

    def on_pod(self, pod: Obj, kind: str) -> None:
        meta = pod["metadata"]
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        if kind == "DELETED":
            task = self.tasks.get(f"pod/{uid}")
            if task is not None:
                task.cancel()
            self.logs.drop_pod(ns, name)
            for claim in self.claims.values():
                if uid in claim.pods:
                    claim.pods.remove(uid)
            self.kick("sched")
        elif meta.get("deletionTimestamp"):
            if (pod.get("spec") or {}).get("nodeName"):
                self.spawn(f"pod-terminate/{uid}", self.terminate_pod(ns, name, uid))
            else:
                self.store.remove(self.t("", "pods"), pod)
        elif kind == "ADDED":
            if (pod.get("spec") or {}).get("nodeName") and f"pod/{uid}" not in self.tasks:
                self.start_pod(ns, name)
            else:
                self.kick("sched")
        if kind == "DELETED" or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            # a claim being deleted is released once its last pod is done
            for v in (pod.get("spec") or {}).get("volumes") or []:
                claim_name = (v.get("persistentVolumeClaim") or {}).get("claimName")
                if claim_name:
                    pvc = self.store.get(self.t("", "persistentvolumeclaims"), ns, claim_name)
                    if pvc is not None and pvc["metadata"].get("deletionTimestamp"):
                        self.on_pvc(pvc, "MODIFIED")
        self.enqueue_owner(pod)
        self.endpoints_changed(ns)
        self.pod_changed(pod)


__all__ = ["PodsMixin", "parse_worker", "choose_program"]
