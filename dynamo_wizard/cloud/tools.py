"""The command-line tools the wizard runs: where they are, which version, and whether it is supported.

eksctl must be 0.200 or later (the first with `autoModeConfig`); helm 3 or 4. kubectl is optional: the
wizard talks to the API server itself, kubectl only helps a user look around. `DYNAMO_WIZARD_EKSCTL`,
`DYNAMO_WIZARD_HELM` and `DYNAMO_WIZARD_KUBECTL` override the PATH lookup (tests and the sandbox point
them at their fakes).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..core.inventory import ToolCheck

MIN_EKSCTL = (0, 200, 0)
HELM_MAJORS = (3, 4)
VERSION_TIMEOUT_S = 15.0
ENV_OVERRIDES = {"eksctl": "DYNAMO_WIZARD_EKSCTL", "helm": "DYNAMO_WIZARD_HELM", "kubectl": "DYNAMO_WIZARD_KUBECTL"}
_SEMVER_RE = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


def find_tool(name: str) -> str | None:
    """The override from the environment when set (even if it does not exist: it is reported), else PATH."""
    override = os.environ.get(ENV_OVERRIDES.get(name, ""), "")
    if override:
        return override
    return shutil.which(name)


def parse_version(text: str) -> tuple[int, int, int] | None:
    """'0.230.0', 'v3.19.0+g3d8990f', '0.231.0-dev+abc' -> (major, minor, patch)."""
    m = _SEMVER_RE.search(text or "")
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def _run(argv: list[str]) -> tuple[int, str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=VERSION_TIMEOUT_S, check=False,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return 127, "not found"
    except PermissionError:
        return 126, "not executable"
    except subprocess.TimeoutExpired:
        return 124, f"did not answer within {VERSION_TIMEOUT_S:g} s"
    except OSError as err:
        return 1, str(err)
    return proc.returncode, (proc.stdout or "") + (proc.stderr or "")


def _eksctl_version(path: str) -> tuple[str | None, str]:
    rc, out = _run([path, "version"])
    v = parse_version(out) if rc == 0 else None
    return (".".join(map(str, v)) if v else None), out.strip()


def _helm_version(path: str) -> tuple[str | None, str]:
    rc, out = _run([path, "version", "--short"])
    v = parse_version(out) if rc == 0 else None
    return (".".join(map(str, v)) if v else None), out.strip()


def _kubectl_version(path: str) -> tuple[str | None, str]:
    rc, out = _run([path, "version", "--client", "-o", "json"])
    if rc == 0:
        try:
            git = json.loads(out[out.index("{"):]).get("clientVersion", {}).get("gitVersion", "")
        except (ValueError, AttributeError):
            git = out
        v = parse_version(git)
        if v:
            return ".".join(map(str, v)), out.strip()
    return None, out.strip()


def _judge(name: str, path: str | None, probe: Callable[[str], tuple[str | None, str]]) -> ToolCheck:
    if not path:
        return ToolCheck(name, None, None, False, f"{name} not found on PATH")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        return ToolCheck(name, path, None, False, f"{path} is not an executable file")
    version, output = probe(path)
    if version is None:
        first = output.splitlines()[0][:120] if output else "no output"
        return ToolCheck(name, path, None, False, f"{name} at {path} did not report a version ({first})")
    v = parse_version(version) or (0, 0, 0)
    if name == "eksctl" and v < MIN_EKSCTL:
        return ToolCheck(name, path, version, False,
                         f"eksctl {version} at {path} is too old: autoModeConfig needs 0.200 or later")
    if name == "helm" and v[0] not in HELM_MAJORS:
        return ToolCheck(name, path, version, False, f"helm {version} at {path} is not supported: use helm 3 or 4")
    return ToolCheck(name, path, version, True, f"{name} {version} at {path}")


_PROBES: dict[str, Callable[[str], tuple[str | None, str]]] = {
    "eksctl": _eksctl_version, "helm": _helm_version, "kubectl": _kubectl_version,
}


def check_tool(name: str) -> ToolCheck:
    return _judge(name, find_tool(name), _PROBES[name])


def check_tools(names: tuple[str, ...] = ("eksctl", "helm", "kubectl")) -> list[ToolCheck]:
    """All tools at once (each `version` call is a process start; run them side by side)."""
    with ThreadPoolExecutor(max_workers=len(names) or 1, thread_name_prefix="tool-check") as pool:
        return list(pool.map(check_tool, names))
