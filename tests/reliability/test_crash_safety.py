"""Crash safety: `apply` killed with SIGKILL at many points, each in a fresh sandbox, then

- `cleanup`: nothing tagged `dynamo-wizard/deployment=<name>` is left, and the ledger has nothing live;
- or `apply` again: it finishes, and nothing was created twice (one cluster, one file system, one EFS security
  group, one mount target per zone, the two eksctl stacks; no ledger key created twice while it existed).

Kill points are spread over the run by the ledger's line count (every line is a step's intent or result, so
the points fall before, inside and after each create), plus a short extra delay on some to land inside a
tool's work. The apply runs as its own process group, killed whole, as a crashed terminal would be; the
sandbox service (its own process, like AWS) carries on with what the killed tools had started, and the
test waits for that to settle (the service says when no fake tool is at work) before the follow-up.

Each point runs in its own sandbox service; points run a few at a time to use the machine's cores while
the sandbox waits on its scaled clock. Every process of a point (the sandbox service, the apply that is
killed, the follow-up) is forked from a forkserver that has already imported the product, boto3, the
kubernetes client and moto: the processes are real and separate, without paying the imports 100 times.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

import pytest

from dynamo_wizard.sandbox import client as sandbox_client
from dynamo_wizard.sandbox.testing import SandboxHandle

PRELOAD = ["dynamo_wizard.cli", "dynamo_wizard.commands.apply", "dynamo_wizard.commands.cleanup",
           "dynamo_wizard.cloud.backends", "dynamo_wizard.cloud.owned", "dynamo_wizard.cloud.kube",
           "dynamo_wizard.core.steps", "dynamo_wizard.sandbox.service", "dynamo_wizard.sandbox.hub",
           "dynamo_wizard.sandbox.aws.front", "dynamo_wizard.sandbox.tools.eksctl",
           "dynamo_wizard.sandbox.tools.helm", "moto.server", "aiohttp", "boto3", "kubernetes", "yaml",
           "tests.reliability.test_crash_safety"]

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = "crash"
TAG = "dynamo-wizard/deployment"
SPEED = float(os.environ.get("DYNAMO_WIZARD_CRASH_SPEED", "200"))
PARALLEL = int(os.environ.get("DYNAMO_WIZARD_CRASH_PARALLEL", "3"))
FULL_APPLY_LINES = 35  # ledger lines of a complete apply of PLAN (about; the reference run below checks)
PLAN = f"""apiVersion: dynamo-wizard/v1
kind: Plan
deployment: {DEPLOYMENT}
region: us-east-1
zones: [us-east-1a, us-east-1b]
gpu:
  families: [g6e]
  capacityTypes: [on-demand, spot]
serving:
  mode: agg
  instanceType: g6e.2xlarge
  model: Qwen/Qwen3-0.6B
  worker: {{replicas: 1, gpus: 1, tensorParallel: 1}}
dynamo: {{release: 1.0.0, namespace: dynamo-system}}
storage: {{efs: true, downloadMemory: null}}
"""


BOTH_WAYS = os.environ.get("DYNAMO_WIZARD_CRASH_BOTH_WAYS", "") not in ("", "0")


def kill_points(count: int = int(os.environ.get("DYNAMO_WIZARD_CRASH_POINTS", "32"))) -> list[tuple[int, float]]:
    """(ledger lines to wait for, extra seconds) spread from before the first line to the last steps (more
    than the 30 required: a point near the end may find the run already finished)."""
    points = []
    for i in range(count):
        lines = round(i * (FULL_APPLY_LINES - 3) / (count - 1))
        extra = (0.0, 0.03, 0.12)[i % 3] if i < count - 1 else 0.0
        points.append((lines, extra))
    return points


@dataclass
class Outcome:
    point: tuple[int, float]
    follow: str
    killed_at_lines: int = -1
    finished_before_kill: bool = False
    problems: list[str] = field(default_factory=list)
    log: str = ""


def _env(handle: SandboxHandle) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(handle.env)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["HF_TOKEN"] = "hf_crashSafetyCanaryToken0123456789"
    return env


def _ledger_path(handle: SandboxHandle) -> Path:
    return Path(handle.env["DYNAMO_WIZARD_HOME"]) / "deployments" / DEPLOYMENT / "ledger.jsonl"


def _ledger_lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    rows = []
    for raw in text.splitlines():
        try:
            rows.append(json.loads(raw))
        except ValueError:
            continue  # a torn last line
    return rows


def _wait_for(condition: Callable[[], bool], timeout: float, what: str,
              exited: Callable[[], bool] | None = None, every: float = 0.01) -> bool:
    """Poll `condition` against a deadline; False when `exited()` says the process it waits on ended first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if exited is not None and exited():
            return condition()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)  # between polls of a file or the sandbox's status, against the deadline above
    return True


def _line_count(path: Path) -> int:
    """Complete lines in the ledger (cheap enough to ask a hundred times a second)."""
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _settle(handle: SandboxHandle, timeout: float = 60.0, quiet_for: float = 1.0) -> None:
    """Wait until the service has had no fake tool at work for `quiet_for` seconds: what the killed
    eksctl/helm started is done, and a request a killed tool sent just before dying has arrived (the
    service only knows of it once it is read)."""
    quiet_since: list[float] = []

    def quiet() -> bool:
        busy = (sandbox_client.status(handle.directory) or {}).get("tools_running")
        now = time.monotonic()
        if busy:
            quiet_since.clear()
            return False
        if not quiet_since:
            quiet_since.append(now)
        return now - quiet_since[0] >= quiet_for

    _wait_for(quiet, timeout, "the sandbox's tools to finish", every=0.05)


# --------------------------------------------------------------------------------------------------
# Processes forked from the warm forkserver (top-level functions: the forkserver imports them by name)


def _name_process(name: str) -> None:
    """What `ps` shows for a forked process (they all look like the forkserver otherwise)."""
    try:
        with open("/proc/self/comm", "w", encoding="ascii") as f:
            f.write(name[:15])
    except OSError:
        pass


def _child_cli(env: dict[str, str], argv: list[str], log_path: str, cwd: str) -> None:
    """A `dynamo-wizard …` process: its own process group (killed whole), its own environment."""
    os.setsid()
    _name_process(f"dw-{argv[0]}")
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - the process ends with it
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    from dynamo_wizard.cli import main

    try:
        code = main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _child_sandbox(directory: str, speed: float) -> None:
    """The sandbox service, as `python -m dynamo_wizard.sandbox.service` would run (detached, own session)."""
    os.setsid()
    _name_process("dw-sandbox")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "DYNAMO_WIZARD_HOME"}
    # Its start-up warm-up loads what the forkserver already holds (moto's data, botocore's models).
    env["DYNAMO_WIZARD_SANDBOX_WARMUP"] = os.environ.get("DYNAMO_WIZARD_CRASH_SANDBOX_WARMUP", "0")
    os.environ.clear()
    os.environ.update(env)
    os.chdir(directory)
    fd = os.open(os.path.join(directory, "service.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    from dynamo_wizard.sandbox import service

    os._exit(service.main(["--dir", directory, "--speed", str(speed)]) or 0)


_FORKSERVER: ForkServerContext | None = None
WARM_ENV = "DYNAMO_WIZARD_CRASH_FORKSERVER"


def warm_forkserver() -> None:
    """In the forkserver only: what every sandbox service would otherwise load itself, once per point —
    moto's backends for the region (EC2's instance data alone is a second of CPU) and its per-service apps.
    Forked services start from this state; a fresh sandbox is still an empty AWS account."""
    import boto3
    import botocore.loaders
    import botocore.session
    from moto.backends import get_backend
    from moto.server import create_backend_app

    # One botocore data loader for every session of every forked process: the service models (EC2's is
    # big: a new client costs ~0.4 s per session) are parsed once, here. Same data, same behaviour.
    shared_loader = botocore.loaders.create_loader()
    make_loader = botocore.session.create_loader

    def create_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
        return shared_loader if not search_path_string else make_loader(search_path_string)

    botocore.session.create_loader = create_loader  # type: ignore[assignment]
    session = boto3.session.Session(aws_access_key_id="warm", aws_secret_access_key="warm", region_name="us-east-1")
    for service in ("ec2", "efs", "eks", "cloudformation", "sts", "iam", "service-quotas", "pricing"):
        session.client(service, endpoint_url="http://127.0.0.1:9")

    for service in ("ec2", "efs", "eks", "cloudformation", "sts", "elasticfilesystem"):
        try:
            create_backend_app(service)
        except Exception:  # noqa: BLE001 - a name moto does not know: nothing to warm
            pass
    for service, region in (("ec2", "us-east-1"), ("efs", "us-east-1"), ("eks", "us-east-1"),
                            ("cloudformation", "us-east-1"), ("iam", "global"), ("sts", "global")):
        backend = get_backend(service)["123456789012"][region]  # type: ignore[call-overload]
        if service == "ec2":
            backend.describe_availability_zones()


def forkserver() -> ForkServerContext:
    global _FORKSERVER
    if _FORKSERVER is None:
        from multiprocessing import forkserver as fs

        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        os.environ[WARM_ENV] = "1"  # the server reads it once, as it starts
        try:
            fs.ensure_running()
        finally:
            os.environ.pop(WARM_ENV, None)
        _FORKSERVER = ctx
    return _FORKSERVER


@pytest.fixture(scope="module", autouse=True)
def _stop_forkserver() -> Iterator[None]:
    """The forkserver (and through it every process it forked) ends with this module."""
    yield
    global _FORKSERVER
    if _FORKSERVER is not None:
        from multiprocessing import forkserver as fs

        fs._forkserver._stop()  # closes its socket and waits for it
        _FORKSERVER = None


@contextmanager
def forked_sandbox(directory: Path, speed: float = SPEED) -> Iterator[SandboxHandle]:
    """A fresh sandbox service forked from the warm server (what `running_sandbox` does with a new
    interpreter); stopped afterwards, even on failure."""
    directory.mkdir(parents=True, exist_ok=True)
    proc = forkserver().Process(target=_child_sandbox, args=(str(directory), speed), daemon=False)
    proc.start()
    try:
        _wait_for(lambda: sandbox_client.running(directory) is not None, 60, "the sandbox service",
                  exited=lambda: proc.exitcode is not None, every=0.02)
        info = sandbox_client.running(directory)
        assert info is not None, f"the sandbox service ended (exit {proc.exitcode}); see {directory}/service.log"
        yield SandboxHandle(directory, info, sandbox_client.env(directory, info))
    finally:
        sandbox_client.stop(directory)
        proc.join(20)


def start_cli(env: dict[str, str], argv: list[str], cwd: Path, log: Path) -> Any:
    proc = forkserver().Process(target=_child_cli, args=(env, argv, str(log), str(cwd)), daemon=False)
    proc.start()
    return proc


def run_cli(env: dict[str, str], argv: list[str], cwd: Path, log: Path, timeout: float = 180.0) -> tuple[int, str]:
    proc = start_cli(env, argv, cwd, log)
    proc.join(timeout)
    if proc.exitcode is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.join()
        return -9, log.read_text(encoding="utf-8", errors="replace") + f"\n(killed after {timeout:.0f} s)"
    return int(proc.exitcode), log.read_text(encoding="utf-8", errors="replace")


# --------------------------------------------------------------------------------------------------
# What exists in the sandbox's AWS


def tagged_resources(handle: SandboxHandle) -> list[str]:
    """Every resource still carrying our tag, of every kind the product knows (EC2 types, EFS file systems
    and access points, EKS clusters, live stacks), asked of the sandbox's endpoint explicitly."""
    from dynamo_wizard.cloud.owned import OwnedAws

    return OwnedAws("us-east-1", handle.boto3_session(), endpoint_url=handle.url).tagged_leftovers(DEPLOYMENT)


def aws_counts(handle: SandboxHandle) -> dict[str, Any]:
    eks, efs, ec2, cfn = (handle.client(s) for s in ("eks", "efs", "ec2", "cloudformation"))
    clusters = [n for n in eks.list_clusters()["clusters"]
                if eks.describe_cluster(name=n)["cluster"].get("tags", {}).get(TAG) == DEPLOYMENT]
    fss = [f for f in efs.describe_file_systems()["FileSystems"]
           if {t["Key"]: t["Value"] for t in f.get("Tags", [])}.get(TAG) == DEPLOYMENT]
    mts = [m for f in fss for m in efs.describe_mount_targets(FileSystemId=f["FileSystemId"])["MountTargets"]]
    sgs = [g for g in ec2.describe_security_groups(Filters=[{"Name": f"tag:{TAG}", "Values": [DEPLOYMENT]}])
           ["SecurityGroups"] if not any(t["Key"] == "aws:cloudformation:stack-name" for t in g.get("Tags", []))]
    stacks = [s["StackName"] for s in cfn.describe_stacks()["Stacks"] if s["StackStatus"] != "DELETE_COMPLETE"]
    return {"clusters": clusters, "file_systems": [f["FileSystemId"] for f in fss],
            "mount_target_zones": sorted(m["AvailabilityZoneName"] for m in mts),
            "efs_security_groups": [g["GroupId"] for g in sgs], "stacks": sorted(stacks)}


def created_twice(rows: list[dict[str, Any]]) -> list[str]:
    """Ledger keys created (or adopted) with a new id while the previous one was not deleted."""
    live: dict[tuple[str, str], str] = {}
    twice = []
    for row in rows:
        key = (str(row.get("kind")), str(row.get("name")))
        action, rid = row.get("action"), row.get("id")
        if action == "deleted":
            live.pop(key, None)
        elif action in ("created", "adopted") and rid:
            if key in live and live[key] != rid:
                twice.append(f"{key[0]} {key[1]}: {live[key]} then {rid}")
            live[key] = rid
    return twice


# --------------------------------------------------------------------------------------------------


def crash_and_follow(base: Path, index: int, point: tuple[int, float], follow: str) -> Outcome:
    outcome = Outcome(point, follow)
    lines_wanted, extra = point
    work = base / f"{follow}-{index:02d}"
    work.mkdir(parents=True)
    plan_path = work / "plan.yaml"
    plan_path.write_text(PLAN, encoding="utf-8")
    with forked_sandbox(work / "sandbox") as handle:
        env = _env(handle)
        ledger = _ledger_path(handle)
        proc = start_cli(env, ["apply", str(plan_path), "--yes"], work, work / "apply-killed.log")
        try:
            reached = _wait_for(lambda: _line_count(ledger) >= lines_wanted, 120, "the kill point",
                                exited=lambda: proc.exitcode is not None)
            if reached and extra:
                proc.join(extra)  # land inside the work that follows the line
        finally:
            if proc.exitcode is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:  # killed before it made its own group
                    proc.kill()
            else:
                outcome.finished_before_kill = True
            proc.join()
        outcome.killed_at_lines = len(_ledger_lines(ledger))
        _settle(handle)
        if follow == "cleanup":
            rc, out = run_cli(env, ["cleanup", "--deployment", DEPLOYMENT, "--yes"], work, work / "cleanup.log")
            outcome.log = out
            if rc != 0:
                outcome.problems.append(f"cleanup exited {rc}")
            _settle(handle)
            left = tagged_resources(handle)
            if left:
                outcome.problems.append(f"still tagged: {left}")
            last: dict[tuple[str, str], str] = {}  # a key is live when its last action is not `deleted`
            for r in _ledger_lines(ledger):
                last[(r["kind"], r["name"])] = r["action"]
            live = {k for k, a in last.items() if a != "deleted"}
            if live:
                outcome.problems.append(f"ledger still has live entries: {sorted(live)}")
        else:
            rc, out = run_cli(env, ["apply", str(plan_path), "--yes"], work, work / "apply-again.log")
            outcome.log = out
            if rc != 0:
                outcome.problems.append(f"apply again exited {rc}")
            counts = aws_counts(handle)
            expected = {"clusters": 1, "file_systems": 1, "efs_security_groups": 1}
            for what, n in expected.items():
                if len(counts[what]) != n:
                    outcome.problems.append(f"{len(counts[what])} {what}: {counts[what]}")
            if counts["mount_target_zones"] != ["us-east-1a", "us-east-1b"]:
                outcome.problems.append(f"mount targets in {counts['mount_target_zones']}")
            if len(counts["stacks"]) != 2:
                outcome.problems.append(f"stacks: {counts['stacks']}")
            twice = created_twice(_ledger_lines(ledger))
            if twice:
                outcome.problems.append(f"created twice: {twice}")
            if "hf_crashSafetyCanaryToken" in ledger.read_text(encoding="utf-8"):
                outcome.problems.append("the HF token reached the ledger")
    return outcome


@pytest.fixture(scope="module")
def crash_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Outcome]]:
    """Every kill point followed by cleanup or by apply, in turn (neighbouring points, a ledger line apart,
    get the other follow-up), each in its own fresh sandbox; DYNAMO_WIZARD_CRASH_BOTH_WAYS=1 follows every
    point both ways (twice the time). All runs share one pool (a few at a time) so the machine stays busy."""
    base = tmp_path_factory.mktemp("crash")
    points = kill_points()
    forkserver()
    if BOTH_WAYS:
        jobs = [(i, p, follow) for i, p in enumerate(points) for follow in ("cleanup", "apply")]
    else:
        jobs = [(i, p, ("cleanup", "apply")[i % 2]) for i, p in enumerate(points)]
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = [(follow, pool.submit(crash_and_follow, base, i, p, follow)) for i, p, follow in jobs]
        outcomes: dict[str, list[Outcome]] = {"cleanup": [], "apply": []}
        for follow, future in futures:
            outcomes[follow].append(future.result())
    return outcomes


def _report(outcomes: list[Outcome]) -> str:
    bad = [o for o in outcomes if o.problems]
    lines = [f"{len(bad)} of {len(outcomes)} kill points failed:"]
    for o in bad:
        lines.append(f"- kill after {o.point[0]} ledger lines +{o.point[1]}s (at {o.killed_at_lines} lines): "
                     + "; ".join(o.problems))
        lines.append("  " + "\n  ".join(o.log.splitlines()[-25:]))
    return "\n".join(lines)


def _check_spread(outcomes: dict[str, list[Outcome]]) -> None:
    every = [o for follow in outcomes.values() for o in follow]
    killed = [o for o in every if not o.finished_before_kill]
    distinct = {o.killed_at_lines for o in killed}
    # At least 30 different kill points, truly inside the run (not after it ended), and each follow-up
    # after kills spread over the whole run.
    assert len({(o.point, o.killed_at_lines) for o in killed}) >= 30, [
        (o.point, o.killed_at_lines, o.finished_before_kill) for o in every]
    assert len(distinct) >= 15, f"kill points bunched at ledger lines {sorted(distinct)}"
    for follow, group in outcomes.items():
        lines = {o.killed_at_lines for o in group if not o.finished_before_kill}
        assert len(lines) >= 10 and max(lines) - min(lines) >= FULL_APPLY_LINES // 2, (follow, sorted(lines))


@pytest.mark.timeout(900)
def test_apply_killed_anywhere_then_cleanup_leaves_nothing_tagged(crash_outcomes: dict[str, list[Outcome]]) -> None:
    _check_spread(crash_outcomes)
    outcomes = crash_outcomes["cleanup"]
    assert not any(o.problems for o in outcomes), _report(outcomes)


@pytest.mark.timeout(900)
def test_apply_killed_anywhere_then_apply_again_creates_nothing_twice(crash_outcomes: dict[str, list[Outcome]]
                                                                      ) -> None:
    _check_spread(crash_outcomes)
    outcomes = crash_outcomes["apply"]
    assert not any(o.problems for o in outcomes), _report(outcomes)


def test_the_kill_points_cover_the_whole_apply(tmp_path: Path) -> None:
    """The reference the spread is built on: a complete apply writes about FULL_APPLY_LINES ledger lines."""
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(PLAN, encoding="utf-8")
    with forked_sandbox(tmp_path / "sandbox") as handle:
        rc, out = run_cli(_env(handle), ["apply", str(plan_path), "--yes"], tmp_path, tmp_path / "apply.log")
        assert rc == 0, out[-3000:]
        full = _line_count(_ledger_path(handle))
    points = kill_points()
    # Every kill point falls inside a complete run, and they reach its last steps.
    assert len(points) >= 30 and points[0][0] == 0
    assert full - 5 <= points[-1][0] < full, (full, points[-1])


if os.environ.get(WARM_ENV) == "1":  # imported by the forkserver's preload
    warm_forkserver()
