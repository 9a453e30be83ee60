"""End to end in a real terminal: `dynamo-wizard --sandbox` in tmux at 100×30, Enter on every screen, reaches
the review screen with a valid plan; the exported plan renders and validates against the upstream schemas.

The wizard runs as a user runs it (the console script, its own sandbox service started on demand, its own
state directory); the test reads the screen with `tmux capture-pane` and waits on what it shows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dynamo_wizard.core.plan import load_plan

ROOT = Path(__file__).resolve().parents[2]
WIZARD = ROOT / ".venv" / "bin" / "dynamo-wizard"
SOCKET = f"dynamo-wizard-e2e-{os.getpid()}"
SESSION = "wizard"

pytestmark = pytest.mark.e2e

# Each screen: what its heading says, and what its status line says once it has loaded.
SCREENS = [
    ("welcome", "Deploy NVIDIA Dynamo on Amazon EKS Auto Mode", "Enter accepts the highlighted"),
    ("region", "Where should the cluster run?", "regions can run the wanted"),
    ("families", "Which GPU instances?", "GPU NodePool families: g6e"),
    ("capacity", "Reserved capacity for the GPU nodes?", "reservations in us-east-1"),
    ("serving", "How should it serve, and which model?", "Workers run on g6e.2xlarge"),
    ("review", "Review — nothing has been created yet", "The plan is valid"),
]


def tmux(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True, check=check, timeout=30)


def screen_text() -> str:
    return tmux("capture-pane", "-p", "-t", SESSION, check=False).stdout


def wait_for(*needles: str, timeout: float = 90.0) -> str:
    """Until every needle is on screen (polling the terminal; fails with the last screen)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = screen_text()
        if all(n in text for n in needles):
            return text
        time.sleep(0.2)  # poll interval of the terminal read, not a wait for a worker
    raise AssertionError(f"timed out waiting for {needles!r}; the screen was:\n{text}")


def session_alive() -> bool:
    return tmux("has-session", "-t", SESSION, check=False).returncode == 0


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[dict[str, str]]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed: apt-get install -y tmux (scripts/dev.sh test does it)")
    if not WIZARD.exists():
        pytest.fail(f"{WIZARD} is missing: pip install -e . into .venv")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "DYNAMO_WIZARD_SANDBOX_DIR": str(tmp_path / "sandbox"),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    (tmp_path / "home").mkdir()
    yield env
    if session_alive():
        tmux("kill-session", "-t", SESSION, check=False)
    tmux("kill-server", check=False)  # our own socket only
    subprocess.run([str(WIZARD), "sandbox", "stop"], env=env, cwd=tmp_path, capture_output=True, timeout=60)


def test_enter_on_every_screen_reaches_a_valid_plan(terminal: dict[str, str], tmp_path: Path,
                                                    shared_reference: Path) -> None:
    env_args = [f"{k}={v}" for k, v in terminal.items()]
    tmux("new-session", "-d", "-s", SESSION, "-x", "100", "-y", "30", "-c", str(tmp_path),
         "env", "-i", *env_args, str(WIZARD), "--sandbox")
    for i, (step, heading, ready) in enumerate(SCREENS):
        text = wait_for(heading, ready)
        assert "SANDBOX" in text, f"no SANDBOX banner on {step}"
        if step == "review":
            break
        tmux("send-keys", "-t", SESSION, "Enter")
        # Leaving this screen: the next one's heading appears.
        wait_for(SCREENS[i + 1][1])

    # Export with the default directory, then quit.
    tmux("send-keys", "-t", SESSION, "e")
    wait_for("Export the plan and every rendered file to:")
    tmux("send-keys", "-t", SESSION, "Enter")
    wait_for("Exported")
    tmux("send-keys", "-t", SESSION, "C-q")
    deadline = time.monotonic() + 30
    while session_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not session_alive(), "the wizard did not quit on Ctrl+Q"

    exported = tmp_path / "dynamo-wizard-ai-dynamo"
    plan = load_plan(exported / "plan.yaml")
    assert (plan.region, plan.serving.instance_type, plan.serving.mode.value, plan.serving.model) == (
        "us-east-1", "g6e.2xlarge", "agg", "Qwen/Qwen3-0.6B")
    assert "us-east-1e" not in plan.zones  # use1-az3: no EKS control plane
    assert (exported / "00-eksctl-cluster.yaml").exists()

    # The exported plan renders and validates against the upstream schemas.
    cli_env = {**terminal, "DYNAMO_WIZARD_SCHEMAS": str(shared_reference)}
    validate = subprocess.run([str(WIZARD), "validate", str(exported / "plan.yaml")], env=cli_env,
                              capture_output=True, text=True, timeout=300)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "valid" in validate.stdout
    rendered = tmp_path / "rendered"
    render = subprocess.run([str(WIZARD), "render", str(exported / "plan.yaml"), "-o", str(rendered)], env=cli_env,
                            capture_output=True, text=True, timeout=300)
    assert render.returncode == 0, render.stdout + render.stderr
    assert (rendered / "runbook.sh").exists() and (rendered / "plan.yaml").read_text() == (
        exported / "plan.yaml").read_text()
