"""Signing in to the console with the user pool's hosted sign-in, and out again.

1. ``GET /console/sign-in``: a fresh ``state`` and PKCE verifier go into a short-lived cookie
   (``HttpOnly``, ``SameSite=Lax``: it must come back on the redirect from Cognito's domain, a
   cross-site navigation; ``Path=/console/oauth2``, ten minutes), and the browser is sent to the
   user pool's ``/oauth2/authorize`` (authorization code grant, ``code_challenge`` S256).
2. The person signs in on the hosted UI (in AWS; the local stack serves a stand-in backed by
   moto's Cognito, since moto has no hosted UI), which sends the browser back to
   ``GET /console/oauth2/callback?code&state``.
3. The callback checks ``state`` against the cookie, exchanges the code and the verifier for the
   person's tokens at ``/oauth2/token`` (server-side: the tokens never reach the page's script),
   checks the ID token as every request does, and keeps it in the session cookie (``HttpOnly``,
   ``SameSite=Strict``). It answers a small page that moves on to the leads: a browser does not
   send a ``Strict`` cookie on a redirect chain that began on another site (Cognito's domain).
4. ``POST /console/sign-out`` drops the cookie and ends the hosted UI's session too (``/logout``),
   which sends the browser to ``GET /console/signed-out``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from typing import TYPE_CHECKING

from leadflow.domain.errors import SignInCodeRefused

if TYPE_CHECKING:
    from leadflow.transport.console import Console, Request

log = logging.getLogger("leadflow.console")
FLOW_COOKIE = "lf_console_signin"
FLOW_PATH = "/console/oauth2"
FLOW_SECONDS = 600


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier (RFC 7636: 43-128 unreserved characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    return verifier, challenge_of(verifier)


def challenge_of(verifier: str) -> str:
    """BASE64URL(SHA256(verifier)), unpadded (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def callback_url(request: Request) -> str:
    """Where the hosted UI sends the browser back: this API's own callback (one of the app
    client's registered callback URLs)."""
    return f"{request.origin}{FLOW_PATH}/callback"


def _flow_cookie(console: Console, value: str, max_age: int) -> str:
    secure = "; Secure" if console.parts.secure_cookie else ""
    return f"{FLOW_COOKIE}={value}; Max-Age={max_age}; Path={FLOW_PATH}; HttpOnly; SameSite=Lax{secure}"


def start_sign_in(console: Console, request: Request) -> str:
    """To the hosted sign-in, with a new state and PKCE challenge (kept in the flow cookie)."""
    from leadflow.transport.console import Page

    state = secrets.token_urlsafe(24)
    verifier, challenge = pkce_pair()
    url = console.parts.hosted().ui().authorize_url(callback_url(request), state, challenge)
    raise Page(302, location=url, cookie=_flow_cookie(console, f"{state}.{verifier}", FLOW_SECONDS))


def finish_sign_in(console: Console, request: Request) -> str:
    """The hosted UI's redirect back: the code exchanged for the person's tokens, kept in the session cookie."""
    from leadflow.transport.console import Page

    clear = _flow_cookie(console, "", 0)
    if request.query.get("error"):
        said = request.query.get("error_description") or request.query["error"]
        raise _again(console, request, f"The sign-in was not completed ({said[:200]}).", clear)
    state, _, verifier = request.cookies.get(FLOW_COOKIE, "").partition(".")
    code = request.query.get("code", "")
    if not (state and verifier and code) or not hmac.compare_digest(state, request.query.get("state", "")):
        raise _again(console, request, "This sign-in has expired or was started elsewhere.", clear)
    try:
        result = console.parts.hosted().exchange(code[:2000], callback_url(request), verifier)
        console.parts.verify(str(result.id_token))
    except SignInCodeRefused as error:
        log.info("console sign-in code refused: %s", error)
        raise _again(console, request, "The sign-in code was refused (used already, or too old).", clear) from None
    except Exception as error:  # noqa: BLE001 - a token that does not verify: sign in again
        log.info("console sign-in token refused: %s", type(error).__name__)
        raise _again(console, request, "The sign-in did not give a valid token.", clear) from None
    session = console.session_cookie(str(result.id_token), result.expires_in)
    raise Page(200, console.render("signed_in.html.j2", request), cookie=[session, clear])


def _again(console: Console, request: Request, error: str, clear: str) -> Exception:
    from leadflow.transport.console import Page

    return Page(400, console.render("sign_in.html.j2", request, error=error, expired=False), cookie=clear)


def sign_out(console: Console, request: Request) -> str:
    """Drop the session cookie and end the hosted UI's session (it comes back to ``/console/signed-out``)."""
    from leadflow.transport.console import Page

    logout = console.parts.hosted().ui().logout_url(f"{request.origin}/console/signed-out")
    raise Page(303, location=logout, cookie=console.session_cookie("", 0))


def signed_out(console: Console, request: Request) -> str:
    return console.render("sign_in.html.j2", request, error=None, expired=False, signed_out=True)
