"""Accounts: leads rolled up by company domain and scored as one buying committee.

An account's score is the sum and best of its leads' scores (in the account model), and
which departments of the buying committee have an engaged lead; a lead's department comes
from the CRM when known, otherwise from keywords in its job title.

Pure: no AWS, no environment, no clock reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from leadflow.domain.definitions.scoring import AccountRules

# Title keywords per department, the first match wins: functions before general management,
# so "VP of Sales" is sales and "Account Executive" sales, while a bare "President" is executive.
DEPARTMENT_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("marketing", (
        "cmo", "chief marketing", "marketing", "marketer", "brand", "growth", r"demand gen\w*", "communications",
        "content", "seo", "sem", "media", "campaigns?", "pr", "public relations",
    )),
    ("sales", (
        "cro", "chief revenue", "sales", "account executive", "account manager", "business development", "bdr", "sdr",
        "revenue", "commercial", "partnerships?",
    )),
    ("finance", (
        "cfo", "chief financial", "finance", "financial", "controller", "controlling", "accounting", "accountant",
        r"treasur\w*", "procurement", "purchasing", "buyer",
    )),
    ("it", (
        "cto", "cio", "ciso", "chief (?:technology|information|digital)", "it", "information technology",
        r"engineer\w*", "developer", "software", "devops", "architect", "security", "infrastructure", "systems", "data",
        "technical", "technology",
    )),
    ("operations", (
        "coo", "chief operating", "operations", "ops", "logistics", "supply chain", r"facilit\w*", "production",
        "plant",
    )),
    ("executive", (
        "ceo", "chief executive", "co-founder", "founder", "president", "owner", "managing director", "general manager",
        "chairman", "chairwoman", "managing partner", "executive director", r"geschäftsführer\w*",
    )),
)  # fmt: skip
_DEPARTMENT_PATTERNS = tuple(
    (department, re.compile(rf"\b(?:{'|'.join(keywords)})\b", re.IGNORECASE))
    for department, keywords in DEPARTMENT_KEYWORDS
)


def department_of(title: str | None) -> str | None:
    """The committee department of a job title (executive, marketing, sales, it, finance, operations), or None."""
    if not title:
        return None
    for department, pattern in _DEPARTMENT_PATTERNS:
        if pattern.search(title):
            return department
    return None


@dataclass(frozen=True, slots=True)
class LeadScoreSummary:
    """One lead as the account roll-up sees it."""

    lead_id: str
    account_domain: str | None
    score: float
    """Its decayed score in the account model."""
    title: str | None = None
    department: str | None = None
    """Its department when known (e.g. from the CRM); otherwise derived from the title."""

    @property
    def resolved_department(self) -> str | None:
        return self.department or department_of(self.title)


@dataclass(frozen=True, slots=True)
class AccountScore:
    """A company's leads, scored as one buying committee."""

    account_domain: str
    score: float
    """Sum of its leads' scores."""
    best_lead_score: float
    leads: int
    engaged_leads: int
    """Leads whose score reaches ``engaged_at_least``."""
    departments: tuple[str, ...]
    """Committee departments with at least one engaged lead, sorted."""
    missing_departments: tuple[str, ...]
    """Committee departments nobody engaged is from, in committee order."""
    coverage: float
    """Share of the committee engaged, 0 to 1."""
    top_leads: tuple[str, ...]
    """Lead ids, highest score first (at most 5)."""


def account_score(leads: Sequence[LeadScoreSummary], rules: AccountRules | None = None) -> AccountScore:
    """The account score of one company's leads.

    Raises:
        ValueError: no leads, or leads of different (or no) account domains.
    """
    rules = rules or AccountRules()
    domains = {lead.account_domain for lead in leads}
    if len(domains) != 1 or None in domains:
        raise ValueError(f"leads of exactly one account domain expected, got {sorted(map(str, domains))}")
    engaged = [lead for lead in leads if lead.score >= rules.engaged_at_least]
    covered = {department for lead in engaged if (department := lead.resolved_department)}
    committee = rules.committee
    ranked = sorted(leads, key=lambda lead: (-lead.score, lead.lead_id))
    return AccountScore(
        account_domain=str(next(iter(domains))),
        score=sum(lead.score for lead in leads),
        best_lead_score=ranked[0].score,
        leads=len(leads),
        engaged_leads=len(engaged),
        departments=tuple(sorted(d for d in covered if d in committee)),
        missing_departments=tuple(d for d in committee if d not in covered),
        coverage=sum(1 for d in committee if d in covered) / len(committee),
        top_leads=tuple(lead.lead_id for lead in ranked[:5]),
    )


def roll_up_accounts(leads: Iterable[LeadScoreSummary], rules: AccountRules | None = None) -> dict[str, AccountScore]:
    """Account scores of every company domain among ``leads`` (leads without one, e.g. free mail, are left out)."""
    by_domain: dict[str, list[LeadScoreSummary]] = {}
    for lead in leads:
        if lead.account_domain:
            by_domain.setdefault(lead.account_domain, []).append(lead)
    return {domain: account_score(members, rules) for domain, members in sorted(by_domain.items())}
