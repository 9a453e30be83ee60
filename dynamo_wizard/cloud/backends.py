"""The real backends provisioning runs on, built from the environment.

`build_backends(region)` gives `core.protocols.ProvisionBackends`: boto3 with the standard credential
chain (`AWS_PROFILE`, SSO, `AWS_ENDPOINT_URL` for the sandbox and tests), eksctl and helm from
`DYNAMO_WIZARD_EKSCTL` / `DYNAMO_WIZARD_HELM` or PATH, and Kubernetes clients made from EKS
DescribeCluster (endpoint, CA) plus an STS-presigned token. The same code runs against AWS and against
the sandbox: only the environment differs.

`pod_watch_for(cluster, region)` is what the provision screen's pod table runs: it waits for the cluster
to exist, then follows the namespace's pods and events into a `PodSink` (core.podview.PodView), until
told to stop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from ..core.protocols import BackendError, ClusterInfo, KubeAccess, PodSink
from .aws_ops import AwsOps
from .eks_token import EksTokenSource
from .kube import KubeClient
from .procs import ProcessTools


@dataclass
class Backends:
    """core.protocols.ProvisionBackends over boto3, the kubernetes client and subprocesses."""

    aws: AwsOps
    tools: ProcessTools
    session: boto3.Session
    _tokens: dict[str, EksTokenSource] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def region(self) -> str:
        return self.aws.region

    def token_source(self, cluster: str) -> EksTokenSource:
        with self._lock:
            if cluster not in self._tokens:
                self._tokens[cluster] = EksTokenSource(cluster, self.region, self.session)
            return self._tokens[cluster]

    def kube_access(self, cluster: ClusterInfo) -> KubeAccess:
        if not cluster.endpoint:
            raise BackendError(f"cluster {cluster.name} has no API endpoint yet ({cluster.status})",
                               "wait until it is ACTIVE, then run the same command again")
        return KubeAccess(cluster=cluster.name, endpoint=cluster.endpoint, ca_data=cluster.ca_data,
                          token=self.token_source(cluster.name))

    def connect(self, access: KubeAccess) -> KubeClient:
        return KubeClient.from_access(access)


def build_backends(region: str, *, session: boto3.Session | None = None,
                   env: Mapping[str, str] | None = None) -> Backends:
    """Backends for `region` from the environment (credentials chain, endpoint overrides, tool paths)."""
    session = session or boto3.Session()
    return Backends(aws=AwsOps(region, session), tools=ProcessTools(env), session=session)


def pod_watch_for(cluster_name: str, region: str, *, backends: Backends | None = None,
                  poll: float = 5.0) -> Callable[[str, PodSink, Any], None]:
    """A `(namespace, sink, stop)` pod watch for the provision screen: waits until the cluster answers
    (it may not exist when the run starts), then watches its pods and events until `stop` is set."""

    def watch(namespace: str, sink: PodSink, stop: Any) -> None:
        nonlocal backends
        if backends is None:
            backends = build_backends(region)
        while not _is_set(stop):
            try:
                info = backends.aws.describe_cluster(cluster_name)
                if info is not None and info.status == "ACTIVE" and info.endpoint:
                    kube = backends.connect(backends.kube_access(info))
                    try:
                        kube.watch_pods(namespace, sink, stop)
                    finally:
                        kube.close()
                    return
            except BackendError:
                pass  # not reachable yet, or credentials are still settling: try again shortly
            stop.wait(poll)

    return watch


def _is_set(stop: Any) -> bool:
    is_set = getattr(stop, "is_set", None)
    return bool(is_set()) if callable(is_set) else bool(getattr(stop, "cancelled", False))
