"""Deploying template.yaml on the local stack's moto: what ``LocalStack.start()`` runs first.

The template is transformed with aws-sam-translator (cached: ``leadflow.dev.template``) and
created in moto's CloudFormation; what that skips (secrets, SES configuration sets, the
console's Cognito resources) is created through the APIs first, its Refs made literal. Then
the handlers are wired in, moto's synchronous event source mappings give way to pollers with
Lambda's batch semantics (``leadflow.dev.pollers``), the template's ``rate()`` schedules are
read for the local clock, state machines move to the executing backend with their
``DefinitionSubstitutions``, and a queue taps the event bus for the console.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import secrets
import zipfile
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadflow.dev.pollers import SqsMapping, StreamMapping
from leadflow.dev.runner import LambdaRunner, LocalFunction, quiet_disabled_metrics
from leadflow.dev.stack import ACCOUNT_ID, REGION, LocalSchedule, ref_target
from leadflow.dev.template import ARTIFACT_BUCKET, ARTIFACT_KEY, cached_transform

if TYPE_CHECKING:
    from leadflow.dev.stack import LocalStack

log = logging.getLogger("leadflow.dev")
BUS_TAP_QUEUE = "leadflow-dev-bus-tap"
CACHE_DIR = ".leadflow/cache"  # under the project: the SAM transform of the template (dev/template.py)


def _with_refs(node: Any, refs: dict[str, Any]) -> Any:
    """``node`` with each ``{"Ref": id}`` of an id in ``refs`` replaced by its value (a literal, or
    another ``{"Ref": ...}``), in ``Fn::Sub`` text too."""
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in refs:
            return refs[node["Ref"]]
        if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
            text = node["Fn::Sub"]
            for logical_id, value in refs.items():
                text = text.replace(
                    "${" + logical_id + "}", value if isinstance(value, str) else "${" + value["Ref"] + "}"
                )
            return {"Fn::Sub": text}
        return {k: _with_refs(v, refs) for k, v in node.items()}
    if isinstance(node, list):
        return [_with_refs(v, refs) for v in node]
    return node


def _without(template: dict[str, Any], provisioned: dict[str, str]) -> dict[str, Any]:
    """The template minus resources created outside moto's CloudFormation, their Refs made literal."""
    if not provisioned:
        return template
    resources = {k: v for k, v in template["Resources"].items() if k not in provisioned}
    return _with_refs({**template, "Resources": resources}, provisioned)


def _aliases_as_functions(template: dict[str, Any]) -> dict[str, Any]:
    """The template with each Lambda alias and published version left out, a Ref to an alias made a
    Ref to its function. SAM's ``AutoPublishAlias`` (which SnapStart needs) makes both, and moto's
    CloudFormation has no aliases; the local stack runs a function's code from the working tree,
    the same whether its alias or the function itself is invoked."""
    resources = template["Resources"]
    aliases = {k: r["Properties"]["FunctionName"] for k, r in resources.items() if r["Type"] == "AWS::Lambda::Alias"}
    if not aliases:
        return template
    kept = {k: v for k, v in resources.items() if v["Type"] not in ("AWS::Lambda::Alias", "AWS::Lambda::Version")}
    return _with_refs({**template, "Resources": kept}, aliases)


def _rate_seconds(expression: str) -> float | None:
    match = re.fullmatch(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not match:
        return None
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return int(match.group(1)) * unit


def deploy(stack: LocalStack) -> None:
    """Create the template in moto and wire the stack to run it locally."""
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    placeholder = io.BytesIO()
    with zipfile.ZipFile(placeholder, "w") as archive:
        archive.writestr("README.txt", "leadflow dev: handlers run in-process from the working tree")
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=ARTIFACT_KEY, Body=placeholder.getvalue())

    stack.cfn_template = _aliases_as_functions(
        cached_transform(stack.template, stack.root, stack.parameters, stack.root / CACHE_DIR)
    )
    provisioned = _provision_unsupported(stack)
    cfn = stack.client("cloudformation")
    cfn.create_stack(
        StackName=stack.stack_name,
        TemplateBody=json.dumps(_without(stack.cfn_template, provisioned)),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in stack.parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    cfn_stack = cfn.describe_stacks(StackName=stack.stack_name)["Stacks"][0]
    if cfn_stack["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"moto could not create the stack: {cfn_stack.get('StackStatusReason')}")
    paginator = cfn.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack.stack_name):
        for resource in page["StackResourceSummaries"]:
            stack.physical[resource["LogicalResourceId"]] = resource.get("PhysicalResourceId", "")
    stack.physical.update(provisioned)
    stack.outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn_stack.get("Outputs", [])}
    stack._pump_sqs = stack.client("sqs")
    _wire_functions(stack)
    _wire_mappings(stack)
    _wire_schedules(stack)
    _wire_state_machines(stack)
    _tap_bus(stack)
    _apply_ses_events_at_once(stack)


SES_EVENTS_QUEUE = "SesEventsQueue"
"""The queue whose template ``DelaySeconds`` the local stack sets to 0. In AWS it holds SES events
back 75 s so that a Send event finds an ambiguous send marked uncertain (``mail_log.SEND_SETTLED``).
Here SES answers in this process and its events are stamped on the local clock: applied at once, a
Send event is younger than ``SEND_SETTLED`` and confirms its send to be safe, as the rule says, and
tests of bounces and complaints need not wait 75 s each. The cost meter (bench/nurture_cost.py) puts
the template's delay back, to price what AWS does."""


def _apply_ses_events_at_once(stack: LocalStack) -> None:
    if SES_EVENTS_QUEUE in stack.physical:
        stack.client("sqs").set_queue_attributes(
            QueueUrl=stack.physical[SES_EVENTS_QUEUE], Attributes={"DelaySeconds": "0"}
        )


def _provision_unsupported(stack: LocalStack) -> dict[str, str]:
    """Create through the API what moto's CloudFormation skips (secrets, SES configuration sets).

    Returns logical id -> physical id; the template given to moto loses these resources
    and their Refs become literals.
    """
    created: dict[str, str] = {}
    resources = stack.cfn_template["Resources"]
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::SecretsManager::Secret":
            kept = (stack._saved or {}).get("secrets", {}).get(logical_id)
            generate = props.get("GenerateSecretString") or {}
            value = kept or props.get("SecretString") or _dev_secret_value(stack, generate)
            if kept and kept.startswith("{"):
                stack.dev_secrets.update(json.loads(kept))
            stack.secret_values[logical_id] = value
            secret = stack.client("secretsmanager").create_secret(
                Name=f"{stack.stack_name}-{logical_id}", SecretString=value
            )
            created[logical_id] = secret["ARN"]
        elif resource["Type"].startswith("AWS::Cognito::"):
            physical = _cognito(stack, resource["Type"], props, created)
            if physical:
                created[logical_id] = physical
        elif resource["Type"] == "AWS::SES::ConfigurationSet":
            name = f"{stack.stack_name}-leadflow"
            stack.client("sesv2").create_configuration_set(ConfigurationSetName=name)
            created[logical_id] = name
            _verify_senders(stack)
    return created


def _cognito(stack: LocalStack, kind: str, props: dict[str, Any], created: dict[str, str]) -> str | None:
    """The console's user pool, app client and groups in moto's Cognito (its CloudFormation has
    none), and the people to sign in with: the first admin (``ConsoleAdminEmail``, default
    admin@example.com) and, locally only, a marketer and a sales viewer (``/_dev/stack``)."""
    from leadflow.dev.console_users import provision

    return provision(stack, kind, props, created)


def _dev_secret_value(stack: LocalStack, generate: dict[str, Any]) -> str:
    """A working local value for a generated secret; a JSON secret gets every key filled.

    Keys of webhook secrets get ``whsec_`` values (Standard Webhooks); they are kept in
    ``dev_secrets`` for ``/_dev/stack``, so tests and the fake CRM can sign and verify.
    """
    length = int(generate.get("PasswordLength", 32))
    if "SecretStringTemplate" not in generate:
        return secrets.token_urlsafe(length)
    from leadflow.domain.webhook_signing import new_secret

    values: dict[str, Any] = json.loads(generate["SecretStringTemplate"])
    for key in [*values, generate.get("GenerateStringKey")]:
        if not key or values.get(key):
            continue
        webhook = key.endswith("_webhook_secret") or key == "inbound_generic_secret"
        values[key] = new_secret(secrets.token_bytes(24)) if webhook else "lfdev_" + secrets.token_urlsafe(24)
    stack.dev_secrets.update(values)
    return json.dumps(values)


def _verify_senders(stack: LocalStack) -> None:
    """The workspace's sender, verified in the local SES (in AWS that is a one-time set-up step)."""
    from leadflow.config.workspace import Workspace

    try:
        messaging = Workspace(stack.workspace).messaging
    except Exception:  # noqa: BLE001 - a broken messaging.yaml is reported by validate, not here
        return
    ses = stack.client("ses")
    ses.verify_email_identity(EmailAddress=messaging.from_address)
    ses.verify_domain_identity(Domain=messaging.from_address.rsplit("@", 1)[1])


def _wire_functions(stack: LocalStack) -> None:
    overrides = {
        "LEADFLOW_WORKSPACE": str(stack.workspace),
        "POWERTOOLS_LOG_LEVEL": stack.log_level,
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
        # Hand-off delivery: plain http allowed, `local_fake_crm` destinations go to /_dev/crm/.
        "LEADFLOW_LOCAL": "true",
    }
    stack.runner = LambdaRunner(overrides)
    lam = stack.client("lambda")
    for logical_id, resource in stack.template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        config = lam.get_function_configuration(FunctionName=stack.physical[logical_id])
        props = resource["Properties"]
        stack.runner.add(
            LocalFunction(
                logical_id=logical_id,
                name=config["FunctionName"],
                arn=config["FunctionArn"],
                code_dir=stack.root / props["CodeUri"],
                handler=config["Handler"],
                environment={k: str(v) for k, v in config.get("Environment", {}).get("Variables", {}).items()},
                timeout=config.get("Timeout", 3),
                memory=config.get("MemorySize", 128),
            )
        )
    os.environ.update(stack.runner.shared_environment())
    stack.runner.patch_moto()
    quiet_disabled_metrics()


def _wire_mappings(stack: LocalStack) -> None:
    from moto.dynamodb.models import dynamodb_backends
    from moto.sqs.models import sqs_backends

    for queue in sqs_backends[ACCOUNT_ID][REGION].queues.values():
        queue.lambda_event_source_mappings.clear()
    for table in dynamodb_backends[ACCOUNT_ID][REGION].tables.values():
        table.lambda_event_source_mappings.clear()
    for logical_id, resource in stack.cfn_template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::EventSourceMapping":
            continue
        props = resource["Properties"]
        source = ref_target(props["EventSourceArn"]) or ""
        function = ref_target(props["FunctionName"]) or ""
        report = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
        source_type = stack.cfn_template["Resources"][source]["Type"]
        if source_type == "AWS::SQS::Queue":
            url, arn = stack._queue(source)
            concurrency = int((props.get("ScalingConfig") or {}).get("MaximumConcurrency", 1))
            stack.sqs_mappings.append(
                SqsMapping(
                    stack.physical[logical_id],
                    function,
                    url,
                    arn,
                    int(props.get("BatchSize", 10)),
                    report,
                    max_concurrency=concurrency,
                )
            )
        elif source_type == "AWS::DynamoDB::Table":
            table_name = stack.physical[source]
            described = stack.client("dynamodb").describe_table(TableName=table_name)["Table"]
            destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            filters = [json.loads(f["Pattern"]) for f in (props.get("FilterCriteria") or {}).get("Filters", [])]
            dlq = stack._queue(ref_target(destination) or "")[0] if destination else None
            stack.stream_mappings.append(
                StreamMapping(
                    stack.physical[logical_id],
                    function,
                    table_name,
                    described["LatestStreamArn"],
                    int(props.get("BatchSize", 100)),
                    filters,
                    report,
                    int(props.get("MaximumRetryAttempts", 3)),
                    dlq,
                )
            )


def _wire_schedules(stack: LocalStack) -> None:
    now = stack.clock.now()
    for logical_id, resource in stack.cfn_template["Resources"].items():
        if resource["Type"] != "AWS::Scheduler::Schedule":
            continue
        props = resource["Properties"]
        if props.get("State", "ENABLED") != "ENABLED":
            continue
        expression = props.get("ScheduleExpression", "")
        if isinstance(expression, dict) and "Ref" in expression:  # a template parameter
            name = expression["Ref"]
            default = stack.template.get("Parameters", {}).get(name, {}).get("Default", "")
            expression = stack.parameters.get(name, default)
        period = _rate_seconds(str(expression))
        target = ref_target(props["Target"]["Arn"])
        if period is None or target is None:
            log.warning("schedule %s: only rate() expressions are run locally", logical_id)
            continue
        first_due = datetime.fromtimestamp(now.timestamp() + period, now.tzinfo)
        stack.schedules.append(LocalSchedule(logical_id, period, target, props["Target"].get("Input", "{}"), first_due))


def _wire_state_machines(stack: LocalStack) -> None:
    """Move CloudFormation's state machines to the executing backend, placeholders resolved.

    moto's CloudFormation creates state machines in the plain Step Functions backend,
    while the API (with ``execute_state_machine``) serves the interpreting one; and it
    ignores ``DefinitionSubstitutions``. Same name, same ARN, runnable definition.
    """
    from moto.stepfunctions.models import stepfunctions_backends

    created = stepfunctions_backends[ACCOUNT_ID][REGION]
    sfn = stack.client("stepfunctions")
    for logical_id, resource in stack.cfn_template["Resources"].items():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        machine = created.describe_state_machine(stack.physical[logical_id])
        definition = machine.definition
        for name, value in (resource["Properties"].get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + name + "}", stack.resolve(value))
        sfn.create_state_machine(
            name=machine.name,
            definition=definition,
            roleArn=machine.roleArn,
            type=resource["Properties"].get("StateMachineType", "STANDARD"),
        )


def _tap_bus(stack: LocalStack) -> None:
    """A dev-only queue subscribed to every leadflow event on the bus, for the console."""
    buses = [k for k, r in stack.cfn_template["Resources"].items() if r["Type"] == "AWS::Events::EventBus"]
    if not buses:
        return
    sqs, events = stack.client("sqs"), stack.client("events")
    url = sqs.create_queue(QueueName=BUS_TAP_QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = stack.physical[buses[0]]
    events.put_rule(
        Name="leadflow-dev-tap", EventBusName=bus, EventPattern=json.dumps({"source": [{"prefix": "leadflow."}]})
    )
    events.put_targets(Rule="leadflow-dev-tap", EventBusName=bus, Targets=[{"Id": "tap", "Arn": arn}])
    stack._tap_url = url
