"""`eksctl` inside the sandbox: create/delete/get cluster acting on moto (a CloudFormation stack with the VPC
and IAM roles as eksctl builds them, the EKS cluster, add-ons with pod identity roles) and printing eksctl's
log lines (tool-output-and-timings.md §1) on the sandbox clock."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from typing import Any, NoReturn

import yaml

from . import kubeconfig
from .base import ToolContext, ToolExit, eksctl_line
from .versions import EKSCTL_VERSION as VERSION

EKS_UNSUPPORTED_ZONE_IDS = {"use1-az3", "usw1-az2", "cac1-az3"}


def _info(ctx: ToolContext, msg: str) -> None:
    ctx.out(eksctl_line("ℹ", msg))


def _ok(ctx: ToolContext, msg: str) -> None:
    ctx.out(eksctl_line("✔", msg))


def _warn(ctx: ToolContext, msg: str) -> None:
    ctx.out(eksctl_line("!", msg))


def _fail(ctx: ToolContext, msg: str) -> None:
    ctx.out(eksctl_line("✖", msg))


def _error(ctx: ToolContext, msg: str) -> NoReturn:
    ctx.err(f"Error: {msg}")
    raise ToolExit(1)


def _flags(argv: list[str]) -> tuple[list[str], dict[str, str | bool]]:
    pos: list[str] = []
    flags: dict[str, str | bool] = {}
    booleans = {"wait", "force", "disable-nodegroup-eviction", "dry-run", "approve", "help", "h",
                "write-kubeconfig", "set-kubeconfig-context", "auto-kubeconfig", "verbose"}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-") and a != "-":
            key, eq, value = a.lstrip("-").partition("=")
            if eq:
                flags[key] = value if value not in ("true", "false") else value == "true"
            elif key in booleans:
                flags[key] = True
            elif i + 1 < len(argv):
                flags[key] = argv[i + 1]
                i += 1
            else:
                flags[key] = True
        else:
            pos.append(a)
        i += 1
    aliases = {"f": "config-file", "n": "name", "r": "region", "o": "output", "v": "verbose", "w": "wait"}
    return pos, {aliases.get(k, k): v for k, v in flags.items()}


def _zone_suffix(zone: str) -> str:
    return zone.replace("-", "").upper()


def subnet_cidrs(zones: list[str]) -> dict[str, tuple[str, str]]:
    """eksctl's split of 192.168.0.0/16: /19 blocks for up to 4 zones, /20 for 5-8; public i, private i+N."""
    n = len(zones)
    size = 19 if n <= 4 else 20
    step = 32 if size == 19 else 16
    return {z: (f"192.168.{step * i}.0/{size}", f"192.168.{step * (i + n)}.0/{size}") for i, z in enumerate(zones)}


def _tags_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def cluster_template(name: str, zones: list[str], tags: dict[str, str]) -> dict[str, Any]:
    """The cluster stack as eksctl builds it for Auto Mode. The IAM roles come without eksctl's AWS-managed
    policy attachments: loading moto's copy of every AWS-managed policy costs seconds and megabytes at each
    start, and nothing in the sandbox evaluates IAM."""
    cidrs = subnet_cidrs(zones)
    t = _tags_list(tags)
    res: dict[str, Any] = {
        "VPC": {"Type": "AWS::EC2::VPC", "Properties": {
            "CidrBlock": "192.168.0.0/16", "EnableDnsHostnames": True, "EnableDnsSupport": True,
            "Tags": t + [{"Key": "Name", "Value": f"eksctl-{name}-cluster/VPC"}]}},
        "InternetGateway": {"Type": "AWS::EC2::InternetGateway", "Properties": {
            "Tags": t + [{"Key": "Name", "Value": f"eksctl-{name}-cluster/InternetGateway"}]}},
        "VPCGatewayAttachment": {"Type": "AWS::EC2::VPCGatewayAttachment", "Properties": {
            "InternetGatewayId": {"Ref": "InternetGateway"}, "VpcId": {"Ref": "VPC"}}},
        "PublicRouteTable": {"Type": "AWS::EC2::RouteTable", "Properties": {
            "VpcId": {"Ref": "VPC"}, "Tags": t + [{"Key": "Name", "Value": f"eksctl-{name}-cluster/PublicRouteTable"}]}},
        "PublicSubnetRoute": {"Type": "AWS::EC2::Route", "DependsOn": ["VPCGatewayAttachment"], "Properties": {
            "RouteTableId": {"Ref": "PublicRouteTable"}, "DestinationCidrBlock": "0.0.0.0/0",
            "GatewayId": {"Ref": "InternetGateway"}}},
        "NATIP": {"Type": "AWS::EC2::EIP", "DependsOn": ["VPCGatewayAttachment"], "Properties": {
            "Domain": "vpc", "Tags": t + [{"Key": "Name", "Value": f"eksctl-{name}-cluster/NATIP"}]}},
        "NATGateway": {"Type": "AWS::EC2::NatGateway", "Properties": {
            "AllocationId": {"Fn::GetAtt": ["NATIP", "AllocationId"]},
            "SubnetId": {"Ref": f"SubnetPublic{_zone_suffix(zones[0])}"},
            "Tags": t + [{"Key": "Name", "Value": f"eksctl-{name}-cluster/NATGateway"}]}},
        "ControlPlaneSecurityGroup": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
            "GroupDescription": "Communication between the control plane and worker nodegroups",
            "VpcId": {"Ref": "VPC"}, "Tags": t + [{"Key": "Name", "Value": f"eksctl-{name}-cluster/"
                                                                          "ControlPlaneSecurityGroup"}]}},
        "ServiceRole": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": ["eks.amazonaws.com"]},
                "Action": ["sts:AssumeRole", "sts:TagSession"]}]},
            "Tags": t + [{"Key": "Name", "Value": f"eksctl-{name}-cluster/ServiceRole"}]}},
        "AutoModeNodeRole": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com"]},
                "Action": ["sts:AssumeRole"]}]},
            "Tags": t + [{"Key": "Name", "Value": f"eksctl-{name}-cluster/AutoModeNodeRole"}]}},
    }
    public, private = [], []
    for z in zones:
        sfx = _zone_suffix(z)
        pub, priv = cidrs[z]
        res[f"SubnetPublic{sfx}"] = {"Type": "AWS::EC2::Subnet", "Properties": {
            "VpcId": {"Ref": "VPC"}, "CidrBlock": pub, "AvailabilityZone": z, "MapPublicIpOnLaunch": True,
            "Tags": t + [{"Key": "kubernetes.io/role/elb", "Value": "1"},
                         {"Key": "Name", "Value": f"eksctl-{name}-cluster/SubnetPublic{sfx}"}]}}
        res[f"SubnetPrivate{sfx}"] = {"Type": "AWS::EC2::Subnet", "Properties": {
            "VpcId": {"Ref": "VPC"}, "CidrBlock": priv, "AvailabilityZone": z,
            "Tags": t + [{"Key": "kubernetes.io/role/internal-elb", "Value": "1"},
                         {"Key": "Name", "Value": f"eksctl-{name}-cluster/SubnetPrivate{sfx}"}]}}
        res[f"RouteTableAssociationPublic{sfx}"] = {"Type": "AWS::EC2::SubnetRouteTableAssociation", "Properties": {
            "RouteTableId": {"Ref": "PublicRouteTable"}, "SubnetId": {"Ref": f"SubnetPublic{sfx}"}}}
        res[f"PrivateRouteTable{sfx}"] = {"Type": "AWS::EC2::RouteTable", "Properties": {
            "VpcId": {"Ref": "VPC"}, "Tags": t + [{"Key": "Name", "Value": f"eksctl-{name}-cluster/"
                                                                          f"PrivateRouteTable{sfx}"}]}}
        res[f"RouteTableAssociationPrivate{sfx}"] = {"Type": "AWS::EC2::SubnetRouteTableAssociation", "Properties": {
            "RouteTableId": {"Ref": f"PrivateRouteTable{sfx}"}, "SubnetId": {"Ref": f"SubnetPrivate{sfx}"}}}
        res[f"NATPrivateSubnetRoute{sfx}"] = {"Type": "AWS::EC2::Route", "Properties": {
            "RouteTableId": {"Ref": f"PrivateRouteTable{sfx}"}, "DestinationCidrBlock": "0.0.0.0/0",
            "NatGatewayId": {"Ref": "NATGateway"}}}
        public.append({"Ref": f"SubnetPublic{sfx}"})
        private.append({"Ref": f"SubnetPrivate{sfx}"})
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "EKS cluster (dedicated VPC: true, dedicated IAM: true) [created and managed by eksctl]",
        "Resources": res,
        "Outputs": {
            "VPC": {"Value": {"Ref": "VPC"}},
            "SecurityGroup": {"Value": {"Ref": "ControlPlaneSecurityGroup"}},
            "SubnetsPublic": {"Value": {"Fn::Join": [",", public]}},
            "SubnetsPrivate": {"Value": {"Fn::Join": [",", private]}},
            "ServiceRoleARN": {"Value": {"Fn::GetAtt": ["ServiceRole", "Arn"]}},
            "AutoModeNodeRoleARN": {"Value": {"Fn::GetAtt": ["AutoModeNodeRole", "Arn"]}},
            "ClusterStackName": {"Value": {"Ref": "AWS::StackName"}},
            "FeatureNATMode": {"Value": "Single"},
        },
    }


def podidentity_template(name: str, addon: str, tags: dict[str, str]) -> dict[str, Any]:
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"IAM role for pod identity association of addon {addon} [created and managed by eksctl]",
        "Resources": {"Role1": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": ["pods.eks.amazonaws.com"]},
                "Action": ["sts:AssumeRole", "sts:TagSession"]}]},
            "Tags": _tags_list(tags)}}},
        "Outputs": {"Role1": {"Value": {"Fn::GetAtt": ["Role1", "Arn"]}}},
    }


async def _stack(ctx: ToolContext, region: str, name: str) -> dict[str, Any] | None:
    try:
        out = await ctx.aws("cloudformation", region, "describe_stacks", StackName=name)
    except Exception:
        return None
    stacks = [s for s in out.get("Stacks") or [] if s.get("StackStatus") != "DELETE_COMPLETE"]
    return stacks[0] if stacks else None


async def _cluster(ctx: ToolContext, region: str, name: str) -> dict[str, Any] | None:
    try:
        return (await ctx.aws("eks", region, "describe_cluster", name=name))["cluster"]  # type: ignore[no-any-return]
    except Exception as err:
        if "ResourceNotFound" in str(err):
            return None
        raise


def _region(ctx: ToolContext, flags: dict[str, Any], cfg: dict[str, Any] | None) -> str:
    region = str(flags.get("region") or ((cfg or {}).get("metadata") or {}).get("region") or
                 ctx.env.get("AWS_REGION") or ctx.env.get("AWS_DEFAULT_REGION") or "")
    if not region:
        _error(ctx, "--region is required")
    return region


def _load_config(ctx: ToolContext, path: str) -> dict[str, Any]:
    p = ctx.path(path)
    try:
        cfg = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        _error(ctx, f"reading config file \"{path}\": open {path}: no such file or directory")
    except yaml.YAMLError as err:
        _error(ctx, f"loading config file \"{path}\": error converting YAML to JSON: {err}")
    if not isinstance(cfg, dict) or cfg.get("kind") != "ClusterConfig" or \
            not str(cfg.get("apiVersion", "")).startswith("eksctl.io/"):
        _error(ctx, f"loading config file \"{path}\": expected kind ClusterConfig of apiVersion eksctl.io/v1alpha5")
    if not (cfg.get("metadata") or {}).get("name"):
        _error(ctx, "metadata.name must be set")
    return cfg  # type: ignore[no-any-return]


def _eksctl_tags(name: str, user_tags: dict[str, str]) -> dict[str, str]:
    return {**{str(k): str(v) for k, v in user_tags.items()},
            "alpha.eksctl.io/cluster-name": name, "eksctl.cluster.k8s.io/v1alpha1/cluster-name": name,
            "alpha.eksctl.io/cluster-oidc-enabled": "false", "alpha.eksctl.io/eksctl-version": VERSION}


async def create_cluster(ctx: ToolContext, flags: dict[str, Any]) -> int:
    if not flags.get("config-file"):
        _error(ctx, "the sandbox's eksctl needs a config file: eksctl create cluster -f cluster.yaml")
    cfg = _load_config(ctx, str(flags["config-file"]))
    meta = cfg["metadata"]
    name = str(meta["name"])
    region = _region(ctx, flags, cfg)
    version = str(meta.get("version") or cfg.get("version") or "1.34")
    user_tags = {str(k): str(v) for k, v in (meta.get("tags") or {}).items()}
    auto = bool((cfg.get("autoModeConfig") or {}).get("enabled"))
    stack_name = f"eksctl-{name}-cluster"
    _info(ctx, f"eksctl version {VERSION}")
    _info(ctx, f"using region {region}")
    armed = ctx.hub.faults.take_fail_once("eksctl", "eksctl-create")
    zones = [str(z) for z in cfg.get("availabilityZones") or []]
    azs = (await ctx.aws("ec2", region, "describe_availability_zones"))["AvailabilityZones"]
    known = {z["ZoneName"]: z for z in azs}
    if not zones:
        zones = sorted(z["ZoneName"] for z in azs if z.get("ZoneId") not in EKS_UNSUPPORTED_ZONE_IDS)[:3]
        _info(ctx, f"setting availability zones to {zones}")
    for z in zones:
        if z not in known:
            _error(ctx, f"invalid availability zone \"{z}\" for region {region}")
        if known[z].get("ZoneId") in EKS_UNSUPPORTED_ZONE_IDS:
            _error(ctx, f"cannot create cluster \"{name}\": {z} (zone ID {known[z]['ZoneId']}) is not supported "
                        "for the EKS control plane; remove it from availabilityZones")
    if len(zones) < 2:
        _error(ctx, "only 1 zones specified [" + ", ".join(zones) + "], 2 are required (can be non-unique)")
    for z, (pub, priv) in subnet_cidrs(zones).items():
        _info(ctx, f"subnets for {z} - public:{pub} private:{priv}")
    _info(ctx, f"using Kubernetes version {version}")
    _info(ctx, f'creating EKS cluster "{name}" in "{region}" region with ')
    _info(ctx, f"if you encounter any issues, check CloudFormation console or try 'eksctl utils describe-stacks "
               f"--region={region} --cluster={name}'")
    if armed:
        await ctx.sleep(3)
        _fail(ctx, f'creating CloudFormation stack "{stack_name}": operation error CloudFormation: CreateStack, '
                   "exceeded maximum number of attempts, 3, https response error StatusCode: 400, RequestID: "
                   f"{uuid.uuid4()}, api error Throttling: Rate exceeded")
        _error(ctx, f'failed to create cluster "{name}"')
    if await _stack(ctx, region, stack_name) is not None:
        await ctx.sleep(2)
        _warn(ctx, "1 error(s) occurred and cluster hasn't been created properly, you may wish to check "
                   "CloudFormation console")
        _info(ctx, f"to cleanup resources, run 'eksctl delete cluster --region={region} --name={name}'")
        _fail(ctx, f'creating CloudFormation stack "{stack_name}": operation error CloudFormation: CreateStack, '
                   f"https response error StatusCode: 400, RequestID: {uuid.uuid4()}, AlreadyExistsException: "
                   f"Stack [{stack_name}] already exists")
        _error(ctx, f'failed to create cluster "{name}"')
    _info(ctx, f'Kubernetes API endpoint access will use default of {{publicAccess=true, privateAccess=false}} '
               f'for cluster "{name}" in "{region}"')
    _info(ctx, f'CloudWatch logging will not be enabled for cluster "{name}" in "{region}"')
    _info(ctx, "you can enable it with 'eksctl utils update-cluster-logging --enable-types={SPECIFY-YOUR-LOG-TYPES-"
               f"HERE (e.g. all)}} --region={region} --cluster={name}'")
    if auto and (cfg.get("addonsConfig") or {}).get("disableDefaultAddons"):
        _info(ctx, "default EKS addons are not required for a cluster using Auto Mode; if nodegroups are not "
                   "required, consider setting `addonsConfig.disableDefaultAddons: true` during cluster creation, "
                   "or deleting default addons using `eksctl delete addon`")
    _info(ctx, f'\n2 sequential tasks: {{ create cluster control plane "{name}", \n    2 sequential sub-tasks: {{ '
               "\n        no tasks,\n        wait for control plane to become ready,\n    } \n}")
    _info(ctx, f'building cluster stack "{stack_name}"')
    tags = _eksctl_tags(name, user_tags)
    template = cluster_template(name, zones, tags)
    _info(ctx, f'deploying stack "{stack_name}"')
    await ctx.aws("cloudformation", region, "create_stack", StackName=stack_name,
                  TemplateBody=json.dumps(template), Tags=_tags_list(tags),
                  Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])
    stack = await _stack(ctx, region, stack_name)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in (stack or {}).get("Outputs") or []}
    if (stack or {}).get("StackStatus") != "CREATE_COMPLETE" or not outputs.get("VPC"):
        _fail(ctx, f'unexpected status "{(stack or {}).get("StackStatus")}" while waiting for CloudFormation stack '
                   f'"{stack_name}"')
        _error(ctx, f'failed to create cluster "{name}"')
    # moto finished the stack at once; CloudFormation keeps it CREATE_IN_PROGRESS until its control plane
    # (the EKS cluster, made below) is up.
    ctx.hub.set_stack_status(region, stack_name, "CREATE_IN_PROGRESS")
    while ctx.hub.faults.held("eksctl-stack"):  # a test holds the stack here (real ones take minutes)
        await asyncio.sleep(0.02)
    subnets = outputs["SubnetsPublic"].split(",") + outputs["SubnetsPrivate"].split(",")
    for subnet in outputs["SubnetsPublic"].split(","):  # moto's CloudFormation drops MapPublicIpOnLaunch
        await ctx.aws("ec2", region, "modify_subnet_attribute", SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
    existing = await _cluster(ctx, region, name)
    if existing is not None:
        await ctx.sleep(30)
        _fail(ctx, f'unexpected status "ROLLBACK_IN_PROGRESS" while waiting for CloudFormation stack "{stack_name}"')
        _info(ctx, "fetching stack events in attempt to troubleshoot the root cause of the failure")
        _fail(ctx, f'AWS::EKS::Cluster/ControlPlane: CREATE_FAILED – "Resource handler returned message: '
                   f'\\"Cluster already exists with name: {name} (Service: Eks, Status Code: 409, Request ID: '
                   f'{uuid.uuid4()})\\" (RequestToken: {uuid.uuid4()}, HandlerErrorCode: AlreadyExists)"')
        _warn(ctx, "1 error(s) occurred and cluster hasn't been created properly, you may wish to check "
                   "CloudFormation console")
        _info(ctx, f"to cleanup resources, run 'eksctl delete cluster --region={region} --name={name}'")
        _fail(ctx, "ResourceNotReady: failed waiting for successful resource state")
        ctx.hub.set_stack_status(region, stack_name, "ROLLBACK_COMPLETE", "The following resource(s) failed to "
                                 "create: [ControlPlane].")
        _error(ctx, f'failed to create cluster "{name}"')
    account = "123456789012"
    create: dict[str, Any] = {
        "name": name, "version": version, "roleArn": outputs.get("ServiceRoleARN") or
        f"arn:aws:iam::{account}:role/eksctl-{name}-cluster-ServiceRole",
        "resourcesVpcConfig": {"subnetIds": subnets, "securityGroupIds": [outputs["SecurityGroup"]],
                               "endpointPublicAccess": True, "endpointPrivateAccess": False},
        "kubernetesNetworkConfig": {"ipFamily": "ipv4", "elasticLoadBalancing": {"enabled": auto}},
        "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP", "bootstrapClusterCreatorAdminPermissions": True},
        "bootstrapSelfManagedAddons": not auto and not (cfg.get("addonsConfig") or {}).get("disableDefaultAddons"),
        "tags": tags,
    }
    if auto:
        pools = (cfg.get("autoModeConfig") or {}).get("nodePools", ["general-purpose", "system"])
        create["computeConfig"] = {"enabled": True, "nodePools": list(pools),
                                   "nodeRoleArn": outputs.get("AutoModeNodeRoleARN")}
        create["storageConfig"] = {"blockStorage": {"enabled": True}}
    await ctx.aws("eks", region, "create_cluster", **create)
    delays = [30.0, 30.0]
    while True:
        await ctx.sleep(delays.pop(0) if delays else 60.0)
        _info(ctx, f'waiting for CloudFormation stack "{stack_name}"')
        cluster = await _cluster(ctx, region, name)
        if cluster is None:
            _fail(ctx, f'unexpected status "DELETE_IN_PROGRESS" while waiting for CloudFormation stack '
                       f'"{stack_name}"')
            _error(ctx, f'failed to create cluster "{name}"')
        if cluster.get("status") == "ACTIVE" and cluster.get("endpoint"):
            now = await _stack(ctx, region, stack_name)
            if (now or {}).get("StackStatus") == "CREATE_IN_PROGRESS":  # not if deleted meanwhile
                ctx.hub.set_stack_status(region, stack_name, "CREATE_COMPLETE")
            break
    await ctx.sleep(ctx.clock.real("eksctl_cp_ready_wait"))
    _info(ctx, "waiting for the control plane to become ready")
    write = flags.get("write-kubeconfig", True) is not False
    kc_path = kubeconfig.kubeconfig_path(ctx.env, str(flags["kubeconfig"]) if flags.get("kubeconfig") else None)
    if write:
        kubeconfig.write_cluster(kc_path, name, region, cluster["endpoint"],
                                 ctx.env.get("SANDBOX_USER", "dynamo-wizard"))
        _ok(ctx, f'saved kubeconfig as "{kc_path}"')
    _info(ctx, "no tasks")
    _ok(ctx, f'all EKS cluster resources for "{name}" have been created')
    errors = 0
    for addon in cfg.get("addons") or []:
        aname = str(addon.get("name"))
        associations: list[dict[str, str]] = []
        if addon.get("useDefaultPodIdentityAssociations") or addon.get("podIdentityAssociations"):
            _info(ctx, '"addonsConfig.autoApplyPodIdentityAssociations" is set to true; will lookup recommended pod '
                       f'identity configuration for "{aname}" addon')
            sa = "efs-csi-controller-sa" if aname == "aws-efs-csi-driver" else f"{aname}-sa"
            role_stack = f"eksctl-{name}-addon-{aname}-podidentityrole-{sa}"
            _info(ctx, f'deploying stack "{role_stack}"')
            await ctx.aws("cloudformation", region, "create_stack", StackName=role_stack,
                          TemplateBody=json.dumps(podidentity_template(name, aname, tags)), Tags=_tags_list(tags),
                          Capabilities=["CAPABILITY_IAM"])
            _info(ctx, f'waiting for CloudFormation stack "{role_stack}"')
            await ctx.sleep(ctx.clock.real("podidentity_stack"))
            _info(ctx, f'waiting for CloudFormation stack "{role_stack}"')
            rs = await _stack(ctx, region, role_stack)
            role_arn = next((o["OutputValue"] for o in (rs or {}).get("Outputs") or [] if o["OutputKey"] == "Role1"),
                            f"arn:aws:iam::{account}:role/{role_stack}-Role1")
            associations.append({"serviceAccount": sa, "roleArn": role_arn})
        _info(ctx, f"creating addon: {aname}")
        params: dict[str, Any] = {"clusterName": name, "addonName": aname, "tags": tags}
        if addon.get("version") and addon["version"] != "latest":
            params["addonVersion"] = str(addon["version"])
        if associations:
            params["podIdentityAssociations"] = associations
        try:
            await ctx.aws("eks", region, "create_addon", **params)
            await ctx.sleep(ctx.clock.real("addon_create"))
            _info(ctx, f"successfully created addon: {aname}")
        except Exception as err:
            errors += 1
            _warn(ctx, "1 error(s) occurred while creating addons")
            _fail(ctx, f"creating addon: {err}")
    if errors:
        _error(ctx, "failed to create addons")
    if shutil.which("kubectl", path=ctx.env.get("PATH")):
        _info(ctx, f'kubectl command should work with "{kc_path}", try \'kubectl get nodes\'')
    else:
        _fail(ctx, "kubectl not found, v1.10.0 or newer is required")
        _info(ctx, "cluster should be functional despite missing (or misconfigured) client binaries")
    _ok(ctx, f'EKS cluster "{name}" in "{region}" region is ready')
    return 0


async def _delete_role_stack(ctx: ToolContext, region: str, stack_name: str) -> None:
    await ctx.hub.delete_stack(region, stack_name, wait=True, delay_real=0.0)


async def _delete_cluster_stack(ctx: ToolContext, region: str, name: str, stack_name: str) -> str | None:
    """The cluster stack goes once the EKS cluster is gone; CloudFormation then takes most of its time."""
    while await _cluster(ctx, region, name) is not None:
        await asyncio.sleep(max(0.05, ctx.clock.scaled(10)))
    return await ctx.hub.delete_stack(region, stack_name, wait=True, delay_real=ctx.clock.real("cluster_stack_delete"))


async def delete_cluster(ctx: ToolContext, flags: dict[str, Any]) -> int:
    cfg = _load_config(ctx, str(flags["config-file"])) if flags.get("config-file") else None
    name = str(flags.get("name") or ((cfg or {}).get("metadata") or {}).get("name") or "")
    if not name:
        _error(ctx, "--name=<name> must be set")
    region = _region(ctx, flags, cfg)
    wait = bool(flags.get("wait"))
    stack_name = f"eksctl-{name}-cluster"
    cluster = await _cluster(ctx, region, name)
    stacks = [s for s in (await ctx.aws("cloudformation", region, "list_stacks"))["StackSummaries"]
              if s["StackName"].startswith(f"eksctl-{name}-") and s["StackStatus"] != "DELETE_COMPLETE"]
    if cluster is None and not stacks:
        _error(ctx, "unable to describe cluster control plane: operation error EKS: DescribeCluster, https response "
                    f"error StatusCode: 404, RequestID: {uuid.uuid4()}, ResourceNotFoundException: No cluster found "
                    f"for name: {name}.")
    if ctx.hub.faults.take_fail_once("eksctl-delete"):
        _info(ctx, f'deleting EKS cluster "{name}"')
        await ctx.sleep(5)
        _fail(ctx, f"operation error EKS: DescribeCluster, exceeded maximum number of attempts, 3, https response "
                   f"error StatusCode: 429, RequestID: {uuid.uuid4()}, api error ThrottlingException: Rate exceeded")
        _error(ctx, f'failed to delete cluster "{name}"')
    _info(ctx, f'deleting EKS cluster "{name}"')
    _info(ctx, "deleted 0 Fargate profile(s)")
    kc_path = kubeconfig.kubeconfig_path(ctx.env, str(flags["kubeconfig"]) if flags.get("kubeconfig") else None)
    kubeconfig.remove_cluster(kc_path, name, region)
    _ok(ctx, "kubeconfig has been updated")
    _info(ctx, "cleaning up AWS load balancers created by Kubernetes objects of Kind Service, Ingress, or Gateway")
    await ctx.sleep(ctx.clock.real("eksctl_delete") / 3)
    role_stacks = [s["StackName"] for s in stacks if "-addon-" in s["StackName"]]
    tasks = [f'delete addon IAM "{s}"' for s in role_stacks]
    if cluster is not None:
        tasks.append(f'delete cluster control plane "{name}" [async]')
    _info(ctx, f"\n{len(tasks)} sequential tasks: {{ {', '.join(tasks)} \n}}")
    if cluster is not None:
        try:
            for addon in (await ctx.aws("eks", region, "list_addons", clusterName=name))["addons"]:
                await ctx.aws("eks", region, "delete_addon", clusterName=name, addonName=addon)
        except Exception:
            pass
    for s in role_stacks:
        _info(ctx, f'will delete stack "{s}"')
        if wait:
            _info(ctx, f'waiting for stack "{s}" to get deleted')
        await _delete_role_stack(ctx, region, s)
    if cluster is not None and cluster.get("status") != "DELETING":
        await ctx.aws("eks", region, "delete_cluster", name=name)
    has_stack = any(s["StackName"] == stack_name for s in stacks)
    if has_stack:
        _info(ctx, f'will delete stack "{stack_name}"')
        task = asyncio.get_running_loop().create_task(_delete_cluster_stack(ctx, region, name, stack_name))
        ctx.hub._tasks.add(task)
        task.add_done_callback(ctx.hub._tasks.discard)
        if wait:
            _info(ctx, f'waiting for stack "{stack_name}" to get deleted')
            delays = [30.0]
            while not task.done():
                done, _ = await asyncio.wait({task}, timeout=ctx.clock.scaled(delays.pop(0) if delays else 45.0))
                if not done:
                    _info(ctx, f'waiting for CloudFormation stack "{stack_name}"')
            failure = task.result()
            if failure:
                _info(ctx, "1 error(s) occurred while deleting cluster with nodegroup(s)")
                _fail(ctx, f'failed to delete stack "{stack_name}": waiter state transitioned to Failure')
                _error(ctx, "failed to delete cluster with nodegroup(s)")
    else:
        await ctx.sleep(ctx.clock.real("eksctl_delete") / 3)
    _ok(ctx, "all cluster resources were deleted")
    return 0


def _pascal(value: Any) -> Any:
    if isinstance(value, dict):
        return {(k[:1].upper() + k[1:]): _pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pascal(v) for v in value]
    return value


async def get_cluster(ctx: ToolContext, pos: list[str], flags: dict[str, Any]) -> int:
    region = _region(ctx, flags, None)
    name = str(flags.get("name") or (pos[0] if pos else ""))
    output = str(flags.get("output") or "table")
    if name:
        cluster = await _cluster(ctx, region, name)
        if cluster is None:
            _error(ctx, f'unable to describe control plane "{name}": operation error EKS: DescribeCluster, https '
                        f"response error StatusCode: 404, RequestID: {uuid.uuid4()}, ResourceNotFoundException: No "
                        f"cluster found for name: {name}.")
        clusters = [cluster]
    else:
        names = (await ctx.aws("eks", region, "list_clusters"))["clusters"]
        found = [await _cluster(ctx, region, n) for n in names]
        clusters = [c for c in found if c is not None]
    if output == "json":
        for c in clusters:
            if hasattr(c.get("createdAt"), "isoformat"):
                c["createdAt"] = c["createdAt"].isoformat().replace("+00:00", "Z")
        ctx.out(json.dumps(_pascal(clusters), indent=4, default=str))
    elif output == "yaml":
        ctx.out(yaml.safe_dump(json.loads(json.dumps(_pascal(clusters), default=str)), sort_keys=False).rstrip())
    else:
        if not clusters:
            _info(ctx, f"no EKS clusters found in region {region}")
            return 0
        ctx.out("NAME\tREGION\t\tEKSCTL CREATED")
        for c in clusters:
            created = "True" if (c.get("tags") or {}).get("alpha.eksctl.io/cluster-name") else "False"
            ctx.out(f"{c['name']}\t{region}\t{created}")
    return 0


async def write_kubeconfig(ctx: ToolContext, flags: dict[str, Any]) -> int:
    name = str(flags.get("cluster") or flags.get("name") or "")
    region = _region(ctx, flags, None)
    cluster = await _cluster(ctx, region, name) if name else None
    if cluster is None or not cluster.get("endpoint"):
        _error(ctx, f'cannot write kubeconfig: cluster "{name}" not found or not ACTIVE in "{region}"')
    path = kubeconfig.kubeconfig_path(ctx.env, str(flags["kubeconfig"]) if flags.get("kubeconfig") else None)
    kubeconfig.write_cluster(path, name, region, cluster["endpoint"])
    _ok(ctx, f'saved kubeconfig as "{path}"')
    return 0


async def main(ctx: ToolContext) -> int:
    pos, flags = _flags(ctx.argv)
    if not pos or flags.get("help"):
        ctx.out("The official CLI for Amazon EKS (sandbox)\n\nUsage: eksctl [command] [flags]\n\n"
                "Commands:\n  eksctl create cluster -f FILE\n  eksctl delete cluster --name NAME --region REGION "
                "[--wait]\n  eksctl get cluster [--name NAME] --region REGION [-o json]\n  eksctl utils "
                "write-kubeconfig --cluster NAME --region REGION\n  eksctl version")
        return 0 if flags.get("help") else 1
    verb = pos[0]
    noun = pos[1] if len(pos) > 1 else ""
    if verb == "version":
        ctx.out(VERSION)
        return 0
    if verb == "create" and noun in ("cluster", "clusters"):
        return await create_cluster(ctx, flags)
    if verb == "delete" and noun in ("cluster", "clusters"):
        return await delete_cluster(ctx, flags)
    if verb == "get" and noun in ("cluster", "clusters"):
        return await get_cluster(ctx, pos[2:], flags)
    if verb == "utils" and noun == "write-kubeconfig":
        return await write_kubeconfig(ctx, flags)
    ctx.err(f'Error: unknown command "{" ".join(pos[:2])}" for "eksctl"')
    ctx.err("Run 'eksctl --help' for usage.")
    return 1
