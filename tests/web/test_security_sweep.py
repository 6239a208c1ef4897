"""Security properties of every route of the portal, console and explorer, against a real trust.

Routes are read from the Starlette routers (mounted sub-apps included), so a route added
later is covered without touching this file. Every POST route refuses a request without
the session's CSRF token or with a forged one, signed out and signed in as the app's demo
user (so the token, not a missing sign-in, is what stops it); every sign-in route keeps a
``next`` (or any other redirect-like parameter) naming another host from sending anyone
there, signed in (the redirect's Location) and signed out (where a completed sign-in
lands); every HTML answer of every GET route carries the Content-Security-Policy, without
'unsafe-inline'.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.web.conftest import DESKTOP

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def running(shared_running):
    """The web tests' shared trust (tests/web/conftest.py): this module changes no
    consent, opt-out or policy."""
    return shared_running


USERS = {"portal": "citizen", "console": "dpo", "explorer": "analyst"}
PREFIXES = {"portal": "", "console": "/console", "explorer": "/explorer"}
EVIL = ["//evil.example/x", "https://evil.example/x", "/\\evil.example", "javascript:alert(1)"]
REDIRECT_PARAMS = ["next", "redirect", "redirect_uri", "return_to", "returnTo", "url", "continue"]


def routes() -> list[tuple[str, str, set[str]]]:
    """(app, path, methods) of every route, mounted sub-apps included."""
    import tempfile

    from starlette.routing import Mount, Route

    from datatrust.settings import PortalSettings, load_settings
    from datatrust.web import create_portal_app

    with tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings(
            PortalSettings, environ={}, data_dir=data_dir, issuer="http://127.0.0.1:9"
        )
        app = create_portal_app(settings)
    found = []

    def walk(items, prefix: str) -> None:
        for route in items:
            if isinstance(route, Mount) and route.routes:
                walk(route.routes, prefix + route.path)
            elif isinstance(route, Route):
                path = prefix + route.path
                name = next((a for a, p in PREFIXES.items() if p and path.startswith(p)), "portal")
                found.append((name, path, set(route.methods or ())))

    walk(app.routes, "")
    return found


ROUTES = routes()
POSTS = [(a, p) for a, p, m in ROUTES if "POST" in m]
GETS = [(a, p) for a, p, m in ROUTES if "GET" in m]
SIGN_INS = [(a, p) for a, p in GETS if p.endswith("/sign-in")]


def concrete(path: str) -> str:
    """A path parameter filled in (the CSRF check and the 404 page come before any lookup)."""
    import re

    return re.sub(r"\{[^}]+\}", "sweep-1", path)


@pytest.fixture(scope="module")
def contexts(browser, running):
    """A signed-out browser and one signed in per app, as its demo user."""
    made = {}
    try:
        made["signed-out"] = browser.new_context(viewport=DESKTOP)
        for app_name, user in USERS.items():
            context = browser.new_context(viewport=DESKTOP)
            context.set_default_timeout(20_000)
            made[app_name] = context
            landed = sign_in(context, running, PREFIXES[app_name] + "/sign-in", user)
            assert landed.startswith(running.portal + PREFIXES[app_name] + "/"), landed
        yield made
    finally:
        for context in made.values():
            context.close()


def sign_in(context, running, path: str, user: str) -> str:
    """Open ``path``, sign in on the identity server's page; where the browser lands."""
    page = context.new_page()
    try:
        page.goto(running.portal + path)
        page.wait_for_url(f"{running.identity}/authorize*")
        page.get_by_label("Username").fill(user)
        page.get_by_label("Password").fill(running.passwords[user])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: not url.startswith(running.identity))
        page.wait_for_load_state()
        return page.url
    finally:
        page.close()


def test_the_routers_list_the_routes_this_sweep_must_cover():
    paths = {p for _, p in POSTS}
    assert {"/sign-out", "/choices", "/console/sign-out", "/explorer/sign-out"} <= paths
    assert {"/console/drafts/{ident}/publish", "/explorer/", "/explorer/graphql"} <= paths
    assert {p for _, p in SIGN_INS} == {"/sign-in", "/console/sign-in", "/explorer/sign-in"}


@pytest.mark.parametrize(("app_name", "path"), POSTS, ids=[p for _, p in POSTS])
def test_every_post_route_refuses_a_request_without_a_valid_csrf_token(
    running, contexts, app_name, path
):
    url = running.portal + concrete(path)
    for who in ("signed-out", app_name):
        request = contexts[who].request
        for form in ({}, {"csrf_token": "forged"}):
            answer = request.post(
                url,
                form={**form, "action": "withdraw"},
                headers={"X-CSRF-Token": form.get("csrf_token", "")} if form else {},
                max_redirects=0,
            )
            assert answer.status == 403, (who, form, answer.status, answer.text()[:300])


@pytest.mark.parametrize(("app_name", "path"), SIGN_INS, ids=[p for _, p in SIGN_INS])
def test_no_redirect_parameter_of_a_sign_in_route_leads_to_another_host(
    running, contexts, app_name, path
):
    portal = urlsplit(running.portal)
    # Signed in: the route redirects straight away; the Location must be this site.
    request = contexts[app_name].request
    for param in REDIRECT_PARAMS:
        for target in EVIL:
            answer = request.get(running.portal + path, params={param: target}, max_redirects=0)
            assert answer.status in (302, 303, 307), (param, target, answer.status)
            location = answer.headers["location"]
            parts = urlsplit(location)
            assert (location.startswith("/") and not location.startswith(("//", "/\\"))) or (
                parts.scheme == portal.scheme and parts.netloc == portal.netloc
            ), (param, target, location)
            assert "evil.example" not in location, location
            assert "javascript" not in location, location
    # Signed out: a whole sign-in ends on this site, never on the other host.
    for target in EVIL:
        context = contexts["signed-out"].browser.new_context(viewport=DESKTOP)
        try:
            context.set_default_timeout(20_000)
            landed = sign_in(context, running, f"{path}?next={target}", USERS[app_name])
        finally:
            context.close()
        assert landed.startswith(running.portal + "/"), (target, landed)


def test_every_html_answer_carries_the_strict_content_security_policy(running, contexts):
    checked = 0
    for app_name, path in GETS:
        if path.startswith(("/static", "/assets")) or path.endswith("/callback"):
            continue
        for who in ("signed-out", app_name):
            answer = contexts[who].request.get(running.portal + concrete(path), max_redirects=0)
            if "text/html" not in answer.headers.get("content-type", ""):
                continue
            csp = answer.headers.get("content-security-policy", "")
            assert "script-src 'self'" in csp, (who, path, csp)
            assert "unsafe-inline" not in csp, (who, path, csp)
            assert "default-src 'none'" in csp, (who, path, csp)
            checked += 1
    for prefix in PREFIXES.values():  # error pages too
        answer = contexts["signed-out"].request.get(f"{running.portal}{prefix}/no-such-page")
        assert answer.status == 404
        assert "unsafe-inline" not in answer.headers["content-security-policy"]
        checked += 1
    assert checked >= 10
