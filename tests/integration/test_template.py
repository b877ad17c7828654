"""template.yaml: it transforms, lints clean, and keeps the rules we deploy by."""

from __future__ import annotations

import ast
import re

import pytest

from leadflow.dev.template import (
    cached_transform,
    function_sources,
    http_routes,
    jwt_audience,
    load_template,
    transform,
)
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

TEMPLATE = ROOT / "template.yaml"


@pytest.fixture(scope="module")
def template():
    return load_template(TEMPLATE)


def test_sam_translator_transforms_the_template(template, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # WHEN aws-sam-translator transforms it, as `sam deploy` would
    output = transform(template, ROOT)
    types = {resource["Type"] for resource in output["Resources"].values()}
    # THEN it is plain CloudFormation with the pieces the product needs
    assert not any(t.startswith("AWS::Serverless::") for t in types)
    assert {
        "AWS::ApiGatewayV2::Api",
        "AWS::DynamoDB::Table",
        "AWS::Events::EventBus",
        "AWS::SQS::Queue",
        "AWS::Lambda::LayerVersion",
        "AWS::Lambda::EventSourceMapping",
    } <= types


def test_the_template_reads_as_cfn_lint_decodes_it(template):
    # GIVEN cfn-lint's decoder, which `make lint` trusts with every short-form intrinsic
    import json

    from cfnlint.decode import decode_str

    decoded, matches = decode_str(TEMPLATE.read_text(encoding="utf-8"))
    # THEN the local stack's own reader gives the very same template
    assert not matches
    assert template == json.loads(json.dumps(decoded))
    assert template["Conditions"]["HasPublicBaseUrl"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "PublicBaseUrl"}, ""]}]}
    assert template["Globals"]["Function"]["KmsKeyArn"] == {"Fn::GetAtt": ["LeadflowKey", "Arn"]}


def test_a_bad_template_is_named_not_a_crash(tmp_path):
    bad = tmp_path / "template.yaml"
    bad.write_text("Resources: [unclosed\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"template\.yaml"):
        load_template(bad)
    bad.write_text("just text\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no Resources"):
        load_template(bad)


def test_the_transform_is_cached_by_everything_it_reads(template, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    parameters = {"NurtureChildExecutionType": "STANDARD"}
    # WHEN the local stack transforms the template twice with the same input
    first = cached_transform(template, ROOT, parameters, tmp_path)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".json"
    second = cached_transform(template, ROOT, parameters, tmp_path)
    # THEN the second read the file the first wrote, and both are what SAM gives
    assert first == second == transform(template, ROOT, parameters)
    # AND another parameter, or a changed template, is another entry
    cached_transform(template, ROOT, {**parameters, "ConsoleAdminEmail": "a@example.com"}, tmp_path)
    changed = {**template, "Description": "changed"}
    assert cached_transform(changed, ROOT, parameters, tmp_path)["Description"] == "changed"
    assert len(list(tmp_path.glob("*.json"))) == 3
    # AND a damaged entry is transformed again, not trusted
    files[0].write_text("{half", encoding="utf-8")
    assert cached_transform(template, ROOT, parameters, tmp_path) == first


def test_moto_reads_the_json_body_as_its_yaml_parser_would(template, monkeypatch):
    # GIVEN the local stack's moto, which reads a JSON template body as JSON (dev/moto_patches.py)
    import json

    import yaml
    from moto.cloudformation.models import Stack

    from leadflow.dev import moto_patches

    moto_patches.apply()
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    body = json.dumps(transform(template, ROOT))
    # THEN the transformed template reads as PyYAML reads it (JSON is YAML), and YAML still reads
    assert Stack.parse_template(body) == yaml.safe_load(body)
    assert Stack.parse_template("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n") == {
        "Resources": {"Q": {"Type": "AWS::SQS::Queue"}}
    }


def test_the_nurture_rule_takes_lead_events_and_activities_but_not_the_ses_events_of_every_email(template):
    # GIVEN the nurture rule's pattern, as moto (the local stack's EventBridge) matches it
    import json

    from moto.events.models import EventPattern, EventPatternParser

    from leadflow.domain.definitions.scoring import ActivityType

    raw = json.dumps(template["Resources"]["NurtureEventsRule"]["Properties"]["EventPattern"])
    pattern = EventPattern(raw, EventPatternParser(raw).parse())

    def delivered(source: str, detail_type: str, **detail: object) -> bool:
        return pattern.matches_event({"source": source, "detail-type": detail_type, "detail": detail})

    # THEN lead events, opens, clicks and other activities are delivered; score events only when
    # the scoring function marked them as acted on by a sequence
    assert delivered("leadflow.scoring", "lead.scored", lead_id="L", nurture=True)
    assert not delivered("leadflow.scoring", "lead.scored", lead_id="L", nurture=False)
    assert not delivered("leadflow.scoring", "lead.scored", lead_id="L")
    assert delivered("leadflow.forms", "lead.captured", lead_id="L")
    for kind in ("email_opened", "email_clicked", "form_submitted", "page_viewed", "email_bounced"):
        assert delivered("leadflow.tracking", "activity.recorded", type=kind)
    # AND the failures no condition can name are not (sends and deliveries record no activity)
    for kind in ("email_delivery_delayed", "email_rejected", "email_rendering_failed"):
        assert not delivered("leadflow.email", "activity.recorded", type=kind)
        with pytest.raises(ValueError):
            ActivityType(kind)
    # AND other events and sources are not
    assert not delivered("leadflow.handoff", "handoff.delivered", lead_id="L")
    assert not delivered("someone.else", "lead.scored", lead_id="L")


def test_cfn_lint_is_clean():
    from cfnlint.api import lint_file

    assert [str(match) for match in lint_file(TEMPLATE)] == []


def test_cloudformation_can_order_the_transformed_resources(template, monkeypatch):
    """No circular dependency once SAM has written the HTTP API's definition: that definition names
    every function it invokes and the authorizer's app client, so neither may name the API back
    (cfn-lint on the SAM template does not see it; on the transformed one it does, as E3004)."""
    import json

    from cfnlint import ManualArgs
    from cfnlint.api import lint

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    output = json.dumps(transform(template, ROOT), default=str)
    only_cycles = ManualArgs(regions=["us-east-1"], mandatory_checks=["E3004"], ignore_checks=["E", "W", "I"])
    assert [str(match) for match in lint(output, config=only_cycles)] == []


def test_functions_target_python312_on_arm64_with_the_layers(template):
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.12"
    assert globals_["Architectures"] == ["arm64"]
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            assert "Runtime" not in resource["Properties"], logical_id


def test_every_queue_has_a_dead_letter_queue(template):
    queues = {k for k, r in template["Resources"].items() if r["Type"] == "AWS::SQS::Queue"}
    dlqs = {q for q in queues if q.endswith("DLQ")}
    for queue in queues - dlqs:
        target = template["Resources"][queue]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]
        assert target["Fn::GetAtt"][0] in dlqs
    stream = template["Resources"]["OutboxRelayFunction"]["Properties"]["Events"]["Outbox"]["Properties"]
    assert stream["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0] in dlqs


# Permissions no SAM policy template grants: SESv2 SendEmail on the configuration set, a
# Distributed Map watching its own child executions, and large imports' objects under one prefix
# of the imports bucket with the stack key's data keys (SAM's S3 templates grant the whole bucket,
# its KMS ones no GenerateDataKey). Each is a few actions on scoped ARNs.
INLINE_ALLOWED = {
    ("ses:SendEmail",): "configuration-set/",
    ("states:DescribeExecution", "states:StopExecution"): ":execution:",
    ("states:DescribeExecution",): ":execution:",
    ("s3:PutObject",): "${ImportsBucket.Arn}/uploads/",
    ("s3:GetObject",): "${ImportsBucket.Arn}/",
    ("s3:PutObject", "s3:AbortMultipartUpload"): "${ImportsBucket.Arn}/work/",
    ("kms:GenerateDataKey", "kms:Decrypt"): "${LeadflowKey.Arn}",
    ("kms:Decrypt",): "${LeadflowKey.Arn}",
}
# The one exception: CloudWatch Logs' log-delivery APIs, which a logging state machine needs and
# which take no resource-level permission (AWS documents Resource "*" for exactly these).
LOG_DELIVERY = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)


# And SESv2 GetAccount (the account's send quota, which sizes a broadcast's parts): an account-wide
# read with no resource type in the service authorization reference.
ACCOUNT_READ = ("ses:GetAccount",)


def test_only_sam_policy_templates(template):
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] not in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            continue
        for policy in resource["Properties"].get("Policies", []):
            assert isinstance(policy, dict) and len(policy) == 1, logical_id
            (name,) = policy
            if name == "Statement":
                for statement in policy["Statement"]:
                    actions = statement["Action"]
                    actions = tuple(actions) if isinstance(actions, list) else (actions,)
                    if actions == LOG_DELIVERY and resource["Type"] == "AWS::Serverless::StateMachine":
                        assert statement["Resource"] == "*"
                        continue
                    if actions == ACCOUNT_READ:
                        assert statement["Resource"] == "*"
                        continue
                    assert actions in INLINE_ALLOWED, (logical_id, actions)
                    arns = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                    for arn in arns:
                        resource_arn = arn["Fn::Sub"]
                        scoped = resource_arn.replace("/*", "").removesuffix("-import:*")  # one machine's runs
                        assert INLINE_ALLOWED[actions] in resource_arn and "*" not in scoped, (
                            logical_id,
                            resource_arn,
                        )
                continue
            assert name.endswith("Policy"), (logical_id, name)


def test_no_secret_in_the_template():
    text = TEMPLATE.read_text().lower()
    for marker in ("whsec_", "secretkey", "password:", "aws_secret_access_key", "token:"):
        assert marker not in text


def test_every_function_is_a_thin_documented_handler(template):
    sources = function_sources(template, ROOT)
    assert set(sources) == {
        "ConsoleFunction",
        "LandingFunction",
        "NotFoundFunction",
        "FormCaptureFunction",
        "IntakeReplayFunction",
        "OutboxRelayFunction",
        "LeadApiFunction",
        "TrackFunction",
        "SesEventsFunction",
        "ScoringFunction",
        "DecaySweepFunction",
        "NurtureStepFunction",
        "NurtureDueFunction",
        "NurtureEventsFunction",
        "PreferencesFunction",
        "CrmHandoffFunction",
        "HandoffSlaFunction",
        "CrmInboundFunction",
        "ReportingFunction",
        "SegmentsFunction",
        "DeadLetterRedriveFunction",
        "ImportFunction",
    }
    for logical_id, (folder, handler) in sources.items():
        module, _, function = handler.rpartition(".")
        tree = ast.parse((folder / f"{module}.py").read_text())
        assert ast.get_docstring(tree), f"{logical_id}: app.py opens with a docstring (trigger, what, which service)"
        assert any(isinstance(n, ast.FunctionDef) and n.name == function for n in tree.body), logical_id
        imports = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not any(m.startswith("boto3") for m in imports), f"{logical_id}: no boto3 in a handler"


def test_http_routes_of_the_public_contract(template):
    routes = {(r.method, r.path): r.authorizer for r in http_routes(template)}
    assert routes[("POST", "/forms/{form_id}")] is None
    assert routes[("OPTIONS", "/forms/{form_id}")] is None
    assert routes[("GET", "/api/v1/leads/{lead_id}")] == "AWS_IAM"
    assert routes[("GET", "/api/v1/leads")] == "AWS_IAM"
    assert routes[("GET", "/api/v1/openapi.json")] is None
    assert routes[("GET", "/api/v1/docs")] is None and routes[("GET", "/api/v1/docs/{name}")] is None
    assert routes[("GET", "/api/v1/reports/funnel")] == "AWS_IAM"
    # AND people's route takes the console's JWTs: from the hosted sign-in and from scripts alike
    # (a resource of its own: inside HttpApi's definition the hosted client's callback URL is a cycle)
    people = next(r for r in http_routes(template) if r.path == "/console/api/v1/{proxy+}")
    assert (people.method, people.function, people.authorizer) == ("ANY", "LeadApiFunction", "ConsoleJwtAuthorizer")
    assert jwt_audience(template, "ConsoleJwtAuthorizer") == ["ConsoleUserPoolClient", "ConsoleWebClient"]
    assert "Authorizers" not in template["Resources"]["HttpApi"]["Properties"]["Auth"]
    permission = template["Resources"]["PeopleApiPermission"]["Properties"]
    assert permission["FunctionName"] == {"Ref": "LeadApiFunction"}
    assert permission["SourceArn"]["Fn::Sub"].endswith("${HttpApi}/*/*/console/api/v1/*")


def test_domain_code_never_touches_aws_or_the_clock():
    domain = ROOT / "layers" / "leadflow" / "leadflow" / "domain"
    for path in domain.glob("*.py"):
        source = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+(boto3|botocore)", source, re.MULTILINE), path
        assert "datetime.now" not in source and "time.time" not in source, path
        assert "os.environ" not in source, path


# ---------------------------------------------------------------------------- cross-service paths
# Each path where one AWS service writes into another needs the receiver's resource policy (and a
# KMS key policy when the receiver is encrypted with a key) to name the sender, scoped to this
# stack. docs/aws-permissions.md lists them; these tests hold the template to that list.


def resources_of(template, kind: str) -> dict:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def statements(document: dict) -> list[dict]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def grants(document: dict, service: object, action: str) -> list[dict]:
    """The Allow statements of a policy document for ``service`` (principal) and ``action``."""

    def listed(value: object) -> list:
        return value if isinstance(value, list) else [value]

    def matches(pattern: str) -> bool:
        return pattern == action or (pattern.endswith("*") and action.startswith(pattern[:-1]))

    return [
        s
        for s in statements(document)
        if s["Effect"] == "Allow"
        and service in listed(s["Principal"].get("Service", []))
        and any(matches(a) for a in listed(s["Action"]))
    ]


def key_of(template, reference: object) -> dict:
    """The AWS::KMS::Key resource a property refers to (a Ref or GetAtt of a key in this template)."""
    assert isinstance(reference, dict), f"{reference!r} is not this stack's key (AWS managed keys cannot be granted)"
    logical_id = reference.get("Ref") or reference["Fn::GetAtt"][0]
    key = template["Resources"][logical_id]
    assert key["Type"] == "AWS::KMS::Key"
    return key


def test_ses_publishes_its_events_to_the_default_bus_and_only_this_stacks_reach_the_queue(template):
    # GIVEN the configuration set's event destination
    destination = template["Resources"]["SesConfigurationSetEvents"]["Properties"]["EventDestination"]
    # THEN it is the account's default event bus (the only bus SES publishes to; AWS service events
    # on it cost nothing), not an SNS topic
    bus = destination["EventBridgeDestination"]["EventBusArn"]["Fn::Sub"]
    assert bus.endswith(":event-bus/default") and "SnsDestination" not in destination
    assert "SesFeedbackTopic" not in template["Resources"]
    # AND the rule on that bus takes this stack's configuration set's SES events only
    rule = template["Resources"]["SesEventsRule"]["Properties"]
    assert rule.get("EventBusName", "default") == "default"
    assert rule["EventPattern"]["source"] == ["aws.ses"]
    assert rule["EventPattern"]["detail"]["mail"]["tags"]["ses:configuration-set"] == [{"Ref": "SesConfigurationSet"}]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["SesEventsQueue", "Arn"]}


def queue_policy_grants(template, queue: str, service: str) -> list[dict]:
    found = []
    for policy in resources_of(template, "AWS::SQS::QueuePolicy").values():
        if {"Ref": queue} in policy["Properties"]["Queues"]:
            found += grants(policy["Properties"]["PolicyDocument"], service, "sqs:SendMessage")
    return found


def source_arns(statement: dict) -> list:
    arns = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    return arns if isinstance(arns, list) else [arns]


def test_every_rule_delivers_to_its_queue_and_dead_letters_what_it_cannot(template):
    for rule_id, rule in resources_of(template, "AWS::Events::Rule").items():
        for target in rule["Properties"]["Targets"]:
            queue = target["Arn"]["Fn::GetAtt"][0]
            # THEN the target queue's policy lets EventBridge send, for this rule only
            (allowed,) = queue_policy_grants(template, queue, "events.amazonaws.com")
            assert source_arns(allowed) == [{"Fn::GetAtt": [rule_id, "Arn"]}], rule_id
            # AND the queue is encrypted in a way EventBridge can write to (SQS-managed, no KMS key)
            assert template["Resources"][queue]["Properties"].get("SqsManagedSseEnabled") is True
            assert "KmsMasterKeyId" not in template["Resources"][queue]["Properties"]
            # AND what EventBridge cannot deliver after its retries lands in a DLQ it may write to
            dlq = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
            assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 86400
            (dead,) = queue_policy_grants(template, dlq, "events.amazonaws.com")
            assert {"Fn::GetAtt": [rule_id, "Arn"]} in source_arns(dead), rule_id


def test_schedules_and_asynchronous_invocations_dead_letter_what_fails(template, monkeypatch):
    # GIVEN every schedule, and the functions invoked asynchronously (by a schedule or by code)
    schedules = []
    for logical_id, resource in template["Resources"].items():
        for name, event in (resource["Properties"].get("Events") or {}).items():
            if event["Type"] == "ScheduleV2":
                schedules.append((logical_id, name, event["Properties"]))
                # THEN each retries and then dead-letters
                assert event["Properties"]["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0].endswith("DLQ")
                assert event["Properties"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert len(schedules) >= 4
    # every function a schedule invokes, and the one code invokes asynchronously (broadcast parts)
    scheduled = {f for f, _, _ in schedules if template["Resources"][f]["Type"] == "AWS::Serverless::Function"}
    assert "DeadLetterRedriveFunction" in scheduled
    for function in scheduled | {"NurtureDueFunction"}:
        dlq = template["Resources"][function]["Properties"]["DeadLetterQueue"]
        assert dlq["Type"] == "SQS" and dlq["TargetArn"]["Fn::GetAtt"][0].endswith("DLQ")
    # AND, as SAM deploys it, each schedule's role may invoke its target and write to its DLQ
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    output = transform(template, ROOT)["Resources"]
    for schedule in (r for r in output.values() if r["Type"] == "AWS::Scheduler::Schedule"):
        target = schedule["Properties"]["Target"]
        role = output[target["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
        granted = [(s["Action"], s["Resource"]) for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
        assert ("sqs:SendMessage", target["DeadLetterConfig"]["Arn"]) in granted
        assert any(resource == target["Arn"] for _, resource in granted)
        assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"] == ["scheduler.amazonaws.com"]


def test_every_function_has_a_log_group_kept_for_a_while_and_encrypted(template):
    functions = set(resources_of(template, "AWS::Serverless::Function"))
    groups = resources_of(template, "AWS::Logs::LogGroup")
    named = {}
    for logical_id, group in groups.items():
        properties = group["Properties"]
        # THEN every log group expires and is encrypted with the stack's key...
        assert properties["RetentionInDays"] == {"Ref": "LogRetentionDays"}, logical_id
        key_of(template, properties["KmsKeyId"])
        name = properties["LogGroupName"]["Fn::Sub"]
        if name.startswith("/aws/lambda/${"):
            named[name.removeprefix("/aws/lambda/${").removesuffix("}")] = logical_id
    # ... and every function has one (Lambda would otherwise create one that keeps logs forever)
    assert set(named) == functions
    # AND the key lets CloudWatch Logs use it for this stack's groups only
    (key,) = resources_of(template, "AWS::KMS::Key").values()
    (logs,) = grants(key["Properties"]["KeyPolicy"], {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}, "kms:Encrypt")
    scoped = [arn["Fn::Sub"] for arn in logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]]
    assert all("${AWS::StackName}" in arn for arn in scoped)


def test_no_table_can_be_deleted_by_accident(template):
    tables = resources_of(template, "AWS::DynamoDB::Table")
    assert "LeadsTable" in tables
    for logical_id, table in tables.items():
        assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain"), logical_id
        assert table["Properties"]["DeletionProtectionEnabled"] is True, logical_id
        assert table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_the_account_index_projects_only_what_the_account_view_reads(template):
    # GIVEN the LeadsTable's indexes
    props = template["Resources"]["LeadsTable"]["Properties"]
    indexes = {g["IndexName"]: g for g in props["GlobalSecondaryIndexes"]}
    defined = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    # THEN GSI5 keys profiles by account and keeps lead_id and title: scoring's summary writes no entry
    assert indexes["GSI5"]["KeySchema"] == [
        {"AttributeName": "GSI5PK", "KeyType": "HASH"},
        {"AttributeName": "GSI5SK", "KeyType": "RANGE"},
    ]
    assert indexes["GSI5"]["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["lead_id", "title"]}
    assert defined["GSI5PK"] == defined["GSI5SK"] == "S"
    # AND GSI1 stays as deployed (CloudFormation cannot change an index's projection in one update)
    assert indexes["GSI1"]["Projection"] == {"ProjectionType": "ALL"}
    assert list(indexes) == ["GSI1", "GSI2", "GSI3", "GSI4", "GSI5"]


def test_the_state_machine_logs_errors_and_traces(template):
    machine = template["Resources"]["NurtureTickStateMachine"]["Properties"]
    assert machine["Tracing"] == {"Enabled": True}
    logging = machine["Logging"]
    assert logging["Level"] in ("ERROR", "ALL") and logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert template["Resources"][group]["Type"] == "AWS::Logs::LogGroup"


def test_every_public_route_has_its_own_throttle(template):
    api = template["Resources"]["HttpApi"]["Properties"]
    settings = api["RouteSettings"]
    public = {r.route_key for r in http_routes(template) if r.authorizer is None}
    assert public == set(settings)
    for route, limits in settings.items():
        assert 0 < limits["ThrottlingRateLimit"] <= limits["ThrottlingBurstLimit"], route
    # AND the access log names routes, never paths or query strings (tokens ride in both)
    log_format = api["AccessLogSettings"]["Format"]
    assert "$context.routeKey" in log_format
    assert not any(f"$context.{field}" in log_format for field in ("path", "identity.sourceIp", "requestOverride"))


def test_ses_publishes_only_what_leadflow_does_not_track_itself_nor_work_out(template):
    destination = template["Resources"]["SesConfigurationSetEvents"]["Properties"]["EventDestination"]
    published = set(destination["MatchingEventTypes"])
    # opens and clicks are leadflow's own; delivered is sent less bounces (one event per email spared)
    assert not published & {"open", "click", "delivery"}
    assert {"send", "reject", "bounce", "complaint", "renderingFailure", "deliveryDelay"} <= published


def test_ses_events_wait_until_an_ambiguous_send_is_marked(template):
    from datetime import timedelta

    from leadflow.domain.nurture.mail_log import SEND_SETTLED, UNCERTAIN_MARK_WITHIN

    # GIVEN the SES events queue's delay, and the bound the nurture service keeps on marking a send uncertain
    delay = timedelta(seconds=template["Resources"]["SesEventsQueue"]["Properties"]["DelaySeconds"])
    # THEN a Send event is applied only once its send is marked if it ever will be (with a margin
    # for the clocks), so that it may write nothing for every other email
    assert delay >= SEND_SETTLED + timedelta(seconds=10)
    longest_write = timedelta(seconds=24)  # 3 attempts of 2 s to connect and 5 s to read, and backoff
    assert timedelta(seconds=UNCERTAIN_MARK_WITHIN) + longest_write + timedelta(seconds=10) <= SEND_SETTLED
    assert delay <= timedelta(seconds=900)  # SQS's largest DelaySeconds
