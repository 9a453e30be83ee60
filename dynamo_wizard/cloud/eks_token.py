"""EKS bearer tokens from a presigned STS GetCallerIdentity URL: no AWS CLI, no aws-iam-authenticator.

What `aws eks get-token` does: presign `GET sts:GetCallerIdentity` with the header `x-k8s-aws-id: <cluster>`
signed in, then send `k8s-aws-v1.` + base64url(URL) without padding as the bearer token. The API server
asks STS who signed it. EKS accepts a token for 15 minutes; `EksTokenSource` makes a fresh one well before.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_HEADER = "x-k8s-aws-id"
PRESIGN_EXPIRES = 60  # seconds the URL itself claims; EKS honours the token for 15 minutes regardless
REFRESH_AFTER = 10 * 60.0  # make a new token after 10 of its 15 minutes


def token_from_url(url: str) -> str:
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii").rstrip("=")


def url_from_token(token: str) -> str:
    """The presigned URL inside a token (tests and the sandbox read the cluster name from it)."""
    if not token.startswith(TOKEN_PREFIX):
        raise ValueError("not an EKS token")
    body = token[len(TOKEN_PREFIX):]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8")


class EksTokenSource:
    """Callable giving a valid token for one cluster; thread-safe, refreshed every 10 minutes."""

    def __init__(self, cluster: str, region: str, session: boto3.Session | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cluster = cluster
        self.region = region
        self._session = session or boto3.Session()
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._made_at = 0.0
        self._client: Any = None

    def _sts(self) -> Any:
        if self._client is None:
            client = self._session.client("sts", region_name=self.region)
            cluster = self.cluster

            def add_cluster_header(request: Any, **_: Any) -> None:
                # Signed into the URL (it is among the signed headers), so the API server can check it.
                request.headers[CLUSTER_HEADER] = cluster

            client.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_header)
            self._client = client
        return self._client

    def make_token(self) -> str:
        url = self._sts().generate_presigned_url(
            "get_caller_identity", Params={}, ExpiresIn=PRESIGN_EXPIRES, HttpMethod="GET")
        return token_from_url(url)

    def __call__(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or now - self._made_at > REFRESH_AFTER:
                self._token = self.make_token()
                self._made_at = now
            return self._token
