"""Scoring leads: behaviour points per model, fit grade, lifecycle stage, explained.

Each activity is scored once: ledger entries have deterministic ids and are written with a
condition, so a redelivered event adds nothing; the lead's score summary carries a version
checked on write, so two activities of one lead scored at once both count (the loser reloads
and tries again).

A scored activity's ledger item and the summary are two plain writes, the ledger item first
(issue 17: a transaction bills each item twice). The summary counts the ledger entries it was
worked out from (``scored_entries``), so a later scoring sees when it lags the ledger: the loser
of a race (its item written, its summary refused) or a crash between the two writes. The next
scoring of that activity (the loser's retry, which looks again even when a third scoring has
counted its entries meanwhile, or the redelivery) then checks the activity's entries against the
ledger without them (a cap the two shared is given once: the later one gets what is left) and
writes the summary with a correcting ``lead.scored`` in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from leadflow.config.workspace import Workspace
from leadflow.domain.accounts import LeadScoreSummary, account_score
from leadflow.domain.errors import LeadflowError, LeadNotFound
from leadflow.domain.events import SOURCE_SCORING, DomainEvent, lead_scored
from leadflow.domain.grading import fit_grade, next_stage
from leadflow.domain.ids import new_id
from leadflow.domain.scoring import Activity, Ledger, LedgerEntry, ModelSet
from leadflow.domain.scoring_compiled import CompiledModel, compile_models
from leadflow.domain.scoring_decay import decayed_score, explain
from leadflow.ports.clock import Clock
from leadflow.ports.scoring import RescoreStore, ScoreStore, ScoreWrite

CONFLICT_RETRIES = 8
SCORED_ENTRIES = "scored_entries"
"""The summary's count of the ledger entries it was worked out from (a lag shows a write missed)."""


class ScoreConflict(LeadflowError):
    """The lead's score changed under us on every retry."""


@dataclass(frozen=True)
class Redone:
    """An activity's entries when the summary lags the ledger (``ScoringService._redone``)."""

    others: list[LedgerEntry]
    """The ledger's other entries."""
    entries: list[LedgerEntry]
    """The activity's entries as they are to stand."""
    changed: bool
    """Whether they differ (the ledger item is written anew)."""


@dataclass(frozen=True)
class ScoreOutcome:
    lead_id: str
    points_added: int
    scores: dict[str, float]
    grade: str
    stage: str
    stage_changed_from: str | None = None


class ScoringService:
    def __init__(self, workspace: Workspace, store: ScoreStore, clock: Clock) -> None:
        self.workspace = workspace
        self.store = store
        self.clock = clock

    @cached_property
    def models(self) -> dict[str, CompiledModel]:
        return compile_models(self.workspace.scoring)

    @cached_property
    def model_set(self) -> ModelSet:
        """Every model, scored together: each activity is scored in all of them."""
        return ModelSet(self.models.values())

    def score(self, lead_id: str, activity: dict[str, Any] | None = None) -> ScoreOutcome | None:
        """Score one activity of a lead (or, with none, re-evaluate grade, decay and stage).

        Returns:
            What changed, or None when the lead does not exist (erased, or never stored).

        Raises:
            ScoreConflict: the lead kept changing under concurrent scoring.
        """

        def earned(ledger: Ledger, _now: datetime) -> list[LedgerEntry]:
            if activity is None:
                return []
            return self.model_set.score(Activity.from_record({**activity, "lead_id": lead_id}), ledger)

        return self._apply(lead_id, activity, earned, write_if_nothing_new=True)

    def award(self, lead_id: str, points: int, model: str | None, reason: str, award_id: str) -> None:
        """Points given by a sequence action (not by an activity): one ledger entry, once per ``award_id``.

        Raises:
            ScoreConflict: the lead kept changing under concurrent scoring.
        """
        name = model or self.workspace.scoring.default_model
        entry_id = f"{award_id}:{name}:sequence_action"

        def earned(ledger: Ledger, now: datetime) -> list[LedgerEntry]:
            if entry_id in ledger.ids:
                return []
            return [LedgerEntry(entry_id, name, "sequence_action", award_id, "sequence_action", now, points, reason)]

        self._apply(lead_id, None, earned, write_if_nothing_new=False)

    def _apply(
        self,
        lead_id: str,
        activity: dict[str, Any] | None,
        earned: Callable[[Ledger, datetime], list[LedgerEntry]],
        write_if_nothing_new: bool,
    ) -> ScoreOutcome | None:
        """New ledger entries (``earned``), the decayed scores, grade and stage, written with optimistic locking."""
        tried = False  # an earlier try wrote (or found) this activity's entries and was refused
        for _attempt in range(CONFLICT_RETRIES):
            state = self.store.score_state(lead_id)
            if state.profile is None:
                return None
            ledger = Ledger(LedgerEntry.from_item(item) for item in state.ledger)
            now = self.clock.now()
            new = earned(ledger, now)
            if not new and not write_if_nothing_new:
                return None
            redone = self._redone(lead_id, activity, ledger, state.profile, tried) if activity and not new else None
            kept = ledger.entries if redone is None else [*redone.others, *redone.entries]
            summary, stage, moved = self.summary(state.profile, [*kept, *new], now)
            scores = summary["scores"]
            items = [e.as_item() for e in new]
            scored = self._scored(lead_id, activity, items, summary, now)
            events = [scored] if scored is not None and activity is None else []
            if redone is not None:  # the summary caught up with the ledger: say so
                events.append(self._correction(lead_id, activity, redone.entries, summary, now))
            if moved:
                events.append(_stage_changed(lead_id, stage, moved, summary, now))
            write = ScoreWrite(
                lead_id,
                state.version,
                [e.as_item() for e in redone.entries] if redone and redone.changed else items,
                summary,
                (stage, moved) if moved else None,
                events,
                # A scored activity's ledger item is its lead.scored event (no outbox item);
                # an award's goes to the outbox (its event names no activity).
                announced=scored if activity is not None else None,
                replaced=_items_of(state.ledger, activity) if redone and redone.changed else [],
            )
            if self.store.apply_score(write):
                return ScoreOutcome(
                    lead_id,
                    sum(e.points for e in new),
                    scores,
                    summary["grade"],
                    moved or stage,
                    stage if moved else None,
                )
            tried = tried or bool(new)
        raise ScoreConflict(lead_id)

    def summary(
        self, profile: dict[str, Any], entries: list[LedgerEntry], now: datetime
    ) -> tuple[dict[str, Any], str, str | None]:
        """The score summary of a profile with these ledger entries now (scores per model, grade,
        the count of entries), its stage, and the stage the rules move it to (None: it stays)."""
        config = self.workspace.scoring
        scores = {name: round(decayed_score(entries, model, now), 2) for name, model in self.models.items()}
        grade = fit_grade(profile, config.grade)
        stage = str(profile.get("stage") or "lead")
        moved = next_stage(stage, scores[config.mql_model], grade.letter, config.stages)
        summary = {
            "scores": scores,
            "grade": grade.letter,
            "grade_points": grade.points,
            "scored_at": now.isoformat(),
            SCORED_ENTRIES: len(entries),
        }
        return summary, stage, moved

    def _redone(
        self, lead_id: str, activity: dict[str, Any], ledger: Ledger, profile: dict[str, Any], retried: bool
    ) -> Redone | None:
        """An activity already in the ledger, looked at again when the summary lags the ledger
        (``scored_entries`` below the entries read: a summary write was missed) or when this
        scoring's own earlier try wrote entries and was refused (``retried``: a third scoring may
        have counted them meanwhile): its entries as they stand and as it earns them against the
        rest of the ledger (what a shared cap left it). None when there is nothing to correct."""
        counted = profile.get(SCORED_ENTRIES)
        lags = counted is not None and int(counted) < len(ledger.entries)
        if not lags and not retried:
            return None
        activity_id = str(activity.get("activity_id") or "")
        stored = [e for e in ledger.entries if e.activity_id == activity_id]
        others = Ledger(e for e in ledger.entries if e.activity_id != activity_id)
        earned = self.model_set.score(Activity.from_record({**activity, "lead_id": lead_id}), others)
        changed = sorted((e.entry_id, e.points) for e in earned) != sorted((e.entry_id, e.points) for e in stored)
        if not lags and not changed:
            return None  # the summary has the entries, and they stand: nothing to say
        return Redone(others.entries, earned if changed else stored, changed)

    def _correction(
        self,
        lead_id: str,
        activity: dict[str, Any] | None,
        entries: list[LedgerEntry],
        summary: dict[str, Any],
        now: datetime,
    ) -> DomainEvent:
        """The ``lead.scored`` that corrects the one an activity's ledger item announced before its
        summary was written (a race lost, a crash between the writes): its entries as they stand
        now and the scores with every entry of the ledger."""
        return lead_scored(
            new_id(now),
            now.isoformat(),
            lead_id,
            (activity or {}).get("activity_id"),
            [e.as_item() for e in entries],
            summary["scores"],
            summary["grade"],
            self.workspace.nurture_listens["lead.scored"],
        )

    def _scored(
        self,
        lead_id: str,
        activity: dict[str, Any] | None,
        entries: list[dict[str, Any]],
        summary: dict[str, Any],
        now: datetime,
    ) -> DomainEvent | None:
        """The ``lead.scored`` event of new ledger ``entries`` (None when there are none)."""
        if not entries:
            return None
        return lead_scored(
            new_id(now),
            now.isoformat(),
            lead_id,
            (activity or {}).get("activity_id"),
            entries,
            summary["scores"],
            summary["grade"],
            self.workspace.nurture_listens["lead.scored"],
        )

    # ------------------------------------------------------------------ reading
    def explain_lead(self, lead_id: str, top: int = 5) -> dict[str, Any]:
        """Score per model at this moment, with the top reasons, the grade and the stage.

        Raises:
            LeadNotFound: no such lead.
        """
        state = self.store.score_state(lead_id)
        if state.profile is None:
            raise LeadNotFound(lead_id)
        now = self.clock.now()
        entries = [LedgerEntry.from_item(item) for item in state.ledger]
        grade = fit_grade(state.profile, self.workspace.scoring.grade)
        models = {}
        for name, model in self.models.items():
            models[name] = {
                "score": round(decayed_score(entries, model, now), 2),
                "reasons": [
                    {
                        "rule_id": r.rule_id,
                        "description": r.description,
                        "activities": r.activities,
                        "points": r.points,
                        "value": round(r.value, 2),
                        "last_at": r.last_at.isoformat(),
                    }
                    for r in explain(entries, model, now, top)
                ],
            }
        return {
            "lead_id": lead_id,
            "as_of": now.isoformat(),
            "stage": state.profile.get("stage"),
            "mql_model": self.workspace.scoring.mql_model,
            "models": models,
            "grade": {
                "letter": grade.letter,
                "points": grade.points,
                "reasons": [
                    {"rule_id": r.rule_id, "field": r.field, "points": r.points, "description": r.description}
                    for r in grade.reasons
                ],
            },
            "ledger_entries": len(entries),
        }

    def account(self, domain: str) -> dict[str, Any]:
        """The key-account view of a company: its leads scored as one buying committee.

        Raises:
            LeadNotFound: no lead of that domain.
        """
        config = self.workspace.scoring
        leads = self.store.account_leads(domain.lower())
        if not leads:
            raise LeadNotFound(domain)
        model_name = config.accounts.model or config.default_model
        summaries = []
        for lead in leads:
            entries = [LedgerEntry.from_item(item) for item in self.store.score_state(lead["lead_id"]).ledger]
            score = decayed_score(entries, self.models[model_name], self.clock.now())
            summaries.append(LeadScoreSummary(lead["lead_id"], domain.lower(), round(score, 2), lead.get("title")))
        result = account_score(summaries, config.accounts)
        return {
            "account_domain": result.account_domain,
            "model": model_name,
            "score": round(result.score, 2),
            "best_lead_score": result.best_lead_score,
            "leads": result.leads,
            "engaged_leads": result.engaged_leads,
            "departments": list(result.departments),
            "missing_departments": list(result.missing_departments),
            "coverage": round(result.coverage, 3),
            "top_leads": list(result.top_leads),
        }


@dataclass(frozen=True)
class RescoreResult:
    lead_id: str
    added: int
    removed: int
    stage: str | None


def rescore_lead(service: ScoringService, store: RescoreStore, lead_id: str) -> RescoreResult:
    """Replay a lead's whole history through the current rules and rewrite its ledger.

    Activities are replayed in time order, so caps fall as they would have; entries the new
    rules still give are kept (same ids), the others removed, the new ones added; the score
    summary and the stage (per the stage rules) are recomputed at the current time.
    """
    state = store.score_state(lead_id)
    if state.profile is None:
        return RescoreResult(lead_id, 0, 0, None)
    ledger = Ledger()
    for record in sorted(store.lead_activities(lead_id), key=lambda a: (a.get("at", ""), a.get("activity_id", ""))):
        try:
            activity = Activity.from_record({**record, "lead_id": lead_id})
        except (KeyError, ValueError):
            continue
        ledger.record_in(service.model_set, activity)
    new = {entry.entry_id: entry.as_item() for entry in ledger.entries}
    old = {item["entry_id"]: item for item in state.ledger}
    remove = [item for entry_id, item in old.items() if entry_id not in new]
    add = [item for entry_id, item in new.items() if entry_id not in old or old[entry_id]["points"] != item["points"]]
    replaced = [old[item["entry_id"]] for item in add if item["entry_id"] in old]  # taken out, then written anew
    summary, _stage, moved = service.summary(state.profile, ledger.entries, service.clock.now())
    store.rewrite_ledger(lead_id, remove + replaced, add, summary, moved)
    return RescoreResult(lead_id, len(add), len(remove), moved)


def _items_of(ledger: list[dict[str, Any]], activity: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The ledger entries of an activity as the store read them (with the item each came from)."""
    activity_id = (activity or {}).get("activity_id")
    return [item for item in ledger if item.get("activity_id") == activity_id]


def _stage_changed(lead_id: str, stage: str, moved: str, summary: dict[str, Any], now: datetime) -> DomainEvent:
    return DomainEvent(
        new_id(now),
        SOURCE_SCORING,
        "lead.stage_changed",
        now.isoformat(),
        {"lead_id": lead_id, "from": stage, "to": moved, "scores": summary["scores"], "grade": summary["grade"]},
    )
