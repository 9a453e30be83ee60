"""eksctl and helm as subprocesses, their output streamed line by line (stdout and stderr in order).

- Paths: `DYNAMO_WIZARD_EKSCTL` / `DYNAMO_WIZARD_HELM` when set (tests and the sandbox point them at
  fakes), else PATH (`cloud.tools.find_tool`).
- Each tool runs in its own session, so a Ctrl-C in the terminal reaches the wizard, not the tool: the
  wizard decides. A cooperative cancel stops an `interruptible` run (SIGTERM to its process group, then
  SIGKILL after a grace period); eksctl and helm are run non-interruptible, so only a forced cancel (a
  second Ctrl-C, or the step's deadline) stops them: killing eksctl mid-create leaves a half-made cluster
  and killing helm leaves a release stuck in pending-install.
- helm gets a temporary kubeconfig (mode 0600: it holds a bearer token) for the cluster, deleted after.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import yaml

from ..core.protocols import BackendError, Cancellation, KubeAccess, LineSink, ToolResult
from ..core.redact import redact
from .tools import ENV_OVERRIDES, find_tool

KILL_GRACE = 10.0
LAST_LINES = 30


def tool_path(name: str) -> str:
    path = find_tool(name)
    if not path:
        env = ENV_OVERRIDES.get(name, "")
        raise BackendError(f"{name} was not found on PATH",
                           f"install {name} (see `dynamo-wizard preflight`) or set {env} to its path")
    return path


def run_streaming(argv: Sequence[str], on_line: LineSink, cancel: Cancellation, *,
                  interruptible: bool = True, env: Mapping[str, str] | None = None,
                  cwd: str | Path | None = None, kill_grace: float = KILL_GRACE) -> ToolResult:
    """Run `argv`, calling `on_line` for each output line as it comes; returns the exit code and last lines."""
    try:
        proc = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True, bufsize=0)
    except FileNotFoundError:
        raise BackendError(f"{argv[0]} does not exist", "install it, or fix the path in the environment") from None
    except PermissionError:
        raise BackendError(f"{argv[0]} is not executable", f"chmod +x {argv[0]}") from None
    lines: queue.Queue[bytes | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        try:
            for raw in iter(proc.stdout.readline, b""):
                lines.put(raw)
        finally:
            lines.put(None)

    reader = threading.Thread(target=read, name=f"dw-read-{Path(argv[0]).name}", daemon=True)
    reader.start()
    last: list[str] = []
    signalled_at: float | None = None
    killed = False
    while True:
        try:
            raw = lines.get(timeout=0.2)
        except queue.Empty:
            raw = b""
        if raw is None:
            break
        if raw:
            line = redact(raw.decode("utf-8", "replace").rstrip("\r\n"))
            last.append(line)
            del last[:-LAST_LINES]
            on_line(line)
        stop = cancel.forced or (interruptible and cancel.cancelled)
        if stop and signalled_at is None:
            signalled_at = time.monotonic()
            _signal(proc, signal.SIGTERM)
        elif signalled_at is not None and not killed and time.monotonic() - signalled_at > kill_grace:
            killed = True
            _signal(proc, signal.SIGKILL)
    rc = proc.wait()
    reader.join(timeout=1.0)
    return ToolResult(rc, tuple(last))


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def kubeconfig_for(access: KubeAccess) -> dict[str, object]:
    cluster: dict[str, object] = {"server": access.endpoint}
    if access.ca_data and access.endpoint.startswith("https://"):
        cluster["certificate-authority-data"] = access.ca_data
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": access.cluster, "cluster": cluster}],
        "users": [{"name": "dynamo-wizard", "user": {"token": access.token()}}],
        "contexts": [{"name": access.cluster, "context": {"cluster": access.cluster, "user": "dynamo-wizard"}}],
        "current-context": access.cluster,
    }


@contextlib.contextmanager
def temporary_kubeconfig(access: KubeAccess) -> Iterator[str]:
    """A 0600 kubeconfig file for `access`, removed when the block ends (whatever happens)."""
    fd, path = tempfile.mkstemp(prefix="dw-kubeconfig-", suffix=".yaml")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(kubeconfig_for(access), f)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


class ProcessTools:
    """core.protocols.Tools over real subprocesses."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = env

    def _env(self) -> dict[str, str]:
        return dict(self.env if self.env is not None else os.environ)

    def eksctl(self, args: Sequence[str], on_line: LineSink, cancel: Cancellation, *,
               interruptible: bool = False) -> ToolResult:
        return run_streaming([tool_path("eksctl"), *args], on_line, cancel, interruptible=interruptible,
                             env=self._env())

    def helm(self, args: Sequence[str], access: KubeAccess, on_line: LineSink, cancel: Cancellation, *,
             interruptible: bool = False) -> ToolResult:
        helm = tool_path("helm")
        with temporary_kubeconfig(access) as path:
            env = self._env()
            env["KUBECONFIG"] = str(path)
            return run_streaming([helm, *args, "--kubeconfig", str(path)], on_line, cancel,
                                 interruptible=interruptible, env=env)
