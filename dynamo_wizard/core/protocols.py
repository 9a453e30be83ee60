"""What the provisioning steps need from the outside world, as protocols and small dataclasses.

`core.steps` talks only to these; `cloud/` implements them over boto3 (`cloud.aws_ops`), the kubernetes
client (`cloud.kube`) and subprocesses (`cloud.procs`), and `cloud.backends` builds the set from the
environment. Kubernetes objects travel as plain dicts in the API's JSON shape (what `core.manifests`
builds and what `core.podview` reads).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import WizardError

# --------------------------------------------------------------------------------------------------
# Errors the backends raise (steps catch these by type; each carries a message and a fix)


TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
"""HTTP answers that say "not now" rather than "no": throttled, or the server failed."""

TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded", "TooManyRequestsException",
    "RequestThrottled", "RequestThrottledException", "SlowDown", "InternalError", "InternalFailure",
    "InternalServerError", "ServiceUnavailable", "ServiceUnavailableException", "Unavailable",
})
"""AWS error codes of the same kind (what botocore's own retry treats as throttling or a server fault)."""


class BackendError(WizardError):
    """A call to AWS, the API server or a tool failed."""

    def __init__(self, message: str, fix: str = "", *, status: int | None = None, code: str = "") -> None:
        super().__init__(message, fix)
        self.status = status
        self.code = code

    @property
    def transient(self) -> bool:
        return self.status in TRANSIENT_STATUSES or self.code in TRANSIENT_CODES


class Unreachable(BackendError):
    """The endpoint did not answer (network, DNS, a cluster still coming up)."""

    @property
    def transient(self) -> bool:
        return True


class NotAuthorized(BackendError):
    """The endpoint answered 401/403 (an EKS access entry that has not propagated yet, wrong credentials)."""


class Conflict(BackendError):
    """The thing to create exists already."""


# --------------------------------------------------------------------------------------------------
# Cancellation, as cloud code sees it (core.runner.CancelToken implements it)


class Cancellation(Protocol):
    @property
    def cancelled(self) -> bool: ...

    @property
    def forced(self) -> bool: ...

    def wait(self, timeout: float | None) -> bool: ...


LineSink = Callable[[str], None]


# --------------------------------------------------------------------------------------------------
# AWS


@dataclass(frozen=True)
class ClusterInfo:
    """An EKS cluster as DescribeCluster tells it."""

    name: str
    arn: str
    status: str  # CREATING | ACTIVE | DELETING | FAILED | UPDATING | PENDING
    endpoint: str | None
    ca_data: str | None  # base64 PEM, as EKS returns it
    vpc_id: str | None
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    cluster_security_group_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    version: str | None = None
    region: str = ""


@dataclass(frozen=True)
class SubnetInfo:
    id: str
    zone: str
    vpc_id: str
    cidr: str
    public: bool  # eksctl's public subnets map public IPs and carry kubernetes.io/role/elb
    zone_id: str = ""


@dataclass(frozen=True)
class SecurityGroupInfo:
    id: str
    name: str
    vpc_id: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FileSystemInfo:
    id: str
    creation_token: str
    state: str  # creating | available | updating | deleting | deleted | error
    tags: dict[str, str] = field(default_factory=dict)
    name: str | None = None


@dataclass(frozen=True)
class MountTargetInfo:
    id: str
    file_system_id: str
    subnet_id: str
    zone: str
    state: str  # creating | available | deleting | deleted | error


class AwsOps(Protocol):
    """The AWS calls provisioning makes (and the deletes cleanup may share). Errors: WizardError subclasses
    with a message and a fix; `AwsConflict` when the thing exists already."""

    region: str

    def describe_cluster(self, name: str) -> ClusterInfo | None: ...

    def control_plane_zones(self) -> list[str]:
        """Zones of the region where EKS can run a control plane (for eksctl's availabilityZones)."""
        ...

    def stack_status(self, stack_name: str) -> str | None:
        """A CloudFormation stack's status (CREATE_IN_PROGRESS, ROLLBACK_COMPLETE...), None when there is none."""
        ...

    def vpc_cidr(self, vpc_id: str) -> str: ...

    def describe_subnets(self, subnet_ids: Sequence[str]) -> list[SubnetInfo]: ...

    def find_security_group(self, vpc_id: str, name: str) -> SecurityGroupInfo | None: ...

    def create_security_group(self, vpc_id: str, name: str, description: str,
                              tags: Mapping[str, str]) -> SecurityGroupInfo: ...

    def allow_nfs_from(self, group_id: str, cidr: str) -> bool:
        """Allow TCP 2049 from `cidr`; False when the rule was already there."""
        ...

    def find_file_system(self, creation_token: str) -> FileSystemInfo | None: ...

    def create_file_system(self, creation_token: str, tags: Mapping[str, str]) -> FileSystemInfo: ...

    def describe_file_system(self, file_system_id: str) -> FileSystemInfo | None: ...

    def mount_targets(self, file_system_id: str) -> list[MountTargetInfo]: ...

    def create_mount_target(self, file_system_id: str, subnet_id: str,
                            security_group_ids: Sequence[str]) -> MountTargetInfo: ...


# --------------------------------------------------------------------------------------------------
# Kubernetes


@dataclass(frozen=True)
class KubeAccess:
    """How to reach a cluster's API server: what eksctl's kubeconfig would hold, without a file."""

    cluster: str
    endpoint: str
    ca_data: str | None  # base64 PEM; None for an http:// endpoint (the sandbox)
    token: Callable[[], str]  # a fresh bearer token (EKS tokens live 15 minutes)


@dataclass(frozen=True)
class ApplyResult:
    action: str  # created | patched | unchanged
    object: dict[str, Any]


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class PodSink(Protocol):
    """Where a pod watch delivers (core.podview.PodView implements it)."""

    def pod_changed(self, event_type: str, pod: Mapping[str, Any]) -> None: ...

    def event_seen(self, event: Mapping[str, Any]) -> None: ...

    def relisted(self, pods: Any) -> None: ...


class Kube(Protocol):
    """A cluster's API server. Objects are dicts; labels are filtered on the client as well (kmock and some
    proxies ignore label selectors)."""

    def server_version(self) -> str: ...

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None: ...

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]: ...

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]: ...

    def patch(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Merge-patch an existing object with `obj`."""
        ...

    def apply(self, obj: Mapping[str, Any]) -> ApplyResult:
        """Create, or merge-patch when it exists (unchanged when the patch changes nothing)."""
        ...

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
               wait: float | None = None, cancel: Cancellation | None = None,
               propagation: str = "Background") -> bool:
        """False when it was not there; with `wait`, returns once it is gone (or raises on timeout)."""
        ...

    def events_for(self, namespace: str, kind: str, name: str) -> builtins.list[dict[str, Any]]:
        """Events about one object, oldest first."""
        ...

    def latest_event(self, namespace: str, kind: str, name: str) -> dict[str, Any] | None: ...

    def nodeclaims(self, nodepools: builtins.list[str] | None = None) -> builtins.list[dict[str, Any]]: ...

    def read_log(self, namespace: str, pod: str, container: str | None = None,
                 tail_lines: int | None = None) -> str: ...

    def follow_log(self, namespace: str, pod: str, container: str | None = None, *,
                   cancel: Cancellation | None = None) -> Iterator[str]:
        """Lines as the container writes them, until it ends or `cancel` is set."""
        ...

    def watch_pods(self, namespace: str, sink: PodSink, stop: Cancellation) -> None:
        """Feed `sink` with the namespace's pods and events until `stop`; reconnects after a dropped stream."""
        ...

    def proxy(self, method: str, namespace: str, service: str, port: int, path: str,
              body: Mapping[str, Any] | None = None, timeout: float = 60.0) -> HttpReply:
        """An HTTP request to a Service through the API server's service proxy (no port-forward needed)."""
        ...


# --------------------------------------------------------------------------------------------------
# Command-line tools


@dataclass(frozen=True)
class ToolResult:
    returncode: int
    last_lines: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Tools(Protocol):
    """eksctl and helm, with output streamed line by line (stdout and stderr, in order)."""

    def eksctl(self, args: Sequence[str], on_line: LineSink, cancel: Cancellation, *,
               interruptible: bool = False) -> ToolResult:
        """`interruptible=False`: a soft cancel lets it finish; only a forced cancel stops it."""
        ...

    def helm(self, args: Sequence[str], access: KubeAccess, on_line: LineSink, cancel: Cancellation, *,
             interruptible: bool = False) -> ToolResult:
        """helm with a temporary 0600 kubeconfig for `access`, deleted afterwards."""
        ...


# --------------------------------------------------------------------------------------------------
# Everything provisioning needs


class ProvisionBackends(Protocol):
    @property
    def aws(self) -> AwsOps: ...

    @property
    def tools(self) -> Tools: ...

    def kube_access(self, cluster: ClusterInfo) -> KubeAccess: ...

    def connect(self, access: KubeAccess) -> Kube: ...
