"""Reading template.yaml: SAM transform for moto, HTTP API routes, function sources."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

ARTIFACT_BUCKET = "leadflow-dev-artifacts"
ARTIFACT_KEY = "placeholder.zip"


class _CloudFormationLoader(yaml.CSafeLoader):
    """PyYAML's safe loader (on libyaml, ~4x faster here: PyYAML's wheels bundle it) that also reads
    CloudFormation's short-form tags (``!Ref``, ``!GetAtt``...).

    Its own class, so the tags are known to this loader only, not to every ``yaml.safe_load``.
    It replaced cfn-lint's decoder here: importing cfn-lint (sympy, networkx) took ~1 s of each
    ``leadflow dev`` start, and both give the same template (tests/integration/test_template.py).
    """


def _intrinsic(loader: yaml.CSafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    """``!Sub x`` -> ``{"Fn::Sub": x}``; ``!Ref``/``!Condition`` keep their bare names; ``!GetAtt A.b``
    -> ``{"Fn::GetAtt": ["A", "b"]}``. After aws-cli's ``yamlhelper.intrinsics_multi_constructor``
    (awscli/customizations/cloudformation/yamlhelper.py), which aws-sam-translator also copies."""
    name = tag_suffix if tag_suffix in {"Ref", "Condition"} else f"Fn::{tag_suffix}"
    value: Any
    if tag_suffix == "GetAtt" and isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node).split(".", 1)
    elif isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    """The template as plain JSON-able data (short-form intrinsics like !Ref expanded).

    Raises:
        ValueError: the file is not YAML, or not a mapping of sections.
    """
    try:
        template = yaml.load(path.read_text(encoding="utf-8"), Loader=_CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass  # nosec B506
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: {error}") from error
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise ValueError(f"{path}: not a template (no Resources mapping)")
    return json.loads(json.dumps(template))


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str  # logical id
    authorizer: str | None

    @property
    def route_key(self) -> str:
        return self.path if self.path == "$default" else f"{self.method} {self.path}"

    def pattern(self) -> re.Pattern[str]:
        regex = ""
        for part in re.split(r"(\{[^}]+\})", self.path):
            if part.startswith("{") and part.endswith("+}"):
                regex += f"(?P<{part[1:-2]}>.+)"
            elif part.startswith("{"):
                regex += f"(?P<{part[1:-1]}>[^/]+)"
            else:
                regex += re.escape(part)
        return re.compile(f"^{regex}$")


def http_routes(template: dict[str, Any]) -> list[Route]:
    """Every HttpApi event of every function and every ``AWS::ApiGatewayV2::Route`` to a function,
    most specific paths first (greedy ``{proxy+}`` paths last).

    A route's ``authorizer`` is ``AWS_IAM``, a JWT authorizer's logical id, or None (public)."""
    resources = template["Resources"]
    routes = []
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::ApiGatewayV2::Route":
            routes.append(_plain_route(resource["Properties"], resources))
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in (resource["Properties"].get("Events") or {}).values():
            if event["Type"] != "HttpApi":
                continue
            props = event.get("Properties", {})
            auth = (props.get("Auth") or {}).get("Authorizer")
            routes.append(Route(props.get("Method", "ANY").upper(), props.get("Path", "$default"), logical_id, auth))
    return sorted(routes, key=lambda r: ("+}" in r.path, r.path.count("{"), -len(r.path), r.method == "ANY"))


def _plain_route(props: dict[str, Any], resources: dict[str, Any]) -> Route:
    """A route written as ``AWS::ApiGatewayV2::Route``: its ``Target`` (``integrations/${Id}``) names an
    ``AWS_PROXY`` integration whose ``IntegrationUri`` is a function's ``!GetAtt <Function>.Arn``."""
    method, _, path = props["RouteKey"].partition(" ")
    target = props["Target"]
    target = target.get("Fn::Sub", target) if isinstance(target, dict) else target
    named = re.fullmatch(r"integrations/\$\{(\w+)\}", target)
    if named is None:
        raise ValueError(f"route {props['RouteKey']}: Target must be integrations/${{<integration>}}")
    integration = resources[named.group(1)]["Properties"]
    function = integration["IntegrationUri"]["Fn::GetAtt"][0]
    kind = props.get("AuthorizationType", "NONE")
    authorizer = "AWS_IAM" if kind == "AWS_IAM" else props["AuthorizerId"]["Ref"] if kind == "JWT" else None
    return Route(method.upper(), path, function, authorizer)


def jwt_audience(template: dict[str, Any], authorizer: str) -> list[str]:
    """The logical ids of the app clients a JWT authorizer (an ``AWS::ApiGatewayV2::Authorizer``) takes."""
    audience = template["Resources"][authorizer]["Properties"]["JwtConfiguration"]["Audience"]
    return [entry["Ref"] for entry in audience]


def function_sources(template: dict[str, Any], root: Path) -> dict[str, tuple[Path, str]]:
    """Logical id -> (code folder, handler) of every function."""
    found = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            props = resource["Properties"]
            found[logical_id] = (root / props["CodeUri"], props.get("Handler", "app.lambda_handler"))
    return found


def prepare_for_transform(template: dict[str, Any], root: Path) -> dict[str, Any]:
    """A copy the SAM translator accepts: code on a placeholder bucket, state machines inlined."""
    prepared = copy.deepcopy(template)
    uri = f"s3://{ARTIFACT_BUCKET}/{ARTIFACT_KEY}"
    for resource in prepared["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            props["CodeUri"] = uri
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = uri
        elif resource["Type"] == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            props["Definition"] = json.loads((root / props.pop("DefinitionUri")).read_text(encoding="utf-8"))
    return prepared


def transform(template: dict[str, Any], root: Path, parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """The CloudFormation template SAM would deploy (aws-sam-translator)."""
    return _sam_transform(prepare_for_transform(template, root), parameters or {})


def _sam_transform(prepared: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    from samtranslator.translator.transform import transform as sam_transform

    class _NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    return sam_transform(prepared, parameters, _NoManagedPolicies())


def cached_transform(
    template: dict[str, Any], root: Path, parameters: dict[str, str], cache_dir: Path
) -> dict[str, Any]:
    """``transform``, kept in ``cache_dir`` under a hash of everything it reads.

    The key covers the prepared template (state machine definitions inlined), the parameters
    and the translator's version, so any change to them is a miss. Measured on the 2-vCPU dev
    host: importing aws-sam-translator and transforming take ~2.7 s of a ~12 s local start;
    a hit reads one JSON file. Written to a temporary file and renamed, so two stacks starting
    at once never read half a file.
    """
    prepared = prepare_for_transform(template, root)
    material = json.dumps([prepared, parameters, version("aws-sam-translator")], sort_keys=True)
    path = cache_dir / f"sam-transform-{hashlib.sha256(material.encode()).hexdigest()[:32]}.json"
    try:
        cached: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    else:
        return cached
    result = _sam_transform(prepared, parameters)
    cache_dir.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(result, out)
    os.replace(temporary, path)
    return result
