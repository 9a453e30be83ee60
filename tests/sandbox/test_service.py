"""The sandbox service's lifecycle: detached start, the contract's environment, one service per directory,
the fake tools, the `dynamo-wizard sandbox …` command, stop and reset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dynamo_wizard.sandbox import client

CLI = [sys.executable, "-m", "dynamo_wizard"]


@pytest.fixture
def sandbox_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "sandbox"
    monkeypatch.setenv("DYNAMO_WIZARD_SANDBOX_DIR", str(d))
    monkeypatch.setenv("DYNAMO_WIZARD_SANDBOX_WARMUP", "0")  # no AWS calls here: skip loading moto's data
    yield d
    client.stop(d)


def _run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)  # type: ignore[call-overload]


def test_activate_starts_a_detached_service_and_sets_the_contract_environment(sandbox_dir: Path) -> None:
    code = "import json; from dynamo_wizard.sandbox.client import activate; print(json.dumps(activate(speed=50)))"
    out = _run([sys.executable, "-c", code])
    assert out.returncode == 0, out.stderr
    env = json.loads(out.stdout)
    info = json.loads((sandbox_dir / "service.json").read_text())
    # the caller has exited; the service goes on, as AWS would
    assert client.running(sandbox_dir) is not None and info["speed"] == 50
    assert env["AWS_ENDPOINT_URL"] == info["url"] and info["url"].startswith("http://127.0.0.1:")
    assert env["DYNAMO_WIZARD_SANDBOX"] == "1"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    assert env["AWS_DEFAULT_REGION"] == env["AWS_REGION"] == os.environ.get("AWS_REGION", "us-east-1")
    assert env["DYNAMO_WIZARD_HOME"] == str(sandbox_dir / "wizard-home")
    assert env["KUBECONFIG"] == str(sandbox_dir / "kubeconfig")
    for tool in ("EKSCTL", "HELM"):
        path = Path(env[f"DYNAMO_WIZARD_{tool}"])
        assert path.parent == sandbox_dir / "bin" and os.access(path, os.X_OK)
        assert path.read_text().splitlines()[0] == f"#!{sys.executable}"
    version = _run([env["DYNAMO_WIZARD_EKSCTL"], "version"])
    assert version.returncode == 0 and version.stdout.strip() == "0.230.0"
    helm = _run([env["DYNAMO_WIZARD_HELM"], "version", "--short"])
    assert helm.stdout.strip() == "v3.19.0+g3d8990f"
    calls = [json.loads(line) for line in (sandbox_dir / "calls.jsonl").read_text().splitlines()]
    assert [(c["tool"], c["argv"]) for c in calls] == [("eksctl", ["version"]), ("helm", ["version", "--short"])]


def test_one_service_per_directory_even_when_starts_race(sandbox_dir: Path) -> None:
    pids: list[int] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            pids.append(int(client.start(directory=sandbox_dir)["pid"]))
        except BaseException as err:  # collected for the assertion below
            errors.append(err)
    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not errors and len(set(pids)) == 1 and len(pids) == 3
    second = _run([sys.executable, "-m", "dynamo_wizard.sandbox.service", "--dir", str(sandbox_dir)])
    assert second.returncode == 3 and "already runs" in second.stderr


def test_the_sandbox_command_start_env_status_stop(sandbox_dir: Path) -> None:
    start = _run([*CLI, "--sandbox-speed", "40", "sandbox", "start", "--faults", "throttle=0.25,pending=no capacity"])
    assert start.returncode == 0, start.stderr
    assert "sandbox running at http://127.0.0.1:" in start.stdout
    env_out = _run([*CLI, "sandbox", "env"])
    exports = dict(line[len("export "):].split("=", 1) for line in env_out.stdout.splitlines())
    info = json.loads((sandbox_dir / "service.json").read_text())
    assert exports["AWS_ENDPOINT_URL"] == info["url"] and exports["DYNAMO_WIZARD_SANDBOX"] == "1"
    # the lines are shell: a plain shell takes them and reaches the sandbox
    shell = _run(["bash", "-c", 'eval "$(' + " ".join(CLI) + ' sandbox env)"; '
                  'curl -s "$AWS_ENDPOINT_URL/_sandbox/health" || python3 -c "import os,urllib.request;'
                  'print(urllib.request.urlopen(os.environ[\'AWS_ENDPOINT_URL\']+\'/_sandbox/health\').read().decode())"'])
    assert json.loads(shell.stdout)["pid"] == info["pid"]
    status = _run([*CLI, "sandbox", "status"])
    assert status.returncode == 0
    assert "speed 40" in status.stdout and "throttle=0.25" in status.stdout and "pending=no capacity" in status.stdout
    assert "clusters: none" in status.stdout
    stop = _run([*CLI, "sandbox", "stop"])
    assert stop.returncode == 0 and "sandbox stopped" in stop.stdout
    assert client.running(sandbox_dir) is None
    assert not (sandbox_dir / "service.json").exists()
    after = _run([*CLI, "sandbox", "status"])
    assert after.returncode == 1 and "not running" in after.stdout
    # the fake tools say what is wrong when the service is down
    eksctl = _run([str(sandbox_dir / "bin" / "eksctl"), "get", "cluster", "--region", "us-east-1"])
    assert eksctl.returncode == 1 and "dynamo-wizard sandbox start" in eksctl.stderr
    bad = _run([*CLI, "sandbox", "start", "--faults", "thunder=1"])
    assert bad.returncode == 1 and "unknown fault 'thunder'" in bad.stderr and "Traceback" not in bad.stderr


def test_reset_gives_a_fresh_world(sandbox_dir: Path) -> None:
    first = client.start(directory=sandbox_dir)
    helm = sandbox_dir / "bin" / "helm"
    _run([str(helm), "version"])
    assert (sandbox_dir / "calls.jsonl").exists()
    (sandbox_dir / "wizard-home" / "deployments" / "old").mkdir(parents=True)
    fresh = client.reset(sandbox_dir)
    assert fresh["pid"] != first["pid"] and client.running(sandbox_dir) is not None
    assert not (sandbox_dir / "calls.jsonl").exists() and not (sandbox_dir / "wizard-home").exists()


def test_a_service_running_older_code_is_restarted_and_keeps_its_world(sandbox_dir: Path) -> None:
    import boto3

    first = client.start(directory=sandbox_dir)
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=first["url"], aws_access_key_id="a",
                       aws_secret_access_key="b")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    assert client.start(directory=sandbox_dir)["pid"] == first["pid"]  # same code: the same service
    # As if the product had been upgraded (or edited) since this service started.
    stale = dict(first, code="0000000000000000")
    (sandbox_dir / "service.json").write_text(json.dumps(stale))
    second = client.start(directory=sandbox_dir)
    assert second["pid"] != first["pid"] and second["code"] == first["code"]
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=second["url"], aws_access_key_id="a",
                       aws_secret_access_key="b")
    assert vpc in [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]
