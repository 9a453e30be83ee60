"""Backends for the wizard's Pilot and snapshot tests.

Until the sandbox fixture is available, the wizard talks to moto over real HTTP (an in-process
ThreadedMotoServer on 127.0.0.1) with the sandbox's own gap fills (`sandbox.awsgaps`: reservations,
quotas, prices) and its seeded data (`default_sandbox_state`), through the product's real
`cloud.aws.AwsDiscovery`. The server and the discovery live for the session (discovering 24 regions
in moto takes seconds; the discovery caches what it read), the AWS environment only for each test.

Time is frozen: the seeded reservations are placed relative to FIXED_NOW and the app's clock says
FIXED_NOW, so what the screens show never depends on the day the tests run.
"""

from __future__ import annotations

import logging
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from dynamo_wizard.cloud.aws import AwsDiscovery
from dynamo_wizard.sandbox.awsgaps import SandboxState, default_sandbox_state, install_botocore_fills
from dynamo_wizard.tui.app import WizardApp

FIXED_NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FAKE_KEYS = {"AWS_ACCESS_KEY_ID": "AKIAWIZARDTESTKEY123", "AWS_SECRET_ACCESS_KEY": "wizard-test-secret-0123456789"}


@dataclass
class WizardAws:
    endpoint: str
    state: SandboxState
    session: boto3.Session
    discovery: AwsDiscovery


def aws_environment(endpoint: str, tmp: Path) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        **FAKE_KEYS,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture(scope="session")
def wizard_aws_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WizardAws]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    tmp = tmp_path_factory.mktemp("wizard-aws")
    with pytest.MonkeyPatch.context() as mp:  # only while the session objects are made
        for key, value in aws_environment(endpoint, tmp).items():
            mp.setenv(key, value)
        for key in ("AWS_REGION", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            mp.delenv(key, raising=False)
        state = default_sandbox_state(now=FIXED_NOW)
        session = boto3.Session()
        install_botocore_fills(session, state)
        discovery = AwsDiscovery(session, max_workers=8)
    yield WizardAws(endpoint, state, session, discovery)
    discovery.close()
    server.stop()


@pytest.fixture
def wizard_aws(wizard_aws_server: WizardAws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> WizardAws:
    """The session's moto-backed discovery, with the AWS environment set for this test."""
    for key, value in aws_environment(wizard_aws_server.endpoint, tmp_path).items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_REGION", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "HF_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    # Tools as the product finds them: none on this machine's PATH unless a test provides them.
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    return wizard_aws_server


def make_app(discovery: Any, **kwargs: Any) -> WizardApp:
    kwargs.setdefault("now", lambda: FIXED_NOW)
    return WizardApp(discovery, **kwargs)


# Where the tools are found is shown on screen (preflight verdicts), so it must be the same on every run
# and every machine: links in one fixed folder.
TOOLS_DIR = Path(tempfile.gettempdir()) / "dynamo-wizard-wizard-tests" / "bin"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def wizard_tools(monkeypatch: pytest.MonkeyPatch) -> Path:
    """eksctl has no binary that runs here: a stand-in answering `eksctl version` as eksctl does. helm and
    kubectl are the real binaries of .tools/bin (scripts/get-k8s-tools.sh)."""
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    eksctl = TOOLS_DIR / "eksctl"
    eksctl.write_text("#!/bin/sh\n[ \"$1\" = version ] && echo 0.215.0 && exit 0\necho \"eksctl stand-in: $*\" >&2\nexit 1\n")
    eksctl.chmod(eksctl.stat().st_mode | stat.S_IXUSR)
    for name in ("helm", "kubectl"):
        link = TOOLS_DIR / name
        target = REPO / ".tools" / "bin" / name
        if not target.exists():
            pytest.fail(f"{target} is missing: run scripts/get-k8s-tools.sh .tools/bin")
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    for name, var in (("eksctl", "DYNAMO_WIZARD_EKSCTL"), ("helm", "DYNAMO_WIZARD_HELM"),
                      ("kubectl", "DYNAMO_WIZARD_KUBECTL")):
        monkeypatch.setenv(var, str(TOOLS_DIR / name))
    return TOOLS_DIR


# The sandbox service (tests/conftest.py: one service per test module) ---------------------------------


@pytest.fixture(scope="module")
def sandbox_discovery(sandbox_service: Any) -> Iterator[AwsDiscovery]:
    """The product's discovery against the module's sandbox service, shared by the module's tests (it caches
    what it read: reading 24 regions takes seconds)."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in sandbox_service.env.items():
            mp.setenv(key, value)
        discovery = AwsDiscovery(boto3.Session(), max_workers=8)
    yield discovery
    discovery.close()


@pytest.fixture
def wizard_sandbox(sandbox_env: Any, sandbox_discovery: AwsDiscovery, monkeypatch: pytest.MonkeyPatch,
                   tmp_path: Path) -> AwsDiscovery:
    """This test pointed at the sandbox as `dynamo-wizard --sandbox` does, with a state directory of its own
    (drafts and ledgers of one test never reach another)."""
    home = tmp_path / "wizard-home"
    home.mkdir()
    monkeypatch.setenv("DYNAMO_WIZARD_HOME", str(home))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return sandbox_discovery
