"""Scoring rules: ``scoring.yaml`` in the workspace.

What the file says, and nothing else: which activities give (or take) how many points in
each scoring model, how fast points fade, how a profile earns its fit grade, when a lead
becomes an MQL (and what happens when its score fades), and how leads roll up into
accounts. The engine that applies it is ``leadflow.domain.scoring`` (with ``scoring_compiled``,
``scoring_decay``, ``grading`` and ``accounts`` beside it).

Plain dataclasses (no pydantic at import: the activity scorer's cold start reads them);
untrusted YAML is validated into them by ``ScoringConfig.model_validate`` (see
``config.models``), a compiled workspace is read back by ``ScoringConfig.from_trusted``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Any, ClassVar, Literal

from annotated_types import Ge, Gt, Le, MinLen

from leadflow.domain.definitions import models
from leadflow.domain.definitions.models import ConfigProblem

SCORING_FILE = "scoring.yaml"

# Model, rule and group names: they are parts of ledger entry ids ("<activity>:<model>:<rule>").
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Lead fields a grade rule reads: a lead record's attribute (title, country...) or a form's
# custom field, stored on the lead as cf_<name>.
FIELD_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
MAX_POINTS = 10_000


class ActivityType(StrEnum):
    """What a lead did: the ``type`` of an activity record, as scoring rules, segments and sequence
    conditions name it.

    Not here: SES's Send and Delivery events (one of each per email) record no activity: they
    confirm the email in the lead's mail log and count it in the sequence report (issue 17), so a
    rule on ``email_delivered`` could never fire and is refused. SES's other events that no
    condition names (``email_delivery_delayed``, ``email_rejected``, ``email_rendering_failed``)
    stay in the lead's history only.
    """

    FORM_SUBMITTED = "form_submitted"
    PAGE_VIEWED = "page_viewed"
    DOWNLOAD = "download"
    VIDEO_PROGRESS = "video_progress"
    WEBINAR_ATTENDED = "webinar_attended"
    EMAIL_OPENED = "email_opened"
    EMAIL_CLICKED = "email_clicked"
    EMAIL_BOUNCED = "email_bounced"
    EMAIL_COMPLAINED = "email_complained"
    UNSUBSCRIBED = "unsubscribed"
    CUSTOM = "custom"


# Lifecycle stages, in funnel order; recycled and disqualified sit beside the funnel.
STAGES = ("subscriber", "lead", "mql", "sql", "opportunity", "customer", "recycled", "disqualified")
Stage = Literal["subscriber", "lead", "mql", "sql", "opportunity", "customer", "recycled", "disqualified"]
# Stages sales decides: scoring never moves a lead out of them.
SALES_OWNED_STAGES = frozenset({"sql", "opportunity", "customer", "disqualified"})

DEFAULT_PROMOTE_FROM: tuple[Stage, ...] = ("subscriber", "lead", "recycled")

GRADES = ("A", "B", "C", "D", "E", "F")
GradeLetter = Literal["A", "B", "C", "D", "E", "F"]
# F is what is left below the lowest threshold: it has none of its own.
ThresholdLetter = Literal["A", "B", "C", "D", "E"]
DEFAULT_THRESHOLDS: dict[ThresholdLetter, float] = {"A": 80, "B": 60, "C": 40, "D": 20, "E": 0}

# The buying committee of an account, by department (derived from job titles).
Department = Literal["executive", "marketing", "sales", "it", "finance", "operations"]
DEPARTMENTS: tuple[Department, ...] = ("executive", "marketing", "sales", "it", "finance", "operations")

CapKey = Literal["asset", "url", "campaign", "form_id", "link_tag", "event"]

# Conditions that only make sense for one kind of activity: a rule asking for them on
# another kind could never match, which is a mistake worth reporting.
_CONDITION_ACTIVITY = {
    "min_video_percent": ActivityType.VIDEO_PROGRESS,
    "min_seconds_on_page": ActivityType.PAGE_VIEWED,
    "form_id": ActivityType.FORM_SUBMITTED,
    "link_tag": ActivityType.EMAIL_CLICKED,
    "event": ActivityType.CUSTOM,
}


def _check_name(value: str, what: str, field_name: str) -> None:
    if not NAME_PATTERN.match(value):
        raise ConfigProblem(field_name, f"{what} '{value}' must be a lowercase identifier: a-z, 0-9 and _")


@dataclass(frozen=True, slots=True)
class RuleConditions:
    """What an activity must carry for a rule to match: every condition given must hold.

    Text conditions (asset, link_tag, form_id, campaign, event) are an exact value or a
    glob (``*`` any characters, ``?`` one), compared case-insensitively.
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    url_glob: str | None = None
    """Glob over the activity's URL (page viewed, link clicked, file downloaded). Starting with / it is
    matched against the path alone (/pricing*); containing :// against the whole URL. Case-insensitive;
    * also matches /."""
    asset: str | None = None
    """The asset (document, video, webinar) id, e.g. whitepaper-*."""
    link_tag: str | None = None
    """The tag of the clicked email link (email_clicked only), e.g. pricing."""
    min_video_percent: Annotated[int, Ge(1), Le(100)] | None = None
    """The share of the video watched is at least this (video_progress only)."""
    form_id: str | None = None
    """The id of the submitted form (form_submitted only)."""
    campaign: str | None = None
    """The email campaign, or the utm_campaign the activity came with."""
    event: str | None = None
    """The name of a custom event (custom only)."""
    min_seconds_on_page: Annotated[int, Ge(1)] | None = None
    """Time on the page is at least this many seconds (page_viewed only)."""

    def __post_init__(self) -> None:
        if self.url_glob is not None and not self.url_glob.strip():
            raise ConfigProblem("url_glob", "must not be blank")

    def given(self) -> list[str]:
        """The names of the conditions that are set."""
        return [item.name for item in fields(self) if getattr(self, item.name) is not None]


@dataclass(frozen=True, slots=True)
class Cap:
    """The most points a rule gives in one period.

    Periods are fixed windows of ``period_days`` counted from Monday 1970-01-05 00:00 UTC
    (so 7 days is a calendar week, Monday to Sunday UTC): a lead's total for the rule in any
    one window never exceeds ``max_points``, whatever order activities arrive in.
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    max_points: Annotated[int, Ge(1), Le(MAX_POINTS * 100)]
    """Most points per period (for a rule taking points away: most points taken)."""
    period_days: Annotated[int, Ge(1), Le(3660)]
    """Length of the period in days."""
    per: CapKey | None = None
    """Count the cap separately per asset, URL, campaign, form, link tag or event (per: asset with a
    long period: each video scores once); by default one cap for all of the rule's activities."""


@dataclass(frozen=True, slots=True)
class ScoringRule:
    """Points for one kind of activity, when its conditions hold."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    id: str
    """Rule id, unique in its model (a lowercase identifier); the ledger names it."""
    activity: ActivityType
    """The activity type the rule scores."""
    points: Annotated[int, Ge(-MAX_POINTS), Le(MAX_POINTS)]
    """Points given (negative: taken away). Every rule of a model that matches an activity applies."""
    when: RuleConditions = RuleConditions()
    """Conditions on the activity; none: every activity of the type matches."""
    cap: Cap | None = None
    """The most points the rule gives per period; none: no limit."""
    description: str | None = None
    """What the rule rewards, in words a sales rep reads (e.g. Viewed the pricing page)."""

    def __post_init__(self) -> None:
        _check_name(self.id, "rule id", "id")
        if self.points == 0:
            raise ConfigProblem("points", "a rule must give or take points (0 does nothing)")
        for name in self.when.given():
            needed = _CONDITION_ACTIVITY.get(name)
            if needed is not None and self.activity != needed:
                raise ConfigProblem("when", f"{name} only applies to {needed.value} activities, not {self.activity}")
        if self.cap is not None and self.cap.per is not None:
            needed = _CONDITION_ACTIVITY.get(self.cap.per)
            if needed is not None and self.activity != needed:
                raise ConfigProblem("cap", f"per: {self.cap.per} only applies to {needed.value} activities")

    @property
    def label(self) -> str:
        return self.description or self.id.replace("_", " ")


@dataclass(frozen=True, slots=True)
class ScoringModel:
    """One way of scoring behaviour (e.g. small customers, key accounts, existing customers)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    rules: Annotated[tuple[ScoringRule, ...], MinLen(1)]
    """The rules; an activity gets the points of every rule that matches it."""
    description: str = ""
    """Whom the model is for."""
    half_life_days: Annotated[float, Gt(0), Le(3650)] | None = None
    """Points lose half their value every this many days (computed when the score is read, from each
    point's age); none: points never fade."""

    def __post_init__(self) -> None:
        ids = [rule.id for rule in self.rules]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ConfigProblem("rules", f"rule ids used twice: {duplicates}")

    def rule(self, rule_id: str) -> ScoringRule | None:
        return next((rule for rule in self.rules if rule.id == rule_id), None)


@dataclass(frozen=True, slots=True)
class GradeRule:
    """Fit points for a profile that has (or lacks) something, e.g. a senior title."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    id: str
    """Rule id, unique in the grade rules (a lowercase identifier)."""
    points: Annotated[int, Ge(-MAX_POINTS), Le(MAX_POINTS)]
    """Points given when the rule matches (negative: taken away)."""
    field: str | None = None
    """The lead field read: title, company, country, email_domain... or a form's custom field as
    cf_<name> (e.g. cf_company_size). Not with free_mail."""
    equals: str | None = None
    """The field equals this text (case-insensitive). Quote values YAML reads otherwise (country NO is false)."""
    one_of: tuple[str, ...] | None = None
    """The field equals one of these texts (case-insensitive)."""
    matches: str | None = None
    """A regular expression found anywhere in the field (case-insensitive), e.g. \\b(vp|director)\\b."""
    at_least: float | None = None
    """The field is a number at least this."""
    below: float | None = None
    """The field is a number below this."""
    free_mail: bool | None = None
    """true: the email is at a free mail provider (gmail.com...); false: at a company domain."""
    group: str | None = None
    """Rules of one group are alternatives: only the first that matches (in file order) counts, e.g.
    seniority levels, best first."""
    description: str | None = None
    """What the rule rewards, in words (e.g. Decision maker)."""

    def __post_init__(self) -> None:
        _check_name(self.id, "rule id", "id")
        if self.group is not None:
            _check_name(self.group, "group", "group")
        kinds = [
            name
            for name, given in (
                ("equals", self.equals is not None),
                ("one_of", self.one_of is not None),
                ("matches", self.matches is not None),
                ("at_least/below", self.at_least is not None or self.below is not None),
                ("free_mail", self.free_mail is not None),
            )
            if given
        ]
        if len(kinds) != 1:
            raise ConfigProblem(
                None, f"give exactly one of equals, one_of, matches, at_least/below, free_mail (got {kinds or 'none'})"
            )
        if self.free_mail is not None:
            if self.field is not None:
                raise ConfigProblem("field", "free_mail reads the email domain: leave field out")
        elif self.field is None:
            raise ConfigProblem("field", f"{kinds[0]} needs the field it reads")
        elif not FIELD_PATTERN.match(self.field):
            raise ConfigProblem("field", f"'{self.field}' is not a lead field name (a-z, 0-9 and _)")
        if self.one_of is not None and not self.one_of:
            raise ConfigProblem("one_of", "must list at least one value")
        if self.matches is not None:
            try:
                re.compile(self.matches, re.IGNORECASE)
            except re.error as error:
                raise ConfigProblem("matches", f"not a valid regular expression: {error}") from None
        if self.at_least is not None and self.below is not None and self.at_least >= self.below:
            raise ConfigProblem("below", "must be greater than at_least")

    @property
    def label(self) -> str:
        return self.description or self.id.replace("_", " ")


@dataclass(frozen=True, slots=True)
class GradeConfig:
    """The fit grade: profile points, and the points each grade needs."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    rules: tuple[GradeRule, ...] = ()
    """Profile rules; the points of every matching rule add up (one per group)."""
    thresholds: dict[ThresholdLetter, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    """Fewest points for each grade, A highest; below the lowest given is F."""

    def __post_init__(self) -> None:
        ids = [rule.id for rule in self.rules]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ConfigProblem("rules", f"rule ids used twice: {duplicates}")
        if not self.thresholds:
            raise ConfigProblem("thresholds", "give at least one grade's points")
        ordered = [(letter, self.thresholds[letter]) for letter in GRADES if letter in self.thresholds]
        for (better, high), (worse, low) in pairwise(ordered):
            if high <= low:
                raise ConfigProblem("thresholds", f"{better} needs more points than {worse} ({high} <= {low})")


@dataclass(frozen=True, slots=True)
class MqlRule:
    """When a lead is marketing-qualified: its score in one model, and its grade."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    score_at_least: Annotated[float, Gt(0)]
    """The (decayed) score a lead needs."""
    grade_at_least: GradeLetter | None = None
    """The fit grade a lead needs (B: A or B); none: any grade."""
    model: str | None = None
    """The scoring model whose score counts; none: the default model."""


@dataclass(frozen=True, slots=True)
class StageRules:
    """How scores move lifecycle stages (subscriber, lead, mql; sales owns the rest)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    mql: MqlRule
    """When a lead becomes an MQL."""
    on_decay: Literal["recycled", "stay"] = "recycled"
    """An MQL whose score fades below recycle_below (it went quiet): recycled (back to nurturing), or stay an MQL."""
    recycle_below: Annotated[float, Ge(0)] | None = None
    """The score under which a quiet MQL is recycled; none: mql.score_at_least. Lower it to keep leads
    near the line from flapping between mql and recycled."""
    promote_from: tuple[Stage, ...] = DEFAULT_PROMOTE_FROM
    """Stages from which a lead may become an MQL by score; never mql or a stage sales owns (sql,
    opportunity, customer, disqualified)."""

    def __post_init__(self) -> None:
        forbidden = sorted(set(self.promote_from) & (SALES_OWNED_STAGES | {"mql"}))
        if forbidden:
            raise ConfigProblem("promote_from", f"scoring never moves a lead out of {forbidden}")
        if self.recycle_below is not None and self.recycle_below > self.mql.score_at_least:
            raise ConfigProblem("recycle_below", "must not be above mql.score_at_least (a new MQL would be recycled)")

    @property
    def recycle_threshold(self) -> float:
        return self.mql.score_at_least if self.recycle_below is None else self.recycle_below


@dataclass(frozen=True, slots=True)
class AccountRules:
    """How leads of one company (by email domain) roll up into an account score."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    model: str | None = None
    """The scoring model whose lead scores roll up (e.g. key_account); none: the default model."""
    committee: Annotated[tuple[Department, ...], MinLen(1)] = DEPARTMENTS
    """The departments of a full buying committee; coverage is the share of them engaged."""
    engaged_at_least: Annotated[float, Gt(0)] = 10
    """The score from which a lead counts as engaged (and its department as covered)."""

    def __post_init__(self) -> None:
        if len(set(self.committee)) != len(self.committee):
            raise ConfigProblem("committee", "lists a department twice")


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    """scoring.yaml: the scoring models, the fit grade, stage rules and account roll-up."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    models: Annotated[dict[str, ScoringModel], MinLen(1)]
    """Scoring models by name (lowercase identifiers), e.g. smb, key_account, customer. Every activity
    is scored in every model."""
    default_model: str
    """The model used where none is named."""
    stages: StageRules
    """How scores move lifecycle stages."""
    grade: GradeConfig = GradeConfig()
    """The fit grade."""
    accounts: AccountRules = AccountRules()
    """The account roll-up for key accounts."""

    def __post_init__(self) -> None:
        for name in self.models:
            _check_name(name, "model name", "models")
        known = ", ".join(sorted(self.models))
        if self.default_model not in self.models:
            raise ConfigProblem("default_model", f"no model named '{self.default_model}' (models: {known})")
        if self.stages.mql.model is not None and self.stages.mql.model not in self.models:
            raise ConfigProblem("stages", f"mql.model: no model named '{self.stages.mql.model}' (models: {known})")
        if self.accounts.model is not None and self.accounts.model not in self.models:
            raise ConfigProblem("accounts", f"model: no model named '{self.accounts.model}' (models: {known})")
        if self.stages.mql.grade_at_least not in (None, "F") and not self.grade.rules:
            raise ConfigProblem("grade", "stages.mql.grade_at_least needs grade rules (without them every lead is E/F)")

    @property
    def mql_model(self) -> str:
        """The name of the model whose score makes MQLs."""
        return self.stages.mql.model or self.default_model

    @property
    def account_model(self) -> str:
        """The name of the model whose lead scores roll up into accounts."""
        return self.accounts.model or self.default_model

    @classmethod
    def model_validate(cls, data: Any) -> ScoringConfig:
        """Validate untrusted data (a parsed YAML file). Raises pydantic.ValidationError."""
        return models.validate(cls, data)

    @classmethod
    def from_trusted(cls, data: dict[str, Any]) -> ScoringConfig:
        """Rebuild a config that ``model_validate`` already checked (a compiled workspace), without pydantic."""
        stages = data["stages"]
        grade = data.get("grade")
        accounts = data.get("accounts")
        return cls(
            models={name: _model(model) for name, model in data["models"].items()},
            default_model=data["default_model"],
            stages=StageRules(
                **{
                    **stages,
                    "mql": MqlRule(**stages["mql"]),
                    "promote_from": tuple(stages.get("promote_from", DEFAULT_PROMOTE_FROM)),
                }
            ),
            grade=GradeConfig() if grade is None else _grade(grade),
            accounts=AccountRules()
            if accounts is None
            else AccountRules(**{**accounts, "committee": tuple(accounts.get("committee", DEPARTMENTS))}),
        )


def _model(data: dict[str, Any]) -> ScoringModel:
    rules = tuple(
        ScoringRule(
            **{
                **rule,
                "activity": ActivityType(rule["activity"]),
                "when": RuleConditions(**(rule.get("when") or {})),
                "cap": Cap(**rule["cap"]) if rule.get("cap") else None,
            }
        )
        for rule in data["rules"]
    )
    return ScoringModel(**{**data, "rules": rules})


def _grade(data: dict[str, Any]) -> GradeConfig:
    rules = tuple(
        GradeRule(**{**rule, "one_of": tuple(rule["one_of"]) if rule.get("one_of") is not None else None})
        for rule in data.get("rules", ())
    )
    thresholds = data.get("thresholds")
    return GradeConfig(rules=rules, thresholds=dict(DEFAULT_THRESHOLDS if thresholds is None else thresholds))
