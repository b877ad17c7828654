"""Builders of the HTTP pages: the console (with its sign-in, token check, audit trail and
suppression list), the styled 404 pages and the hosted landing pages."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from leadflow.bootstrap.admin_api import api_imports, api_scoring, api_workspace, audience_service, lead_queries
from leadflow.bootstrap.clock import system_clock
from leadflow.bootstrap.gdpr import gdpr_service
from leadflow.bootstrap.handoff import handoff_service
from leadflow.bootstrap.nurture import nurture_admin_service, nurture_reader_for, publish_nurture_counts
from leadflow.bootstrap.reporting import reporting_service
from leadflow.config.workspace import Workspace
from leadflow.settings import (
    REQUEST_HOST,
    ApiSettings,
    ConsoleSettings,
    FeedbackSettings,
    LandingSettings,
    local_base_url,
)

if TYPE_CHECKING:  # annotations only: each function's cold start loads the modules it builds
    from leadflow.adapters.cognito import HostedSignIn, JwksTokenVerifier
    from leadflow.services.audit import AuditTrail
    from leadflow.services.suppression import SuppressionService
    from leadflow.transport.console import Console
    from leadflow.transport.landing import LandingPages
    from leadflow.transport.not_found import NotFoundPages


@cache
def audit_trail() -> AuditTrail:
    """Changes by people and machines through the console and the admin API (the leads table)."""
    from leadflow.adapters.audit import DynamoAuditLog
    from leadflow.services.audit import AuditTrail

    return AuditTrail(DynamoAuditLog(ApiSettings.from_env().leads_table), system_clock())


@cache
def console_sign_in() -> HostedSignIn:
    """The console's hosted sign-in (its app client and domain, read from SSM on first use)."""
    from leadflow.adapters.cognito import HostedSignIn

    return HostedSignIn(ConsoleSettings.from_env().console_sign_in_parameter)


@cache
def console_verifier() -> JwksTokenVerifier:
    """Checks the console's ID tokens: the user pool's, issued to the hosted sign-in's app client."""
    from leadflow.adapters.cognito import JwksTokenVerifier

    settings = ConsoleSettings.from_env()
    audience = console_sign_in().ui().client_id
    return JwksTokenVerifier(settings.console_issuer, audience, settings.console_jwks_url)


@cache
def console() -> Console:
    """The console function's pages, on the user pool of ``ConsoleSettings`` (checked at cold start)."""
    from leadflow.transport.console import Console, ConsoleParts

    settings = ConsoleSettings.from_env()
    return Console(
        ConsoleParts(
            hosted=console_sign_in,
            verify=lambda token: console_verifier().claims(token),
            leads=lead_queries,
            scoring=api_scoring,
            nurture=lambda: nurture_reader_for(settings.leads_table, api_workspace(), system_clock()),
            handoffs=handoff_service,
            audit=audit_trail,
            reports=reporting_service,
            now=lambda: system_clock().now(),
            audience=audience_service,
            enrollments=nurture_admin_service,
            publish_counts=publish_nurture_counts,
            suppression=suppression_service,
            gdpr=gdpr_service,
            imports=api_imports,
            secure_cookie=local_base_url() is None,
            local=local_base_url() is not None,
        )
    )


@cache
def suppression_service() -> SuppressionService:
    """The suppression list as the console shows and changes it (the keyed hash of each address)."""
    from leadflow.adapters.secrets import SecretKey
    from leadflow.adapters.suppression import DynamoSuppressionList
    from leadflow.domain.gdpr import AddressHasher
    from leadflow.services.suppression import SuppressionService

    settings = FeedbackSettings.from_env()
    hasher = AddressHasher(SecretKey(settings.suppression_secret_arn))
    return SuppressionService(DynamoSuppressionList(settings.leads_table), hasher, system_clock())


@cache
def not_found_pages() -> NotFoundPages:
    """The HTTP API's ``$default`` route: unknown URLs."""
    from leadflow.transport.not_found import NotFoundPages

    return NotFoundPages(local=local_base_url() is not None)


# ---------------------------------------------------------------------------- hosted landing pages
@cache
def landing_pages() -> LandingPages:
    """``GET /f/{form_id}`` and its embed script: the workspace's forms, their render time signed."""
    from leadflow.adapters.secrets import SecretsManagerKeys
    from leadflow.domain.tokens import sign_render_time
    from leadflow.transport.landing import LandingPages

    settings = LandingSettings.from_env()
    keys = SecretsManagerKeys(settings.tracking_secret_arn)
    clock = system_clock()
    base_url = "" if settings.forms_base_url == REQUEST_HOST else settings.forms_base_url.rstrip("/")
    return LandingPages(
        Workspace(settings.leadflow_workspace),
        lambda: sign_render_time(int(clock.now().timestamp() * 1000), keys()[0]),
        lambda: base_url,
    )
