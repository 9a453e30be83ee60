"""moto over real HTTP for the cloud tests, with moto's gaps filled by our botocore handlers.

Fixtures (reusable by other areas' tests under tests/cloud):
- `moto_endpoint`: one in-process ThreadedMotoServer on 127.0.0.1 (random port) for the session.
- `aws_env`: the environment a test's boto3 sees: AWS_ENDPOINT_URL at moto, fake keys, us-east-1, no
  profile or config file from the user's home, no instance metadata lookups.
- `gap_state`: a fresh `default_sandbox_state()` (quotas, reservations, prices, add-ons) per test.
- `aws_session`: a boto3 Session with the gap handlers installed (`.fills` holds the handle).
- `discovery`: an AwsDiscovery on that session.
- `request_log`: every HTTP request the session's clients send, as "service.Operation" strings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from dynamo_wizard.cloud.aws import AwsDiscovery
from dynamo_wizard.sandbox.awsgaps import SandboxState, default_sandbox_state, install_botocore_fills

FAKE_ACCESS_KEY = "AKIAMOTOTESTKEY12345"
FAKE_SECRET_KEY = "moto-secret-never-printed-0123456789abcd"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_REGION", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    return env


@pytest.fixture
def gap_state() -> SandboxState:
    return default_sandbox_state()


@pytest.fixture
def aws_session(aws_env: dict[str, str], gap_state: SandboxState) -> boto3.Session:
    session = boto3.Session()
    session.fills = install_botocore_fills(session, gap_state)  # type: ignore[attr-defined]
    return session


@pytest.fixture
def request_log(aws_session: boto3.Session) -> list[str]:
    """Requests as sent (after the gap handlers are registered, so it sees every attempt, retries too)."""
    log: list[str] = []

    def record(event_name: str, **_: Any) -> None:
        # event_name: before-send.<service-id>.<Operation>
        parts = event_name.split(".")
        log.append(f"{parts[1]}.{parts[2]}" if len(parts) > 2 else event_name)

    aws_session.events.register_first("before-send", record)
    return log


@pytest.fixture
def discovery(aws_session: boto3.Session) -> Iterator[AwsDiscovery]:
    d = AwsDiscovery(aws_session, max_workers=8)
    yield d
    d.close()
