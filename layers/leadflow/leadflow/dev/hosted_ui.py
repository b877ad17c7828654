"""The local stack's stand-in for Cognito's hosted sign-in (moto has none), at ``/_dev/cognito``.

The same three endpoints as a user pool domain, with the same parameters, so the console's code
after the redirect is the code that runs in AWS:

- ``GET /_dev/cognito/oauth2/authorize?response_type=code&client_id&redirect_uri&state&scope
  &code_challenge&code_challenge_method=S256``: a sign-in form (the hosted UI's job); posting it
  signs the person in with moto's Cognito (``InitiateAuth`` ``USER_PASSWORD_AUTH`` on the
  console's app client; a first sign-in's new password through ``RespondToAuthChallenge``) and
  sends the browser to ``redirect_uri?code&state``;
- ``POST /_dev/cognito/oauth2/token`` (``grant_type=authorization_code``, ``client_id``, ``code``,
  ``redirect_uri``, ``code_verifier``): the code's tokens, once, when the verifier's S256 matches
  the challenge, within five minutes, for the same client and callback URL;
- ``GET /_dev/cognito/logout?client_id&logout_uri``: back to ``logout_uri``.

Only the console's app client and the local stack's own callback and sign-out URLs are accepted,
as the app client's registered URLs are in AWS.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from leadflow.transport.console_sign_in import challenge_of

if TYPE_CHECKING:
    from leadflow.dev.stack import LocalStack

BASE = "/_dev/cognito"
CODE_SECONDS = 300


@dataclass(frozen=True)
class Grant:
    """What an issued code stands for."""

    id_token: str
    expires_in: int
    client_id: str
    redirect_uri: str
    challenge: str
    issued: float


class LocalHostedUi:
    def __init__(self, stack: LocalStack, render: Any) -> None:
        self.stack, self.render = stack, render
        self._codes: dict[str, Grant] = {}
        self._lock = threading.Lock()

    @property
    def client_id(self) -> str:
        return self.stack.physical.get("ConsoleWebClient", "")

    def registered(self, path: str) -> set[str]:
        """The URLs of ``path`` the app client would list: the stack's, under each loopback name it answers to."""
        port = self.stack.url.rsplit(":", 1)[-1]
        hosts = {"127.0.0.1", "localhost", self.stack.host}
        return {f"http://{host}:{port}{path}" for host in hosts} | {f"{self.stack.url}{path}"}

    # ------------------------------------------------------------------ /oauth2/authorize
    def authorize(self, request: Request) -> Response:
        asked = dict(request.form if request.method == "POST" else request.args)
        problem = self._bad_authorize(asked)
        if problem:
            return self.render("cognito_sign_in.html.j2", 400, asked={}, error=problem, session="")
        if request.method == "GET":
            return self.render("cognito_sign_in.html.j2", 200, asked=asked, error=None, session="")
        return self._sign_in(asked)

    def _bad_authorize(self, asked: dict[str, str]) -> str | None:
        if asked.get("response_type") != "code" or asked.get("code_challenge_method") != "S256":
            return "Only the authorization code grant with PKCE (S256) is offered."
        if not self.client_id or asked.get("client_id") != self.client_id:
            return "Unknown app client."
        if asked.get("redirect_uri") not in self.registered("/console/oauth2/callback"):
            return "That callback URL is not registered on the app client."
        if not asked.get("code_challenge") or not asked.get("state"):
            return "A code_challenge and a state are needed."
        return None

    def _sign_in(self, asked: dict[str, str]) -> Response:
        from leadflow.adapters.cognito import CognitoSignIn, PasswordRefused, SignInRefused

        cognito = CognitoSignIn(self.client_id, self.stack.client("cognito-idp"))
        email = asked.get("email", "").strip()
        try:
            if asked.get("session"):
                result = cognito.choose_password(email, asked["session"], asked.get("new_password", ""))
            else:
                result = cognito.sign_in(email, asked.get("password", ""))
        except SignInRefused:
            return self._form_again(asked, "Incorrect username or password.")
        except PasswordRefused as refused:
            return self._form_again(asked, str(refused), session=asked.get("session", ""))
        if result.session:  # a first sign-in: choose a password (as the hosted UI asks)
            return self._form_again(asked, None, session=result.session)
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = Grant(
                str(result.id_token), result.expires_in, self.client_id, asked["redirect_uri"],
                asked["code_challenge"], time.monotonic(),
            )  # fmt: skip
        target = f"{asked['redirect_uri']}?{urlencode({'code': code, 'state': asked['state']})}"
        return Response("", 302, headers={"Location": target})

    def _form_again(self, asked: dict[str, str], error: str | None, session: str = "") -> Response:
        kept = {k: v for k, v in asked.items() if k not in ("password", "new_password", "session")}
        return self.render("cognito_sign_in.html.j2", 401 if error else 200, asked=kept, error=error, session=session)

    # ------------------------------------------------------------------ /oauth2/token
    def token(self, request: Request) -> Response:
        form = request.form
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # a code is good once
        if form.get("grant_type") != "authorization_code":
            return _error("unsupported_grant_type")
        if (
            grant is None
            or time.monotonic() - grant.issued > CODE_SECONDS
            or form.get("client_id") != grant.client_id
            or form.get("redirect_uri") != grant.redirect_uri
            or challenge_of(form.get("code_verifier", "")) != grant.challenge
        ):
            return _error("invalid_grant")
        body = {"id_token": grant.id_token, "expires_in": grant.expires_in, "token_type": "Bearer"}  # nosec B105
        return Response(json.dumps(body), 200, content_type="application/json", headers={"Cache-Control": "no-store"})

    # ------------------------------------------------------------------ /logout
    def logout(self, request: Request) -> Response:
        back = request.args.get("logout_uri", "")
        if request.args.get("client_id") != self.client_id or back not in self.registered("/console/signed-out"):
            return self.render("cognito_sign_in.html.j2", 400, asked={}, error="Unknown sign-out URL.", session="")
        return Response("", 302, headers={"Location": back})


def _error(code: str) -> Response:
    return Response(json.dumps({"error": code}), 400, content_type="application/json")
