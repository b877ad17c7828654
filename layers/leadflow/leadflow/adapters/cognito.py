"""Amazon Cognito for the console: signing a person in, and checking the ID token they carry.

``HostedSignIn`` is the console's sign-in: the user pool's hosted UI (authorization code grant
with PKCE), the code exchanged for tokens server-side. ``CognitoSignIn`` uses an app client's
``USER_PASSWORD_AUTH`` flow (``InitiateAuth``) and answers a first sign-in's
``NEW_PASSWORD_REQUIRED`` challenge: the local stack's stand-in for the hosted UI signs people in
with it. ``JwksTokenVerifier`` makes the
checks API Gateway's JWT authorizer makes, for requests that carry the token in a cookie (a
browser's console pages), where no API Gateway authorizer can read it: the RS256 signature
against the user pool's published keys (JWKS), the issuer, the audience (the app client), that it
is an ID token, and its expiry.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from leadflow.adapters.aws import LazyClient
from leadflow.domain.errors import SignInCodeRefused


class SignInRefused(Exception):
    """Wrong email or password (the same answer for both: Cognito does not say which)."""


class PasswordRefused(Exception):
    """The new password breaks the user pool's password policy (the message says how)."""


class InvalidToken(Exception):
    """A token that is not a valid, current ID token of this user pool's app client."""


@dataclass(frozen=True)
class SignInResult:
    """Signed in (``id_token``), or a first sign-in that must choose a password (``session``)."""

    id_token: str | None = None
    expires_in: int = 0
    session: str | None = None


class CognitoSignIn(LazyClient):
    SERVICE: ClassVar[str] = "cognito-idp"

    def __init__(self, client_id: str, client: Any = None) -> None:
        self.client_id = client_id
        self._client = client

    def sign_in(self, email: str, password: str) -> SignInResult:
        try:
            answer = self.client.initiate_auth(
                AuthFlow="USER_PASSWORD_AUTH",
                ClientId=self.client_id,
                AuthParameters={"USERNAME": email, "PASSWORD": password},
            )
        except (self.client.exceptions.NotAuthorizedException, self.client.exceptions.UserNotFoundException):
            raise SignInRefused from None
        return self._result(answer)

    def choose_password(self, email: str, session: str, password: str) -> SignInResult:
        try:
            answer = self.client.respond_to_auth_challenge(
                ClientId=self.client_id,
                ChallengeName="NEW_PASSWORD_REQUIRED",
                Session=session,
                ChallengeResponses={"USERNAME": email, "NEW_PASSWORD": password},
            )
        except self.client.exceptions.InvalidPasswordException as error:
            raise PasswordRefused(error.response["Error"]["Message"]) from None
        except (self.client.exceptions.NotAuthorizedException, self.client.exceptions.CodeMismatchException):
            raise SignInRefused from None
        return self._result(answer)

    @staticmethod
    def _result(answer: dict[str, Any]) -> SignInResult:
        if answer.get("ChallengeName") == "NEW_PASSWORD_REQUIRED":
            return SignInResult(session=answer["Session"])
        if "AuthenticationResult" not in answer:
            raise SignInRefused  # another challenge (MFA set-up) the console does not offer
        result = answer["AuthenticationResult"]
        return SignInResult(id_token=result["IdToken"], expires_in=int(result.get("ExpiresIn", 3600)))


class JwksTokenVerifier:
    """Checks an ID token as API Gateway's JWT authorizer would; the keys are fetched once and
    again only when a token names a key not seen yet (Cognito rotates keys rarely)."""

    def __init__(
        self,
        issuer: str,
        audience: str | Sequence[str],
        jwks_url: str,
        now: Callable[[], float] = time.time,
        timeout: float = 5,
    ) -> None:
        """``audience``: the app client (or clients, as a JWT authorizer lists them) whose tokens count."""
        self.issuer, self.jwks_url, self.now, self.timeout = issuer, jwks_url, now, timeout
        self.audience = [audience] if isinstance(audience, str) else list(audience)
        if not self.audience or not all(self.audience):
            raise ValueError("a token verifier needs the app client id(s) its tokens are issued to")
        self._keys: KeySet | None = None

    def claims(self, token: str) -> dict[str, Any]:
        """The verified token's claims. Raises InvalidToken."""
        try:
            decoded = jwt.decode(token, self._key_set(token), algorithms=["RS256"])
            registry = jwt.JWTClaimsRegistry(
                now=lambda: int(self.now()),
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "values": self.audience},
                exp={"essential": True},
                token_use={"essential": True, "value": "id"},
            )
            registry.validate(decoded.claims)
        except (JoseError, ValueError) as error:
            raise InvalidToken(type(error).__name__) from None
        return dict(decoded.claims)

    def _key_set(self, token: str) -> KeySet:
        try:
            header = json.loads(_b64url(token.split(".", 1)[0]))
        except (ValueError, IndexError):
            raise InvalidToken("not a JWT") from None
        if self._keys is None or not any(k.kid == header.get("kid") for k in self._keys.keys):
            with urllib.request.urlopen(self.jwks_url, timeout=self.timeout) as answer:  # noqa: S310 - the user pool's https JWKS URL (settings)  # nosec B310
                self._keys = KeySet.import_key_set(json.load(answer))
        return self._keys


def _b64url(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass(frozen=True)
class HostedUi:
    """Where the user pool's hosted sign-in lives and which app client the console signs in with.

    ``domain``: ``https://<prefix>.auth.<region>.amazoncognito.com`` in AWS (the ``UserPoolDomain``);
    on the local stack the dev gateway's stand-in, ``http://127.0.0.1:<port>/_dev/cognito``. The
    endpoints are Cognito's: ``/oauth2/authorize``, ``/oauth2/token``, ``/logout``."""

    client_id: str
    domain: str

    def authorize_url(self, redirect_uri: str, state: str, challenge: str) -> str:
        """The authorization code grant with PKCE (S256, the only method Cognito takes)."""
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": "openid email profile",
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{self.domain}/oauth2/authorize?{query}"

    def logout_url(self, logout_uri: str) -> str:
        return f"{self.domain}/logout?{urllib.parse.urlencode({'client_id': self.client_id, 'logout_uri': logout_uri})}"


class HostedSignIn(LazyClient):
    """The console's hosted sign-in: its settings (an SSM parameter the template writes, JSON
    ``{"client_id", "domain"}``: the function cannot name the app client in its environment, whose
    callback URL names the API that names the function) and the server-side code exchange."""

    SERVICE: ClassVar[str] = "ssm"

    def __init__(self, parameter: str, client: Any = None, timeout: float = 10) -> None:
        self.parameter, self._client, self.timeout = parameter, client, timeout
        self._ui: HostedUi | None = None

    def ui(self) -> HostedUi:
        """The settings, read once per instance."""
        if self._ui is None:
            value = json.loads(self.client.get_parameter(Name=self.parameter)["Parameter"]["Value"])
            self._ui = HostedUi(str(value["client_id"]), str(value["domain"]).rstrip("/"))
        return self._ui

    def exchange(self, code: str, redirect_uri: str, verifier: str) -> SignInResult:
        """Trade an authorization code for the person's tokens at ``/oauth2/token`` (a public app
        client: PKCE's verifier proves this is the sign-in that asked). Raises SignInCodeRefused."""
        ui = self.ui()
        body = urllib.parse.urlencode(
            {
                "grant_type": "authorization_code",
                "client_id": ui.client_id,
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            }
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - the user pool's https domain (or the local stack's)
            f"{ui.domain}/oauth2/token",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310  # nosec B310
                tokens = json.load(answer)
        except urllib.error.HTTPError as error:
            raise SignInCodeRefused(f"token endpoint answered {error.code}") from None
        except (urllib.error.URLError, TimeoutError, ValueError) as error:
            raise SignInCodeRefused(type(error).__name__) from None
        if not isinstance(tokens, dict) or not tokens.get("id_token"):
            raise SignInCodeRefused("no ID token in the answer")
        return SignInResult(id_token=str(tokens["id_token"]), expires_in=int(tokens.get("expires_in", 3600)))
