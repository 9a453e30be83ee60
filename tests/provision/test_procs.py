"""cloud.procs: subprocess output streamed line by line, cancellable (soft vs forced), kubeconfig for helm."""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import yaml

from dynamo_wizard.cloud.procs import run_streaming, temporary_kubeconfig
from dynamo_wizard.core.protocols import KubeAccess
from dynamo_wizard.core.redact import clear_secrets, register_secret
from dynamo_wizard.core.runner import CancelToken

WAIT = 20.0


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "tool.py"
    path.write_text(body)
    return [sys.executable, str(path)]


def test_lines_stream_in_order_from_stdout_and_stderr(tmp_path: Path) -> None:
    argv = script(tmp_path, "import sys\nprint('one', flush=True)\nprint('two', file=sys.stderr, flush=True)\n"
                            "print('three', flush=True)\nsys.exit(3)\n")
    lines: list[str] = []
    result = run_streaming(argv, lines.append, CancelToken())
    assert lines == ["one", "two", "three"]
    assert result.returncode == 3 and not result.ok and result.last_lines[-1] == "three"


def test_a_line_arrives_while_the_tool_still_runs_and_output_is_redacted(tmp_path: Path) -> None:
    register_secret("tool-secret-value")
    try:
        gate = tmp_path / "gate"
        argv = script(tmp_path, f"import os, time\nprint('token tool-secret-value', flush=True)\n"
                                f"while not os.path.exists({str(gate)!r}): time.sleep(0.01)\nprint('end')\n")
        seen = threading.Event()
        lines: list[str] = []

        def on_line(line: str) -> None:
            lines.append(line)
            if len(lines) == 1:
                seen.set()
                gate.write_text("go")  # the tool ends only after its first line reached us

        assert run_streaming(argv, on_line, CancelToken()).ok
        assert seen.is_set() and lines == ["token ****", "end"]
    finally:
        clear_secrets()


def test_soft_cancel_stops_an_interruptible_tool(tmp_path: Path) -> None:
    argv = script(tmp_path, "import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    token = CancelToken()
    result = run_streaming(argv, lambda line: token.cancel(), token, interruptible=True)
    assert result.returncode != 0


def test_eksctl_style_tools_finish_through_a_soft_cancel_and_stop_when_forced(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    argv = script(tmp_path, f"import os, time\nprint('working', flush=True)\n"
                            f"while not os.path.exists({str(gate)!r}): time.sleep(0.01)\nprint('finished')\n")
    token = CancelToken()

    def on_line(line: str) -> None:
        if line == "working":
            token.cancel()  # soft: not interruptible, so it must go on
            gate.write_text("go")

    result = run_streaming(argv, on_line, token, interruptible=False)
    assert result.ok and result.last_lines[-1] == "finished"

    argv = script(tmp_path, "import time\nprint('working', flush=True)\ntime.sleep(60)\n")
    token = CancelToken()
    result = run_streaming(argv, lambda line: token.cancel(force=True), token, interruptible=False)
    assert result.returncode != 0


def test_missing_tool_is_a_clear_error(tmp_path: Path) -> None:
    from dynamo_wizard.core.protocols import BackendError

    try:
        run_streaming([str(tmp_path / "nope")], print, CancelToken())
    except BackendError as err:
        assert "does not exist" in err.message and err.fix
    else:
        raise AssertionError("expected a BackendError")


def test_helm_kubeconfig_is_private_and_removed() -> None:
    access = KubeAccess("c", "https://example.invalid", "Q0EK", lambda: "k8s-aws-v1.token")
    with temporary_kubeconfig(access) as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        config = yaml.safe_load(Path(path).read_text())
        assert config["users"][0]["user"]["token"] == "k8s-aws-v1.token"
        assert config["clusters"][0]["cluster"]["certificate-authority-data"] == "Q0EK"
    assert not Path(path).exists()
