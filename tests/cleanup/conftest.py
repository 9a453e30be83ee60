"""Fixtures for the cleanup tests: moto's server over real HTTP, kmock through the real kubernetes client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from .kmock_thread import KmockThread

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
