"""An endpoint that answers with something that is not AWS's XML or JSON (a proxy's page, a server's bare
500) gives a clear message, never a traceback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from dynamo_wizard.cloud.aws import AwsDiscovery, CredentialsError
from dynamo_wizard.cloud.aws_ops import AwsOps
from dynamo_wizard.core.protocols import BackendError


class _Garbled(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = b"500 Internal Server Error\n\nServer got itself in trouble"
        self.send_response(500)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def garbled_session() -> Iterator[boto3.Session]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Garbled)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_port}")
            mp.setenv("AWS_MAX_ATTEMPTS", "1")
            yield boto3.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1")
    finally:
        server.shutdown()


def test_identity_through_a_garbled_answer_is_a_clear_error(garbled_session: boto3.Session) -> None:
    with AwsDiscovery(garbled_session, max_workers=2, refresh=True) as d, pytest.raises(CredentialsError) as err:
        d.identity()
    assert "sts.GetCallerIdentity" in err.value.message and "ResponseParserError" in err.value.message
    assert err.value.fix


def test_a_provisioning_call_through_a_garbled_answer_is_a_backend_error(garbled_session: boto3.Session) -> None:
    ops = AwsOps("us-east-1", garbled_session)
    with pytest.raises(BackendError) as err:
        ops.control_plane_zones()
    assert "ec2.DescribeAvailabilityZones" in err.value.message and err.value.transient
