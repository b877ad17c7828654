"""The console's Cognito resources and people on the local stack (moto's CloudFormation has none).

The template's user pool, app client and groups are created through moto's Cognito API, with
the same settings; the first admin (``ConsoleAdminEmail``; locally ``admin@example.com`` unless
given) gets a known password instead of an emailed temporary one, and two more people are added
to try the roles: ``marketer@example.com`` and ``sales@example.com``. Their passwords are on
``GET /_dev/stack`` (``console_users``). Signing in is then the real path: ``InitiateAuth`` on
moto returns an RS256 ID token, checked against the JWKS moto serves for the pool. The hosted
sign-in's domain is created too, and the console's sign-in parameter points at the gateway's
stand-in for the hosted UI (``leadflow.dev.hosted_ui``).
"""

from __future__ import annotations

import json
import os
import secrets
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leadflow.dev.stack import LocalStack

LOCAL_ADMIN = "admin@example.com"
LOCAL_PEOPLE = (("marketer@example.com", "marketer"), ("sales@example.com", "sales-viewer"))


def _ref(value: Any, created: dict[str, str], stack: LocalStack) -> str:
    if isinstance(value, dict) and "Ref" in value:
        name = str(value["Ref"])
        return created.get(name) or stack.resolve(value)
    return str(value)


def provision(stack: LocalStack, kind: str, props: dict[str, Any], created: dict[str, str]) -> str | None:
    cognito = stack.client("cognito-idp")
    if kind == "AWS::Cognito::UserPool":
        pool = cognito.create_user_pool(
            PoolName=f"{stack.stack_name}-console",
            UsernameAttributes=props.get("UsernameAttributes", ["email"]),
            AutoVerifiedAttributes=props.get("AutoVerifiedAttributes", ["email"]),
            Policies=props.get("Policies", {}),
            AdminCreateUserConfig=props.get("AdminCreateUserConfig", {}),
        )["UserPool"]
        return str(pool["Id"])
    if kind == "AWS::Cognito::UserPoolClient":
        oauth = {  # the hosted sign-in's client; its URLs name the API, checked by leadflow.dev.hosted_ui
            k: props[k]
            for k in ("AllowedOAuthFlows", "AllowedOAuthScopes", "AllowedOAuthFlowsUserPoolClient")
            if k in props
        }
        client = cognito.create_user_pool_client(
            UserPoolId=_ref(props["UserPoolId"], created, stack),
            ClientName=str(props.get("ClientName", "console")),
            GenerateSecret=False,
            ExplicitAuthFlows=props.get("ExplicitAuthFlows", []),
            **oauth,
        )["UserPoolClient"]
        return str(client["ClientId"])
    if kind == "AWS::Cognito::UserPoolDomain":
        domain = f"leadflow-{stack.stack_name}".lower()[:63]
        cognito.create_user_pool_domain(Domain=domain, UserPoolId=_ref(props["UserPoolId"], created, stack))
        return domain
    if kind == "AWS::Cognito::UserPoolGroup":
        cognito.create_group(
            GroupName=props["GroupName"],
            UserPoolId=_ref(props["UserPoolId"], created, stack),
            Description=str(props.get("Description", "")),
            Precedence=int(props.get("Precedence", 0)),
        )
        return str(props["GroupName"])
    if kind == "AWS::Cognito::UserPoolUser":
        pool = _ref(props["UserPoolId"], created, stack)
        email = stack.parameters.get("ConsoleAdminEmail") or LOCAL_ADMIN
        _person(stack, pool, email, None)
        return email
    if kind == "AWS::Cognito::UserPoolUserToGroupAttachment":
        pool = _ref(props["UserPoolId"], created, stack)
        email = _ref(props["Username"], created, stack)
        group = _ref(props["GroupName"], created, stack)
        cognito.admin_add_user_to_group(UserPoolId=pool, Username=email, GroupName=group)
        stack.console_users[0]["group"] = group
        for other, other_group in LOCAL_PEOPLE:
            _person(stack, pool, other, other_group)
        return f"{email}:{group}"
    return None


def _person(stack: LocalStack, pool: str, email: str, group: str | None) -> None:
    """A person with a permanent password (kept by ``--state``), in ``group``."""
    cognito = stack.client("cognito-idp")
    kept = {u["email"]: u["password"] for u in (stack._saved or {}).get("console_users", [])}
    password = kept.get(email) or f"Lf-{secrets.token_urlsafe(12)}9a"
    cognito.admin_create_user(
        UserPoolId=pool,
        Username=email,
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        MessageAction="SUPPRESS",
    )
    cognito.admin_set_user_password(UserPoolId=pool, Username=email, Password=password, Permanent=True)
    if group:
        cognito.admin_add_user_to_group(UserPoolId=pool, Username=email, GroupName=group)
    stack.console_users.append({"email": email, "password": password, "group": group or ""})


def point_at_local_cognito(stack: LocalStack) -> None:
    """Functions that check console tokens read the pool's keys from moto (``/<pool>/.well-known/jwks.json``)."""
    pool = next((p for k, p in stack.physical.items() if k == "ConsoleUserPool"), None)
    if pool is None:
        return
    jwks = f"{stack.aws_endpoint_url}/{pool}/.well-known/jwks.json"
    for function in stack.runner.functions.values():
        if "CONSOLE_JWKS_URL" in function.environment:
            function.environment["CONSOLE_JWKS_URL"] = jwks
    os.environ["CONSOLE_JWKS_URL"] = jwks  # the functions share this process's environment
    # The hosted sign-in is the gateway's stand-in (leadflow.dev.hosted_ui): the console finds it
    # where it finds Cognito's domain in AWS, in the sign-in parameter.
    parameter, client = stack.physical.get("ConsoleSignInParameter"), stack.physical.get("ConsoleWebClient")
    if parameter and client:
        value = json.dumps({"client_id": client, "domain": f"{stack.url}/_dev/cognito"})
        stack.client("ssm").put_parameter(Name=parameter, Value=value, Type="String", Overwrite=True)


def console_auth(stack: LocalStack, authorizer: str) -> tuple[str, list[str], str] | None:
    """The issuer, audience (the app clients the template's JWT ``authorizer`` lists) and JWKS URL of
    the console's ID tokens on this stack (None: no console)."""
    from leadflow.dev.template import jwt_audience

    pool = stack.physical.get("ConsoleUserPool")
    clients = [stack.physical.get(client, "") for client in jwt_audience(stack.template, authorizer)]
    if not pool or not all(clients):
        return None
    issuer = f"https://cognito-idp.{stack.client('cognito-idp').meta.region_name}.amazonaws.com/{pool}"
    return issuer, clients, f"{stack.aws_endpoint_url}/{pool}/.well-known/jwks.json"
