"""Roles from Cognito groups, and what each may do (leadflow.domain.roles)."""

from __future__ import annotations

import pytest

from leadflow.domain.roles import Action, Role, action_of, person_from_claims, role_of

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("groups", "role"),
    [
        (["admin"], Role.ADMIN),
        (["sales-viewer", "marketer"], Role.MARKETER),  # the stronger of two
        (["sales-viewer"], Role.SALES_VIEWER),
        (["other"], None),
        ([], None),
    ],
)
def test_the_strongest_group_is_the_role(groups, role):
    assert role_of(groups) == role


def test_claims_as_cognito_and_as_api_gateway_pass_them():
    token = person_from_claims({"sub": "s1", "email": "a@example.com", "cognito:groups": ["marketer"]})
    gateway = person_from_claims({"sub": "s1", "email": "a@example.com", "cognito:groups": "[sales-viewer marketer]"})
    assert token.role == gateway.role == Role.MARKETER
    assert person_from_claims({"sub": "s2"}).role is None


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.ADMIN, set(Action)),
        (Role.MARKETER, {Action.READ, Action.CHANGE}),
        (Role.SALES_VIEWER, {Action.READ}),
    ],
)
def test_what_each_role_may_do(role, allowed):
    person = person_from_claims({"cognito:groups": [role.value]})
    assert {action for action in Action if person.may(action)} == allowed


def test_nobody_in_no_group_may_do_anything():
    person = person_from_claims({"cognito:groups": []})
    assert not any(person.may(action) for action in Action)


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("GET", "/api/v1/leads/L1", Action.READ),
        ("POST", "/api/v1/leads/L1/handoff", Action.CHANGE),
        ("DELETE", "/api/v1/leads/L1", Action.ERASE),
        ("DELETE", "/api/v1/leads/L1/tags/vip", Action.CHANGE),
        ("PATCH", "/api/v1/leads/L1", Action.CHANGE),
        ("GET", "/api/v1/leads/L1/export", Action.EXPORT),  # a person's data: the admin's
        ("GET", "/api/v1/leads/export", Action.READ),  # the list as CSV
        ("GET", "/api/v1/leads/export/", Action.READ),
    ],
)
def test_what_a_request_does(method, path, action):
    assert action_of(method, path) == action
