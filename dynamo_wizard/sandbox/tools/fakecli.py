"""The fake `eksctl` / `helm` executables: record argv, hand the call to the sandbox service, stream its
output back, exit with its code. Standard library only, so a call costs a Python start and nothing more."""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import shutil
import sys
import time
from pathlib import Path

from .versions import EKSCTL_VERSION, HELM_COMMIT, HELM_VERSION

HELM_LOCAL = {"template", "lint", "package", "create", "dependency", "dep", "pull", "fetch", "repo", "show",
              "inspect", "search", "plugin", "env", "completion", "verify"}


def record(root: Path, tool: str, argv: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"tool": tool, "argv": argv, "cwd": os.getcwd(), "time": time.time(), "pid": os.getpid()})
    with (root / "calls.jsonl").open("a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(line + "\n")


def _real_tool(name: str, root: Path) -> str | None:
    """The real binary of the same name on PATH (not our fake), for helm's offline commands."""
    ours = (root / "bin").resolve()
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if d and Path(d).resolve() != ours:
            found = shutil.which(name, path=d)
            if found:
                return found
    return None


def unreachable(tool: str, detail: str) -> int:
    if tool == "eksctl":
        print("Error: checking AWS STS access – cannot get role ARN for current session: operation error STS: "
              f"GetCallerIdentity, https response error: {detail}", file=sys.stderr)
    else:
        print(f"Error: Kubernetes cluster unreachable: {detail}", file=sys.stderr)
    print("(the dynamo-wizard sandbox service is not running: start it with `dynamo-wizard sandbox start`)",
          file=sys.stderr)
    return 1


def main(tool: str, root_text: str) -> int:
    root = Path(root_text)
    argv = sys.argv[1:]
    record(root, tool, argv)
    if tool == "eksctl" and argv[:1] == ["version"]:
        print(EKSCTL_VERSION)
        return 0
    if tool == "helm" and argv[:1] == ["version"]:
        if "--short" in argv:
            print(f"{HELM_VERSION}+g{HELM_COMMIT[:7]}")
        else:
            print(f'version.BuildInfo{{Version:"{HELM_VERSION}", GitCommit:"{HELM_COMMIT}", GitTreeState:"clean", '
                  'GoVersion:"go1.24.7"}')
        return 0
    if tool == "helm" and argv and argv[0] in HELM_LOCAL:
        real = _real_tool("helm", root)
        if real:
            os.execv(real, [real, *argv])
        print(f"Error: the sandbox's helm does not run `helm {argv[0]}` and no real helm is on PATH",
              file=sys.stderr)
        return 1
    try:
        service = json.loads((root / "service.json").read_text(encoding="utf-8"))
        port = int(service["port"])
    except (OSError, ValueError, KeyError):
        return unreachable(tool, "dial tcp 127.0.0.1: connect: connection refused")
    env = {k: v for k, v in os.environ.items() if k in ("KUBECONFIG", "HOME", "PATH", "AWS_REGION",
                                                         "AWS_DEFAULT_REGION", "HELM_NAMESPACE", "USER")}
    body = json.dumps({"tool": tool, "argv": argv, "cwd": os.getcwd(), "env": env}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    try:
        conn.request("POST", "/_sandbox/run", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
    except OSError as err:
        return unreachable(tool, f"dial tcp 127.0.0.1:{port}: connect: {err}")
    if resp.status != 200:
        print(f"Error: sandbox service answered {resp.status}: {resp.read().decode(errors='replace')[:500]}",
              file=sys.stderr)
        return 1
    code = 1
    while True:
        raw = resp.readline()
        if not raw:
            break
        try:
            item = json.loads(raw)
        except ValueError:
            continue
        if "o" in item:
            sys.stdout.write(item["o"] + "\n")
            sys.stdout.flush()
        elif "e" in item:
            sys.stderr.write(item["e"] + "\n")
            sys.stderr.flush()
        elif "exit" in item:
            code = int(item["exit"])
    return code


def install(root: Path, python: str) -> dict[str, Path]:
    """Write the bin/eksctl and bin/helm entry scripts (executable, `#!` the given Python)."""
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for tool in ("eksctl", "helm"):
        path = bin_dir / tool
        text = (f"#!{python}\n# dynamo-wizard sandbox: fake {tool} (see dynamo_wizard/sandbox/tools)\n"
                "import sys\n"
                f"sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})\n"
                "from dynamo_wizard.sandbox.tools.fakecli import main\n"
                f"sys.exit(main({tool!r}, {str(root)!r}))\n")
        tmp = path.with_name(f".{tool}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o755)
        tmp.replace(path)
        paths[tool] = path
    return paths
