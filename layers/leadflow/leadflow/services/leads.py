"""Reading leads for the admin API and the dev console."""

from __future__ import annotations

from typing import Any

from leadflow.config.workspace import Workspace
from leadflow.domain.emails import InvalidEmail, normalize_email
from leadflow.domain.errors import LeadNotFound
from leadflow.domain.leads import custom_fields
from leadflow.ports.leads import LeadStore

PROFILE_KEYS = ("email", "first_name", "last_name", "company", "title", "phone", "country")
INTERNAL_PREFIXES = ("PK", "SK", "GSI")


def lead_view(item: dict[str, Any], workspace: Workspace) -> dict[str, Any]:
    """A stored lead record as the API shows it."""
    referred_by = item.get("referred_by")
    referrer = workspace.referrers.get(referred_by) if referred_by else None
    return {
        "lead_id": item["lead_id"],
        "profile": {k: item[k] for k in PROFILE_KEYS if item.get(k) not in (None, "")},
        "custom": custom_fields(item),
        "stage": item.get("stage"),
        "account_domain": item.get("account_domain"),
        "attribution": {
            "first_touch": item.get("first_touch", {}),
            "last_touch": item.get("last_touch", {}),
            "referred_by": (
                {
                    "code": referred_by,
                    "name": referrer.name if referrer else None,
                    "kind": referrer.kind if referrer else None,
                }
                if referred_by
                else None
            ),
        },
        "consent": {k.removeprefix("consent_"): v for k, v in item.items() if k.startswith("consent_")},
        "submissions": item.get("submissions", 0),
        "tags": sorted(item.get("tags") or ()),
        "grade": item.get("grade"),
        "created_at": item.get("created_at"),
        "updated_at": item.get("updated_at"),
    }


def _strip_keys(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if not k.startswith(INTERNAL_PREFIXES)}


class LeadQueries:
    def __init__(self, store: LeadStore, workspace: Workspace) -> None:
        self.store = store
        self.workspace = workspace

    def get(self, lead_id: str, activity_limit: int = 100) -> dict[str, Any]:
        """The lead with its consent history and most recent activities.

        Raises:
            LeadNotFound: no such lead.
        """
        item = self.store.get_lead(lead_id)
        if item is None:
            raise LeadNotFound(lead_id)
        activities, consents = self.store.lead_history(lead_id, activity_limit)
        view = lead_view(item, self.workspace)
        view["consent_history"] = [_strip_keys(c) for c in consents]
        view["activities"] = [_strip_keys(a) for a in activities]
        return view

    def find_by_email(self, email: str) -> list[dict[str, Any]]:
        """Leads with this address (zero or one); an unparseable address finds none."""
        try:
            key = normalize_email(email).key
        except InvalidEmail:
            return []
        lead_id = self.store.lead_id_for_email(key)
        item = self.store.get_lead(lead_id) if lead_id else None
        return [lead_view(item, self.workspace)] if item else []

    def recent(self, limit: int) -> list[dict[str, Any]]:
        return [lead_view(item, self.workspace) for item in self.store.recent_leads(limit)]
