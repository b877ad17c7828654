"""The console's hosted sign-in: PKCE as RFC 7636 defines it, and the hosted UI's URLs as Cognito's
endpoints take them."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from leadflow.adapters.cognito import HostedUi
from leadflow.transport.console_sign_in import challenge_of, pkce_pair

pytestmark = pytest.mark.unit


def test_the_challenge_is_rfc_7636s_s256():
    # RFC 7636, appendix B: the example verifier and its S256 challenge
    assert challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_each_sign_in_has_its_own_verifier_of_the_allowed_length_and_characters():
    pairs = [pkce_pair() for _ in range(20)]
    assert len({verifier for verifier, _ in pairs}) == 20
    for verifier, challenge in pairs:
        assert 43 <= len(verifier) <= 128 and set(verifier) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
        )
        assert challenge == challenge_of(verifier)


def test_the_authorize_and_logout_urls_carry_cognitos_parameters():
    ui = HostedUi("client123", "https://leadflow-abc.auth.eu-west-1.amazoncognito.com")
    url = urlsplit(ui.authorize_url("https://api.example.com/console/oauth2/callback", "st4te", "ch4llenge"))
    assert (url.netloc, url.path) == ("leadflow-abc.auth.eu-west-1.amazoncognito.com", "/oauth2/authorize")
    assert {k: v[0] for k, v in parse_qs(url.query).items()} == {
        "response_type": "code",
        "client_id": "client123",
        "redirect_uri": "https://api.example.com/console/oauth2/callback",
        "scope": "openid email profile",
        "state": "st4te",
        "code_challenge": "ch4llenge",
        "code_challenge_method": "S256",
    }
    logout = urlsplit(ui.logout_url("https://api.example.com/console/signed-out"))
    assert logout.path == "/logout"
    assert parse_qs(logout.query) == {
        "client_id": ["client123"],
        "logout_uri": ["https://api.example.com/console/signed-out"],
    }


# ---------------------------------------------------------------------------- ID tokens


ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example"


def signed(key, **claims) -> str:
    from joserfc import jwt

    now = int(time.time())
    body = {"iss": ISSUER, "aud": "web-client", "token_use": "id", "exp": now + 3600, "iat": now, **claims}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, body, key)


@pytest.fixture
def pool_key(tmp_path):
    """A user pool's signing key, and its JWKS where the verifier fetches it (a file URL)."""
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "pool-key-1"}, private=True)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    return key, jwks.as_uri()


def test_a_token_counts_for_any_app_client_the_authorizer_lists(pool_key):
    from leadflow.adapters.cognito import InvalidToken, JwksTokenVerifier

    key, jwks = pool_key
    # GIVEN a verifier listing both of the console's app clients, as ConsoleJwtAuthorizer does
    both = JwksTokenVerifier(ISSUER, ["scripts-client", "web-client"], jwks)
    # THEN an ID token of either counts
    assert both.claims(signed(key, aud="web-client"))["aud"] == "web-client"
    assert both.claims(signed(key, aud="scripts-client"))["aud"] == "scripts-client"
    # AND another client's, an access token, another pool's or an expired one do not
    for bad in (
        signed(key, aud="someone-elses-client"),
        signed(key, token_use="access"),
        signed(key, iss=ISSUER + "x"),
        signed(key, exp=int(time.time()) - 10),
    ):
        with pytest.raises(InvalidToken):
            both.claims(bad)
    # AND a verifier of one client (the console's own check of its cookie) takes only that one
    one = JwksTokenVerifier(ISSUER, "web-client", jwks)
    assert one.claims(signed(key))["aud"] == "web-client"
    with pytest.raises(InvalidToken):
        one.claims(signed(key, aud="scripts-client"))
    # AND a verifier without a client is refused at once
    with pytest.raises(ValueError, match="app client"):
        JwksTokenVerifier(ISSUER, [], jwks)
