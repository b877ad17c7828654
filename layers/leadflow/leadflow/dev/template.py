"""Reading template.yaml: SAM transform for moto, HTTP API routes, function sources."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARTIFACT_BUCKET = "leadflow-dev-artifacts"
ARTIFACT_KEY = "placeholder.zip"


def load_template(path: Path) -> dict[str, Any]:
    """The template as plain JSON-able data (short-form intrinsics like !Ref expanded)."""
    from cfnlint.decode import decode_str

    template, matches = decode_str(path.read_text(encoding="utf-8"))
    if template is None:
        raise ValueError(f"{path}: {'; '.join(str(m) for m in matches)}")
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
    from samtranslator.translator.transform import transform as sam_transform

    class _NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    return sam_transform(prepare_for_transform(template, root), parameters or {}, _NoManagedPolicies())
