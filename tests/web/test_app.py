"""The portal's guards, in process: CSRF on every POST, security headers, sessions.

These need no identity server or node: each refusal happens before either is asked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from starlette.routing import Route

from datatrust.settings import PortalSettings, load_settings
from datatrust.web import create_portal_app
from datatrust.web._security import CONTENT_SECURITY_POLICY
from datatrust.web._session import SESSION_COOKIE
from tests.asgi_client import app_client

ISSUER = "http://127.0.0.1:9"  # nothing listens: a test that reached it would fail


@pytest.fixture
def settings(tmp_path: Path) -> PortalSettings:
    return load_settings(
        PortalSettings,
        environ={},
        data_dir=tmp_path,
        issuer=ISSUER,
        consent_nodes=[{"id": "health", "name": "Hospital", "url": "https://127.0.0.1:9/consent"}],
    )


class Client:
    """The in-process client, with its cookie jar and the app it talks to."""

    def __init__(self, app, inner) -> None:
        self.app = app
        self.inner = inner
        self.cookies = inner._client.cookies
        self.get = inner.get
        self.post = inner.post


@pytest.fixture
def client(settings):
    app = create_portal_app(settings)
    with app_client(app) as inner:
        yield Client(app, inner)


def session_of(client, settings) -> dict:
    key = settings.effective_session_key_file.read_bytes().strip()
    return json.loads(Fernet(key).decrypt(client.cookies[SESSION_COOKIE].encode()))


def test_every_post_route_refuses_a_form_without_the_sessions_csrf_token(client, settings):
    client.get("/")  # a session with a CSRF token
    token = session_of(client, settings)["csrf"]
    routes = [r for r in client.app.routes if isinstance(r, Route)]
    posts = [r.path for r in routes if "POST" in (r.methods or ())]
    assert sorted(posts) == ["/choices", "/choices/opt-out", "/sign-out"]
    for path in posts:
        for form in ({}, {"csrf_token": ""}, {"csrf_token": token + "x"}):
            response = client.post(path, data={"action": "withdraw", **form})
            assert response.status_code == 403, (path, form)
            assert "You cannot do that" in response.text
    # The right token gets past the check (then sign-out works, choices asks to sign in).
    assert client.post("/sign-out", data={"csrf_token": token}).status_code == 303


def test_a_form_sent_as_json_or_with_a_field_twice_is_refused(client, settings):
    client.get("/")
    token = session_of(client, settings)["csrf"]
    response = client.post("/sign-out", json={"csrf_token": token})
    assert response.status_code == 400
    assert "application/x-www-form-urlencoded" in response.text
    response = client.post(
        "/sign-out",
        content=f"csrf_token={token}&csrf_token={token}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert "more than once" in response.text


@pytest.mark.parametrize("path", ["/", "/no-such-page", "/static/portal.css"])
def test_every_response_carries_the_content_security_policy(client, path):
    response = client.get(path)
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY


def test_pages_have_no_inline_script_or_style(client):
    for path in ("/", "/no-such-page"):
        html = client.get(path).text
        assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", html) == []
        assert "<style" not in html
        assert " style=" not in html


def test_the_session_cookie_is_httponly_samesite_lax_and_encrypted(client, settings):
    response = client.get("/")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # http on loopback; https makes it Secure (next test)
    assert session_of(client, settings)["csrf"] not in cookie  # encrypted, not just signed


def test_an_https_portal_sets_secure_cookies(settings):
    app = create_portal_app(settings.model_copy(update={"public_url": "https://portal.example"}))
    with app_client(app, base_url="https://portal.example") as client:
        assert "Secure" in client.get("/").headers["set-cookie"]


def test_a_tampered_session_cookie_is_no_session(client, settings):
    client.get("/")
    client.cookies.set(SESSION_COOKIE, client.cookies[SESSION_COOKIE][:-4] + "AAAA")
    response = client.get("/choices")
    assert (response.status_code, response.headers["location"]) == (
        303,
        "/sign-in?next=/choices",
    )


def test_sign_in_keeps_a_next_on_this_site_and_drops_one_to_another_host(client, settings):
    response = client.get("/sign-in", params={"next": "/choices"})
    assert response.headers["location"].startswith(f"{ISSUER}/authorize?")
    assert "code_challenge_method=S256" in response.headers["location"]
    assert session_of(client, settings)["pending"]["next"] == "/choices"
    client.get("/sign-in", params={"next": "https://evil.example/choices"})
    assert session_of(client, settings)["pending"]["next"] == "/"


def test_a_callback_whose_state_this_browser_did_not_start_is_refused(client):
    client.get("/sign-in")
    response = client.get("/callback", params={"code": "x", "state": "not-ours"})
    assert response.status_code == 400
    assert "Sign in again" in response.text


def test_unknown_consent_purposes_in_settings_are_refused_by_name(settings):
    from datatrust.errors import DatatrustError

    with pytest.raises(DatatrustError, match=r"consent_purposes names dancing"):
        create_portal_app(settings.model_copy(update={"consent_purposes": ["dancing"]}))
