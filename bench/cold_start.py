"""Cold start to the first interactive screen, vs a bare Textual app (target ≤ 1.3×).

Both run as fresh Python processes, headless, and print a line when their first screen is ready for
input (Textual's Ready event); the time is from spawning the process to reading that line, so both pay
the same interpreter start-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from .result import Result, median

BARE = r"""
from textual import on
from textual.app import App, ComposeResult
from textual.events import Ready
from textual.widgets import Footer, Header, Label

class Bare(App):
    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("hello")
        yield Footer()

    @on(Ready)
    def _bench_ready(self) -> None:
        print("READY", flush=True)
        self.exit()

Bare().run(headless=True, size=(100, 30))
"""

OURS = r"""
from textual import on
from textual.events import Ready
from dynamo_wizard.tui.app import WizardApp

class Timed(WizardApp):
    @on(Ready)
    def _bench_ready(self) -> None:
        print("READY", flush=True)
        self.exit()

Timed(use_draft=False).run(headless=True, size=(100, 30))
"""


def _once(script: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "READY":
            elapsed = time.perf_counter() - t0
            break
    else:
        _, err = proc.communicate(timeout=30)
        raise RuntimeError(f"app never became ready: {err[-500:]}")
    proc.wait(timeout=30)
    return elapsed


def run(runs: int = 5) -> list[Result]:
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, DYNAMO_WIZARD_HOME=home, AWS_EC2_METADATA_DISABLED="true", TERM="xterm-256color")
        _once(BARE, env), _once(OURS, env)  # warm the OS file cache for both
        bare, ours = [], []
        for _ in range(max(3, runs)):
            bare.append(_once(BARE, env))
            ours.append(_once(OURS, env))
    b, o = median(bare), median(ours)
    return [Result("cold start to first screen", o * 1000, b * 1000, "ms", "≤ 1.3×", o / b <= 1.3,
                   anchor_name="bare Textual app", note=f"median of {len(ours)} runs")]
