"""The sandbox service: `python -m dynamo_wizard.sandbox.service [--dir D] [--speed X] [--faults F]`.

One long-lived process per sandbox directory, listening only on 127.0.0.1 (ports chosen by the OS):
- the AWS front (moto + gap fills) and the control API `/_sandbox/*` on one port, written to service.json;
- one Kubernetes API server per sandbox cluster, on its own port (found through EKS DescribeCluster).
A lock file keeps a second start from racing the first; SIGTERM/SIGINT save the world and exit.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from .layout import Layout, code_fingerprint, default_dir

log = logging.getLogger("sandbox.service")


class Service:
    def __init__(self, layout: Layout, speed: float, faults_text: str | None) -> None:
        self.layout = layout
        self.speed = speed
        self.faults_text = faults_text
        self.stopping = asyncio.Event()
        self.started = time.time()
        self.code = code_fingerprint()  # what the client compares, to restart a service of older code
        self.port = 0
        self.hub: Any = None
        self.front: Any = None
        self.runner: Any = None
        # Fake eksctl/helm calls still at work (their work goes on after the caller is killed); in status,
        # so tests can wait for the world to settle after a crash.
        self.tools_running: dict[int, list[str]] = {}

    async def run(self) -> None:
        from aiohttp import web

        from .aws.front import AwsFront, MotoApp
        from .faults import Faults
        from .hub import Hub
        from .timings import SimClock
        from .tools.fakecli import install

        t0 = time.monotonic()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/_sandbox/{action:.*}", self.control)
        app.router.add_route("*", "/{tail:.*}", self.aws)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        endpoint = f"http://127.0.0.1:{self.port}"
        clock = SimClock(self.speed)
        faults = Faults()
        moto = MotoApp(self.layout.aws_snapshot)
        self.hub = hub = Hub(self.layout.root, clock, faults, moto, endpoint)
        self.front = hub.front = AwsFront(hub, moto, hub.gaps, faults, clock)
        await hub.load()
        clock.set_speed(self.speed)
        if self.faults_text:
            faults.update_from_text(self.faults_text)
        install(self.layout.root, sys.executable)
        self.write_service_json()
        log.info("sandbox service ready on %s in %.2fs", endpoint, time.monotonic() - t0)
        loop = asyncio.get_running_loop()
        saver = loop.create_task(hub.autosave())
        # DYNAMO_WIZARD_SANDBOX_WARMUP=0 skips it (tests of the service's lifecycle that make no AWS calls)
        warm = loop.create_task(self.warm_up() if os.environ.get("DYNAMO_WIZARD_SANDBOX_WARMUP", "1") != "0"
                                else asyncio.sleep(0))
        if self.hub.clusters:
            # a restart: clusters come back once AWS is restored; bring moto up now (in a thread)
            loop.run_in_executor(None, lambda: self.hub.moto.app)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        await self.stopping.wait()
        saver.cancel()
        warm.cancel()
        await hub.stop()
        await asyncio.sleep(0.2)  # calls the simulation had in flight to the AWS front finish while it still serves
        await self.runner.cleanup()
        self.layout.service_json.unlink(missing_ok=True)
        log.info("sandbox service stopped")

    async def warm_up(self) -> None:
        """Load moto's EC2 data now rather than on the user's first call (about a second and a half)."""
        t0 = time.monotonic()

        def touch() -> None:
            _ = self.hub.moto.app  # import moto and restore the saved AWS first
            if self.hub.moto.restored:
                log.info("AWS state restored from %s", self.hub.moto.snapshot)
            c = self.hub.clients
            c.get("ec2", "us-east-1").describe_availability_zones()
            c.get("iam", "us-east-1").list_roles(MaxItems=1)
            c.get("cloudformation", "us-east-1").list_stacks()
            c.get("eks", "us-east-1").list_clusters()
            c.get("efs", "us-east-1").describe_file_systems()
            c.get("sts", "us-east-1").get_caller_identity()
        try:
            await asyncio.to_thread(touch)
            log.info("warm-up done in %.2fs", time.monotonic() - t0)
        except Exception:
            log.exception("warm-up")

    def write_service_json(self) -> None:
        data = {"pid": os.getpid(), "port": self.port, "url": f"http://127.0.0.1:{self.port}",
                "started": self.started, "speed": self.hub.clock.speed, "python": sys.executable,
                "eksctl": str(self.layout.tool("eksctl")), "helm": str(self.layout.tool("helm")),
                "code": self.code}
        tmp = self.layout.service_json.with_name(f"service.json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.layout.service_json)

    # -------------------------------------------------------------------------------------- AWS

    async def aws(self, request: Any) -> Any:
        return await self.front.handle(request)

    # -------------------------------------------------------------------------------------- control

    async def control(self, request: Any) -> Any:
        from aiohttp import web

        from .faults import FaultError

        action = request.match_info["action"].strip("/")
        hub = self.hub
        if action == "health":
            return web.json_response({"ok": True, "pid": os.getpid(), "port": self.port})
        if action == "status":
            return web.json_response(self.status())
        if action == "faults":
            if request.method == "POST":
                try:
                    data = await request.json()
                except ValueError:
                    return web.json_response({"error": "send a JSON object such as {\"throttle\": 0.2}"}, status=400)
                try:
                    if not isinstance(data, dict):
                        raise FaultError("send a JSON object such as {\"throttle\": 0.2}")
                    if data.get("clear"):
                        hub.faults.clear()
                        data = {k: v for k, v in data.items() if k != "clear"}
                    hub.faults.update(data)
                except FaultError as err:
                    return web.json_response({"error": str(err)}, status=400)
                hub.mark_dirty()
                for record in hub.clusters.values():
                    if record.sim is not None:
                        record.sim.kick("sched")
            return web.json_response(hub.faults.to_dict())
        if action == "config" and request.method == "POST":
            data = await request.json()
            if data.get("speed"):
                hub.clock.set_speed(float(data["speed"]))
                hub.gaps.addon_ready_after_s = hub.clock.scaled(60)
                self.write_service_json()
                hub.mark_dirty()
            return web.json_response({"speed": hub.clock.speed})
        if action == "stop" and request.method == "POST":
            asyncio.get_running_loop().call_later(0.05, self.stopping.set)
            return web.json_response({"stopping": True})
        if action == "run" and request.method == "POST":
            return await self.run_tool(request)
        return web.json_response({"error": f"unknown control action {action!r}"}, status=404)

    def status(self) -> dict[str, Any]:
        hub = self.hub
        clusters = []
        for record in hub.clusters.values():
            entry: dict[str, Any] = {"name": record.name, "region": record.region, "status": record.status,
                                     "endpoint": record.sim.server.url if record.sim is not None else None}
            if record.sim is not None:
                st = record.sim.store
                entry["nodes"] = len(st.list(st.type_named("", "nodes")))
                entry["pods"] = len(st.list(st.type_named("", "pods")))
            clusters.append(entry)
        return {"pid": os.getpid(), "port": self.port, "url": f"http://127.0.0.1:{self.port}",
                "uptime": round(time.time() - self.started, 1), "speed": hub.clock.speed,
                "faults": hub.faults.to_dict(), "clusters": clusters, "aws_calls": self.front.calls,
                "dir": str(self.layout.root), "tools_running": [list(v) for v in self.tools_running.values()]}

    async def run_tool(self, request: Any) -> Any:
        from aiohttp import web

        from .tools import eksctl, helm
        from .tools.base import ToolContext, ToolExit

        data = await request.json()
        tool = data.get("tool")
        mains = {"eksctl": eksctl.main, "helm": helm.main}
        if tool not in mains:
            return web.json_response({"error": f"unknown tool {tool!r}"}, status=404)
        ctx = ToolContext(self.hub, [str(a) for a in data.get("argv") or []], str(data.get("cwd") or "/"),
                          {str(k): str(v) for k, v in (data.get("env") or {}).items()})

        async def body() -> None:
            try:
                code = await mains[tool](ctx)
            except ToolExit as exit_:
                code = exit_.code
            except Exception as err:  # a bug in the fake tool: say so, like a crashing binary would
                log.exception("%s %s", tool, ctx.argv)
                ctx.err(f"Error: internal error in the sandbox's {tool}: {err}")
                code = 1
            ctx.queue.put_nowait(("exit", code))
        task = asyncio.get_running_loop().create_task(body())
        self.hub._tasks.add(task)
        task.add_done_callback(self.hub._tasks.discard)
        self.tools_running[id(task)] = [str(tool), *ctx.argv]
        task.add_done_callback(lambda t: self.tools_running.pop(id(t), None))
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        try:
            while True:
                kind, value = await ctx.queue.get()
                if kind == "exit":
                    await resp.write(json.dumps({"exit": value}).encode() + b"\n")
                    break
                await resp.write(json.dumps({kind: value}).encode() + b"\n")
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the tool was killed; like CloudFormation, the work it started goes on
        return resp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dynamo_wizard.sandbox.service",
                                     description="The dynamo-wizard sandbox service (simulated AWS and EKS).")
    parser.add_argument("--dir", default=None, help="sandbox directory (default: $DYNAMO_WIZARD_SANDBOX_DIR or "
                                                    "<state dir>/sandbox)")
    parser.add_argument("--speed", type=float, default=None, help="time scale (1 = a deployment in about 30 s)")
    parser.add_argument("--faults", default=None, help="faults to inject, e.g. throttle=0.2,oom-download")
    parser.add_argument("--log-level", default=os.environ.get("DYNAMO_WIZARD_SANDBOX_LOG", "INFO"))
    args = parser.parse_args(argv)
    root = Path(args.dir).expanduser().resolve() if args.dir else default_dir()
    root.mkdir(parents=True, exist_ok=True)
    layout = Layout(root)
    lock = layout.service_lock.open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"a sandbox service already runs for {root} (see {layout.service_json})", file=sys.stderr)
        return 3
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("werkzeug", "botocore", "urllib3", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # moto's default AMIs (1,300 images with volumes) and AWS-managed IAM policies cost seconds at start and
    # nothing in the sandbox needs them (Auto Mode picks its own AMIs; nothing evaluates IAM)
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "false"
    # the service's own boto3 clients talk to itself; nothing of the user's AWS setup may leak in
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(var, None)
    os.environ["AWS_CONFIG_FILE"] = str(layout.aws_config)
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(layout.aws_config)
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    layout.aws_config.touch()
    speed = args.speed
    if speed is None:
        try:
            prior = json.loads((root / "state.json").read_text(encoding="utf-8")).get("speed")
        except (OSError, ValueError, AttributeError):
            prior = None
        speed = float(prior or os.environ.get("DYNAMO_WIZARD_SANDBOX_SPEED") or 1.0)
    service = Service(layout, speed, args.faults)
    loop = asyncio.new_event_loop()
    try:
        # not asyncio.run(): its shutdown waits for every worker thread, see the exit below
        loop.run_until_complete(service.run())
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
    # The world is saved. Worker threads of cancelled simulation tasks may still be retrying a call to the AWS
    # front that just closed (boto3 backs off for seconds): do not wait for them.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
