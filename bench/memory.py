"""Peak memory of a full sandbox apply (target ≤ 250 MB): the wizard's own process, from confirm to the
passing smoke test, of `dynamo-wizard --sandbox apply examples/agg.yaml --yes`. The sandbox service is
started first (it stands in for AWS and the cluster, so it is not counted; its peak is in the note).
Anchor: a bare Python process that only imports boto3 and kubernetes, for scale.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .result import Result, median

ROOT = Path(__file__).resolve().parents[1]


def _peak_child_mb(argv: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Peak RSS (MB) of one child process run to completion, measured with a fresh fork server: a
    helper process runs it and reports its own RUSAGE_CHILDREN, so earlier children do not mask it."""
    probe = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode)\n"
        "sys.stderr.write(p.stdout[-2000:] + p.stderr[-2000:])\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, env=env, timeout=900)
    kb, rc = proc.stdout.split()
    return int(kb) / 1024, int(rc), proc.stderr


def _service_peak_mb(sandbox_dir: Path) -> float | None:
    import json

    try:
        pid = json.loads((sandbox_dir / "service.json").read_text())["pid"]
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, KeyError, ValueError):
        return None
    return None


def run(runs: int = 5) -> list[Result]:
    peaks: list[float] = []
    service: float | None = None
    wizard = [sys.executable, "-m", "dynamo_wizard"]
    for _ in range(max(1, min(runs, 3))):
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, DYNAMO_WIZARD_SANDBOX_DIR=str(Path(tmp) / "sandbox"),
                       DYNAMO_WIZARD_HOME=str(Path(tmp) / "home"), HF_TOKEN="hf_benchdummytoken0000000000")
            subprocess.run([*wizard, "--sandbox-speed", "10", "sandbox", "start"], env=env, check=True,
                           capture_output=True, timeout=120)
            try:
                peak, rc, tail = _peak_child_mb([*wizard, "--sandbox", "--sandbox-speed", "10", "apply",
                                                 str(ROOT / "examples" / "agg.yaml"), "--yes"], env)
                if rc != 0:
                    raise RuntimeError(f"sandbox apply failed (exit {rc}): {tail[-800:]}")
                peaks.append(peak)
                service = _service_peak_mb(Path(tmp) / "sandbox")
            finally:
                subprocess.run([*wizard, "sandbox", "stop"], env=env, capture_output=True, timeout=120)
    bare, _, _ = _peak_child_mb([sys.executable, "-c", "import boto3, kubernetes.client"], dict(os.environ))
    p = median(peaks)
    return [Result("peak memory of a full sandbox apply", p, bare, "MB", "≤ 250 MB", p <= 250,
                   "python importing boto3 + kubernetes",
                   note=f"wizard process only, median of {len(peaks)}; sandbox service peak "
                        f"{service:.0f} MB" if service else "wizard process only")]
