"""The product's side of the sandbox: start (or find) the service and point this process at it.

`activate()` is what `dynamo-wizard --sandbox …` and the TUI's sandbox mode call. The service is started
detached (its own session), so it outlives a killed wizard as AWS would; readiness is awaited by polling its
health URL against a deadline. Standard library only (the CLI imports this before anything heavy).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..core.errors import WizardError
from .layout import ENV_DIR, Layout, code_fingerprint, default_dir

START_TIMEOUT_S = 60.0
DUMMY_KEY = "AKIASANDBOX000000000"
DUMMY_SECRET = "sandbox-secret-access-key-not-real"


class SandboxError(WizardError):
    pass


def _layout(directory: str | Path | None = None) -> Layout:
    return Layout(Path(directory).expanduser().resolve() if directory else default_dir())


def _request(url: str, data: dict[str, Any] | None = None, timeout: float = 5.0) -> dict[str, Any]:
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback only
        return json.loads(resp.read() or b"{}")  # type: ignore[no-any-return]


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # the service is our own child when this process started it: reap it once it has exited
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def running(directory: str | Path | None = None) -> dict[str, Any] | None:
    """service.json of a live, answering service, or None."""
    layout = _layout(directory)
    info = layout.read_service()
    if not info or not _alive(int(info.get("pid", 0))):
        return None
    try:
        _request(f"{info['url']}/_sandbox/health", timeout=2.0)
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return info


def start(speed: float | None = None, faults: str | None = None, directory: str | Path | None = None,
          timeout: float = START_TIMEOUT_S) -> dict[str, Any]:
    """Ensure the service runs; returns its service.json. Two racing starts: one starts, the other waits."""
    layout = _layout(directory)
    layout.root.mkdir(parents=True, exist_ok=True)
    with layout.start_lock.open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        info = running(layout.root)
        if info is not None and info.get("code") != code_fingerprint():
            stop(layout.root)  # older code (an upgrade, an edit): it saves its world; the new one loads it
            info = None
        if info is None:
            layout.service_json.unlink(missing_ok=True)
            argv = [sys.executable, "-m", "dynamo_wizard.sandbox.service", "--dir", str(layout.root)]
            if speed:
                argv += ["--speed", str(speed)]
            if faults:
                argv += ["--faults", faults]
            env = dict(os.environ)
            env.pop("DYNAMO_WIZARD_HOME", None)
            project = str(Path(__file__).resolve().parents[2])
            env["PYTHONPATH"] = project + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            with layout.log.open("ab") as log:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True, close_fds=True, env=env, cwd=str(layout.root))
            deadline = time.monotonic() + timeout
            while True:
                info = running(layout.root)
                if info is not None:
                    break
                code = proc.poll()
                if code is not None and code != 3:
                    tail = layout.log.read_text(encoding="utf-8", errors="replace")[-1500:] \
                        if layout.log.exists() else ""
                    raise SandboxError(f"the sandbox service exited with code {code} while starting",
                                       f"see {layout.log}; its last lines:\n{tail}")
                if time.monotonic() > deadline:
                    raise SandboxError(f"the sandbox service did not answer within {timeout:.0f} s",
                                       f"see {layout.log}, or run `dynamo-wizard sandbox stop` and try again")
                time.sleep(0.05)  # polling the health URL against the deadline above
        else:
            if speed and float(info.get("speed") or 0) != float(speed):
                _request(f"{info['url']}/_sandbox/config", {"speed": float(speed)})
                info = layout.read_service() or info
            if faults:
                set_faults(faults, layout.root)
    return info


def env(directory: str | Path | None = None, info: dict[str, Any] | None = None) -> dict[str, str]:
    """The environment that points boto3, kubectl, eksctl/helm lookups and the wizard at the sandbox."""
    layout = _layout(directory)
    info = info or layout.read_service()
    if not info:
        raise SandboxError("the sandbox service is not running", "start it with `dynamo-wizard sandbox start`")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return {
        "AWS_ENDPOINT_URL": str(info["url"]),
        "AWS_ACCESS_KEY_ID": DUMMY_KEY,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET,
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION") or region,
        "AWS_REGION": os.environ.get("AWS_REGION") or region,
        "AWS_CONFIG_FILE": str(layout.aws_config),
        "AWS_SHARED_CREDENTIALS_FILE": str(layout.aws_config),
        "AWS_EC2_METADATA_DISABLED": "true",
        "DYNAMO_WIZARD_SANDBOX": "1",
        ENV_DIR: str(layout.root),
        "DYNAMO_WIZARD_EKSCTL": str(layout.tool("eksctl")),
        "DYNAMO_WIZARD_HELM": str(layout.tool("helm")),
        "DYNAMO_WIZARD_HOME": str(layout.wizard_home),
        "KUBECONFIG": str(layout.kubeconfig),
    }


def activate(speed: float | None = None, directory: str | Path | None = None) -> dict[str, str]:
    """Start (or find) the sandbox and point this process at it (sandbox contract §1)."""
    layout = _layout(directory)  # computed before DYNAMO_WIZARD_HOME moves into the sandbox
    info = start(speed=speed, directory=layout.root)
    values = env(layout.root, info)
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(var, None)
    os.environ.update(values)
    Path(values["DYNAMO_WIZARD_HOME"]).mkdir(parents=True, exist_ok=True)
    return values


def stop(directory: str | Path | None = None, timeout: float = 15.0) -> bool:
    """Stop the service (it saves its world first). True when one was running."""
    layout = _layout(directory)
    info = layout.read_service()
    if not info:
        return False
    pid = int(info.get("pid", 0))
    try:
        _request(f"{info['url']}/_sandbox/stop", {})
    except (OSError, ValueError, urllib.error.URLError):
        if pid and _alive(pid):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid and _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for that process to exit, against the deadline
    if pid and _alive(pid):
        os.kill(pid, signal.SIGKILL)
    layout.service_json.unlink(missing_ok=True)
    return True


def reset(directory: str | Path | None = None) -> dict[str, Any]:
    """A fresh world: stop the service, forget its state (AWS, clusters, ledgers of sandbox deployments), start
    it again with the same speed."""
    import shutil

    layout = _layout(directory)
    info = layout.read_service() or {}
    stop(layout.root)
    for name in ("state.json", "aws-state.pickle", "calls.jsonl", "kubeconfig"):
        (layout.root / name).unlink(missing_ok=True)
    for sub in ("clusters", "wizard-home"):
        shutil.rmtree(layout.root / sub, ignore_errors=True)
    return start(speed=info.get("speed"), directory=layout.root)


def status(directory: str | Path | None = None) -> dict[str, Any] | None:
    info = running(directory)
    if info is None:
        return None
    return _request(f"{info['url']}/_sandbox/status")


def set_faults(spec: str | dict[str, Any], directory: str | Path | None = None) -> dict[str, Any]:
    """Arm faults (`throttle=0.2,oom-download` or a dict; {"clear": true} disarms all)."""
    info = running(directory)
    if info is None:
        raise SandboxError("the sandbox service is not running", "start it with `dynamo-wizard sandbox start`")
    data: dict[str, Any]
    if isinstance(spec, str):
        from .faults import FaultError, Faults

        try:
            parsed = Faults.parse(spec)
        except FaultError as err:
            raise SandboxError(str(err)) from None
        data = {k: v for k, v in parsed.to_dict().items() if k != "fired" and v not in (None, 0, 0.0, [], False)}
        released = [v.strip() for k, _, v in (i.strip().partition("=") for i in spec.split(",")) if k == "release"]
        if released:
            data["release"] = released  # an action, not a state: to_dict has no place for it
    else:
        data = spec
    try:
        return _request(f"{info['url']}/_sandbox/faults", data)
    except urllib.error.HTTPError as err:
        raise SandboxError(f"the sandbox refused the faults: {err.read().decode(errors='replace')}") from None
