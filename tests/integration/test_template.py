"""template.yaml: it transforms, lints clean, and keeps the rules we deploy by."""

from __future__ import annotations

import ast
import re

import pytest

from leadflow.dev.template import function_sources, http_routes, load_template, transform
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


def test_the_nurture_rule_takes_lead_events_and_activities_but_not_the_ses_events_of_every_email(template):
    # GIVEN the nurture rule's pattern, as moto (the local stack's EventBridge) matches it
    import json

    from moto.events.models import EventPattern, EventPatternParser

    from leadflow.config.sequences import NOT_ON_THE_NURTURE_RULE

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
    # AND the SES events every email causes (and failures no condition can name) are not
    for kind in ("email_sent", "email_delivered", "email_delivery_delayed", "email_rejected"):
        assert not delivered("leadflow.email", "activity.recorded", type=kind)
    assert all(not delivered("leadflow.email", "activity.recorded", type=kind) for kind in NOT_ON_THE_NURTURE_RULE)
    # AND other events and sources are not
    assert not delivered("leadflow.handoff", "handoff.delivered", lead_id="L")
    assert not delivered("someone.else", "lead.scored", lead_id="L")


def test_cfn_lint_is_clean():
    from cfnlint.api import lint_file

    assert [str(match) for match in lint_file(TEMPLATE)] == []


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


# Permissions no SAM policy template grants: SESv2 SendEmail on the configuration set, and a
# Distributed Map watching its own child executions. Each is one action on one scoped ARN.
INLINE_ALLOWED = {
    ("ses:SendEmail",): "configuration-set/",
    ("states:DescribeExecution", "states:StopExecution"): ":execution:",
}


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
                    assert actions in INLINE_ALLOWED, (logical_id, actions)
                    resource_arn = statement["Resource"]["Fn::Sub"]
                    assert INLINE_ALLOWED[actions] in resource_arn and "*" not in resource_arn.replace("/*", ""), (
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


def test_domain_code_never_touches_aws_or_the_clock():
    domain = ROOT / "layers" / "leadflow" / "leadflow" / "domain"
    for path in domain.glob("*.py"):
        source = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+(boto3|botocore)", source, re.MULTILINE), path
        assert "datetime.now" not in source and "time.time" not in source, path
        assert "os.environ" not in source, path
