"""cloud.eks_token: a bearer token made from a presigned STS GetCallerIdentity URL (no AWS CLI)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from dynamo_wizard.cloud.eks_token import EksTokenSource, url_from_token


def test_token_is_a_presigned_sts_url_with_the_cluster_header(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "AKIATOKENTEST0000000", "AWS_SECRET_ACCESS_KEY": "not-a-real-secret",
                       "AWS_CONFIG_FILE": str(tmp_path / "none"),
                       "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    now = [0.0]
    source = EksTokenSource("my-cluster", "us-west-2", boto3.Session(), clock=lambda: now[0])
    token = source()
    assert token.startswith("k8s-aws-v1.") and not token.endswith("=")
    url = url_from_token(token)
    assert url.startswith("https://sts.") and "Action=GetCallerIdentity" in url
    assert "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id" in url and "X-Amz-Expires=60" in url
    made = []
    original = source.make_token
    source.make_token = lambda: made.append(1) or original()  # type: ignore[method-assign]
    assert source() == token and made == []  # cached while young
    now[0] += 11 * 60
    assert source().startswith("k8s-aws-v1.") and made == [1]  # remade before EKS's 15 minutes run out
