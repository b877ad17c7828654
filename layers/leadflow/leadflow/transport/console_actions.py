"""The console's changes to one lead: each a button that first asks (a ``GET`` that changes nothing
and shows the question), then does it (the ``POST`` the question's form sends), role-checked and
recorded in the audit log.

| change     | route (``/console/leads/{lead_id}/...``) | who                 | what it calls                        |
| ---------- | ---------------------------------------- | ------------------- | ------------------------------------ |
| tag        | ``tag?tag=``                             | marketer, admin     | ``AudienceService.tag`` (add)        |
| untag      | ``untag?tag=``                           | marketer, admin     | ``AudienceService.tag`` (remove)     |
| edit       | ``edit?field=&value=``                   | marketer, admin     | ``AudienceService.update``           |
| enroll     | ``enroll?sequence=``                     | marketer, admin     | ``NurtureService.enroll_lead``       |
| unenroll   | ``unenroll?sequence=``                   | marketer, admin     | ``NurtureService.exit``              |
| suppress   | ``suppress``                             | marketer, admin     | ``SuppressionService.add``           |
| unsuppress | ``unsuppress``                           | admin               | ``SuppressionService.lift``          |
| export     | ``export``                               | admin               | ``GdprService.export`` (a download)  |
| erase      | ``erase``                                | admin               | ``GdprService.erase``                |
| handoff    | ``handoff`` (a reason)                   | marketer, admin     | ``HandoffService.start``             |

An export and an erasure are recorded by the GDPR audit trail (which names the person by a keyed
hash only), as the admin API does; every other change goes to the change audit log.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from leadflow.domain.emails import InvalidEmail
from leadflow.domain.errors import AddressTaken, InvalidSubmission
from leadflow.domain.roles import Action, Person

if TYPE_CHECKING:
    from leadflow.transport.console import Console

TAG = re.compile(r"[a-z0-9][a-z0-9_:.-]{0,63}")
EDITABLE = ("first_name", "last_name", "company", "title", "phone", "country", "email")


@dataclass(frozen=True)
class LeadChange:
    """One kind of change: its URL part, who may, the parameters the question carries to the change."""

    name: str
    action: Action
    params: tuple[str, ...]
    question: str  # formatted with the lead's name and the parameters
    button: str


CHANGES = {
    c.name: c
    for c in (
        LeadChange("tag", Action.CHANGE, ("tag",), "Add the tag “{tag}” to {who}?", "Yes, add the tag"),
        LeadChange("untag", Action.CHANGE, ("tag",), "Remove the tag “{tag}” from {who}?", "Yes, remove the tag"),
        LeadChange("edit", Action.CHANGE, ("field", "value"), "Set {who}’s {field} to “{value}”?", "Yes, change it"),
        LeadChange(
            "enroll",
            Action.CHANGE,
            ("sequence",),
            "Enroll {who} in the sequence “{sequence}”? Its first step runs at the next tick, consent permitting.",
            "Yes, enroll",
        ),
        LeadChange(
            "unenroll",
            Action.CHANGE,
            ("sequence",),
            "Take {who} out of the sequence “{sequence}”? No further email of it is sent.",
            "Yes, take out",
        ),
        LeadChange(
            "suppress",
            Action.CHANGE,
            (),
            "Put {who}’s address on the suppression list? No email of any kind is sent to it until an admin lifts it.",
            "Yes, suppress",
        ),
        LeadChange(
            "unsuppress",
            Action.UNSUPPRESS,
            (),
            "Take {who}’s address off the suppression list? Emails go to it again where consent permits: "
            "make sure it no longer bounces or complains.",
            "Yes, lift the suppression",
        ),
        LeadChange(
            "export",
            Action.EXPORT,
            (),
            "Download everything held about {who} (GDPR export, one JSON document)? The export is recorded.",
            "Download the export",
        ),
        LeadChange(
            "erase",
            Action.ERASE,
            (),
            "Erase {who} everywhere (GDPR)? The lead, its activities, enrollments and hand-offs are deleted, "
            "the CRM is told, and only a keyed hash of the address stays on the suppression list. "
            "This cannot be undone.",
            "Yes, erase for good",
        ),
        LeadChange(
            "handoff",
            Action.CHANGE,
            ("reason",),
            "Hand {who} to sales now? The workspace’s rules assign an owner, and every CRM destination "
            "receives the lead.",
            "Yes, hand off to sales",
        ),
    )
}
DONE = {
    "tag": "Tag added.",
    "untag": "Tag removed.",
    "edit": "Field changed.",
    "enroll": "Enrolled.",
    "unenroll": "Taken out of the sequence.",
    "suppress": "The address is suppressed.",
    "unsuppress": "The suppression is lifted.",
    "handoff": "Handed off to sales.",
}


class Refused(Exception):
    """A change that cannot be made as asked (the message says why); ``status`` is the answer's."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def checked_params(console: Console, change: LeadChange, values: dict[str, str]) -> dict[str, str]:
    """The change's parameters from a query or a form, each checked. Raises Refused (400)."""
    params = {name: values.get(name, "").strip() for name in change.params}
    if "tag" in params and not TAG.fullmatch(params["tag"]):
        raise Refused(
            400, "A tag is lower-case letters, digits and _ : . - (at most 64), starting with a letter or digit."
        )
    if "field" in params and params["field"] not in EDITABLE:
        raise Refused(400, f"Only these fields can be changed here: {', '.join(EDITABLE)}.")
    if "value" in params and len(params["value"]) > 320:
        raise Refused(400, "A value is at most 320 characters.")
    if "sequence" in params:
        sequence = console.parts.enrollments().workspace.sequences.get(params["sequence"])
        if sequence is None or not any(t.api or t.broadcast for t in sequence.triggers):
            raise Refused(400, "Choose a sequence that people may be enrolled in (API or broadcast trigger).")
    if "reason" in params:
        params["reason"] = params["reason"][:500]
    return params


def make_change(
    console: Console, person: Person, change: LeadChange, lead: dict[str, Any], params: dict[str, str]
) -> Any:
    """Do the change; an audit entry for it (None: the GDPR trail records it). Raises Refused."""
    lead_id, actor = str(lead["lead_id"]), f"console:{person.email}"
    parts = console.parts
    email = str(lead["profile"].get("email", ""))
    if change.name in ("tag", "untag"):
        parts.audience().tag(lead_id, params["tag"], change.name == "tag", actor)
        return f"{'add' if change.name == 'tag' else 'remove'} tag {params['tag']}"
    if change.name == "edit":
        try:
            parts.audience().update(lead_id, {params["field"]: params["value"] or None}, {}, actor)
        except InvalidSubmission as error:
            raise Refused(422, "; ".join(f"{e.field}: {e.message}" for e in error.errors)) from None
        except AddressTaken:
            raise Refused(409, "Another lead has that address.") from None
        return f"edit {params['field']}"
    if change.name == "enroll":
        service = parts.enrollments()
        if service.enroll_lead(lead_id, params["sequence"], reason="console") is None:
            raise Refused(409, "Already enrolled, or the sequence's re-entry policy refuses it now.")
        parts.publish_counts(service)
        return f"enroll in {params['sequence']}"
    if change.name == "unenroll":
        service = parts.enrollments()
        if not service.exit(lead_id, params["sequence"], "removed in the console"):
            raise Refused(409, "Not in that sequence now (it ended, or the lead left it).")
        parts.publish_counts(service)
        return f"remove from {params['sequence']}"
    if change.name in ("suppress", "unsuppress"):
        return _suppression(console, change, email)
    if change.name == "handoff":
        parts.handoffs().start(lead_id, "manual", params["reason"] or "handed off from the console", actor)
        return "hand off to sales"
    raise Refused(404, "No such change.")  # export and erase are answered by their own views


def _suppression(console: Console, change: LeadChange, email: str) -> str:
    suppression = console.parts.suppression()
    try:
        key = suppression.key_of(email)
    except InvalidEmail:
        raise Refused(409, "The lead has no valid address to suppress.") from None
    if change.name == "suppress":
        suppression.add(key)
        return "suppress address"
    if suppression.lift(key) is None:
        raise Refused(409, "The address is not on the suppression list.")
    return "lift suppression"


def done_message(name: str) -> str:
    return DONE.get(name, "")


def lead_url(lead_id: str, done: str | None = None) -> str:
    return f"/console/leads/{quote(lead_id)}" + (f"?done={done}" if done else "")


def export_download(document: dict[str, Any], lead_id: str) -> tuple[str, dict[str, str]]:
    """The export as a JSON file the browser saves: the document ``GET /api/v1/leads/{id}/export`` answers."""
    from leadflow.transport.gdpr_models import LeadExport

    headers = {"Content-Disposition": f'attachment; filename="lead-{lead_id}-export.json"'}
    return LeadExport.model_validate(document).model_dump_json(indent=2), headers


Lookup = Callable[[str], dict[str, Any]]
