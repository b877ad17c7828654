"""Who may read and change what, in the console and through the admin API with a person's sign-in.

A person's role comes from their Cognito groups (``cognito:groups`` in the ID token):

| role          | reads                                   | changes                                      |
| ------------- | --------------------------------------- | -------------------------------------------- |
| admin         | everything, the audit log, a person's   | everything: erasure (GDPR) and lifting a     |
|               | export (GDPR)                           | suppression included                         |
| marketer      | leads, sequences, reports, hand-offs,   | enroll, broadcast, hand off, tag, edit       |
|               | suppressions, imports                   | leads, suppress an address, import           |
| sales-viewer  | leads, hand-offs, reports, suppressions,| nothing                                      |
|               | imports                                 |                                              |

Lifting a suppression is the admin's: the list is what keeps a bounced or complaining address from
being mailed again, so taking an address off it is as weighty as an erasure.

Machines (IAM-signed requests) are not people: what an IAM policy lets them invoke they may do.
A person in no known group may do nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    ADMIN = "admin"
    MARKETER = "marketer"
    SALES_VIEWER = "sales-viewer"


class Action(StrEnum):
    READ = "read"  # leads, scores, sequences, hand-offs, reports
    READ_AUDIT = "read-audit"
    CHANGE = "change"  # enroll, broadcast, hand off, tag, create or edit leads, import
    ERASE = "erase"  # GDPR erasure
    EXPORT = "export"  # GDPR export: everything held about one person
    UNSUPPRESS = "unsuppress"  # take an address off the suppression list


ALLOWED: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action),
    Role.MARKETER: frozenset({Action.READ, Action.CHANGE}),
    Role.SALES_VIEWER: frozenset({Action.READ}),
}
# The strongest first: a person in two groups has the stronger role.
RANK = (Role.ADMIN, Role.MARKETER, Role.SALES_VIEWER)


@dataclass(frozen=True)
class Person:
    """A signed-in person: who (for the audit log) and their role (None: in no known group)."""

    subject: str
    email: str
    role: Role | None

    def may(self, action: Action) -> bool:
        return self.role is not None and action in ALLOWED[self.role]


def role_of(groups: list[str] | tuple[str, ...]) -> Role | None:
    """The strongest role among a person's groups."""
    return next((role for role in RANK if role.value in groups), None)


def person_from_claims(claims: dict[str, Any]) -> Person:
    """A person from a verified ID token's claims (API Gateway passes ``cognito:groups`` as text)."""
    groups = claims.get("cognito:groups") or []
    if isinstance(groups, str):  # API Gateway's JWT authorizer: "[admin marketer]"
        groups = groups.strip("[]").replace(",", " ").split()
    return Person(str(claims.get("sub", "")), str(claims.get("email", "")), role_of(list(groups)))


def action_of(method: str, path: str) -> Action:
    """What an admin API request does, for the role check."""
    method, parts = method.upper(), path.strip("/").split("/")
    one_lead = len(parts) >= 4 and parts[:3] == ["api", "v1", "leads"] and parts[3] != "export"
    if method == "GET" and one_lead and parts[4:] == ["export"]:
        return Action.EXPORT  # GET /api/v1/leads/{lead_id}/export (not the list's CSV, /api/v1/leads/export)
    if method in ("GET", "HEAD", "OPTIONS"):
        return Action.READ
    if method == "DELETE" and one_lead and len(parts) == 4:
        return Action.ERASE  # DELETE /api/v1/leads/{lead_id}
    return Action.CHANGE
