"""Fixtures for the cleanup tests: moto's server over real HTTP, kmock through the real kubernetes client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from kubernetes import client
from moto.server import ThreadedMotoServer

from dynamo_wizard.cloud.owned import OwnedAws, OwnedResources
from dynamo_wizard.core.ledger import Ledger

from . import fake_tools
from .kmock_thread import KmockThread
from .world import NS, build_aws, build_kube

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    """A boto3 session against a freshly reset moto, with the environment the product reads."""
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    yield boto3.session.Session(region_name=REGION)


@pytest.fixture
def kube() -> Iterator[Any]:
    """(kmock server, ApiClient) — a fresh fake API server per test."""
    from kubernetes import client

    server = KmockThread().start()
    cfg = client.Configuration()
    cfg.host = server.url
    api = client.ApiClient(cfg)
    try:
        yield server, api
    finally:
        api.close()
        server.stop()


@dataclass
class Deployed:
    session: boto3.session.Session
    api: client.ApiClient
    world: Any
    calls: Path

    def backend(self, region: str) -> OwnedResources:
        return OwnedResources(region, aws=OwnedAws(region, self.session), kube_factory=lambda _c, _r: self.api)

    def tool_calls(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.calls.read_text().splitlines() if line.strip()]


@pytest.fixture
def deployed(aws: boto3.session.Session, kube: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Deployed:
    _, api = kube
    world = build_aws(aws)
    build_kube(api, finalizer=False)  # no operator runs in kmock to clear it (the sandbox has one)
    eksctl, helm, calls = fake_tools.install(tmp_path / "tools")
    monkeypatch.setenv("DYNAMO_WIZARD_EKSCTL", str(eksctl))
    monkeypatch.setenv("DYNAMO_WIZARD_HELM", str(helm))
    monkeypatch.setenv("DW_FAKE_CALLS", str(calls))
    monkeypatch.setenv("DYNAMO_WIZARD_SANDBOX", "1")  # sandbox pacing: poll fast
    monkeypatch.setenv("DYNAMO_WIZARD_SANDBOX_SPEED", "20")
    # What an apply would have written (kinds as the provisioning steps spell them).
    ledger = Ledger("demo")
    ledger.created("cluster", "demo", region="us-east-1")
    ledger.created("security-group", "dynamo-efs-sg", world.sg_id)
    ledger.created("efs-file-system", "dynamo-efs", world.fs_id)
    ledger.created("storage-class", "efs-sc-dynamic")
    ledger.created("pvc", "model-cache", "uid-1", namespace=NS, apiVersion="v1")
    ledger.created("helm-release", "dynamo-platform", namespace=NS)
    ledger.intent("dgd", "demo-agg", namespace=NS, apiVersion="nvidia.com/v1alpha1")
    return Deployed(aws, api, world, calls)
