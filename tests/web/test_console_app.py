"""The DPO console in process: who may use it, CSRF on every POST, the form's errors, scope.

A real identity server issues the DPOs' tokens (the authorization code flow with PKCE);
each node's settings file trusts it, as ``datatrust up`` writes them, and the console
checks every token the way a node does. The policy store is a real one in a temporary
data directory with version 1 (the shipped documents) published.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet
from starlette.routing import Mount, Route

from datatrust._demo_trust import DEMO_NODES
from datatrust.policies.lifecycle import (
    draft_ids,
    ensure_initial_version,
    read_draft,
    read_published,
)
from datatrust.settings import PortalSettings, load_settings
from datatrust.web import create_portal_app
from datatrust.web.console import CONSOLE_COOKIE
from datatrust.web.console._agreement_form import agreement_form
from tests.asgi_client import app_client
from tests.trust_identity import trust_identity

PLANNING = "dsa-planning-area-statistics"
SAFEGUARDING = "dsa-safeguarding-referrals"  # council and social care: not health's
PUBLIC_URL = "http://127.0.0.1:9"
CALLBACK = f"{PUBLIC_URL}/console/callback"


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    with trust_identity(tmp_path_factory.mktemp("identity")) as running:
        store = running.live.service.store
        row = store.client("portal")
        store.add_client(**{**row, "redirect_uris": [*row["redirect_uris"], CALLBACK]})
        yield running


@pytest.fixture
def data_dir(tmp_path: Path, identity) -> Path:
    """A trust's data directory: v1 published, each node's settings trusting the issuer."""
    ensure_initial_version(tmp_path, "datatrust init")
    (issuer,) = identity.issuers
    (tmp_path / "config").mkdir()
    for node in DEMO_NODES:
        (tmp_path / "config" / f"{node.node_id}.toml").write_text(
            f'node_id = "{node.node_id}"\nagency = "{node.node_id}"\n'
            f"data_dir = {json.dumps(tmp_path.as_posix())}\n\n"
            f"[[issuers]]\nissuer = {json.dumps(issuer.issuer)}\n"
            f"jwks_url = {json.dumps(issuer.jwks_url)}\nagencies = {json.dumps(issuer.agencies)}\n",
            encoding="utf-8",
        )
    return tmp_path


@pytest.fixture
def settings(data_dir: Path, identity) -> PortalSettings:
    return load_settings(
        PortalSettings,
        environ={},
        data_dir=data_dir,
        issuer=identity.live.url,
        public_url=PUBLIC_URL,
    )


class Browser:
    """One person's in-process browser on the portal (its cookie jar is theirs)."""

    def __init__(self, inner, settings: PortalSettings, identity) -> None:
        self.inner = inner
        self.settings = settings
        self.identity = identity
        self.get = inner.get
        self.post = inner.post

    def sign_in_as(self, username: str, scope: str = "openid") -> str:
        """A real sign-in: the token in the session is the identity server's for username."""
        token = self.identity.person_token(username, scope=scope)
        key = self.settings.effective_session_key_file.read_bytes().strip()
        csrf = secrets.token_urlsafe(16)
        session = {
            "csrf": csrf,
            "tokens": {
                "access_token": token,
                "refresh_token": None,
                "expires_at": int(time.time()) + 300,
                "name": username,
            },
            "signed_in_at": int(time.time()),
        }
        cookie = Fernet(key).encrypt(json.dumps(session).encode()).decode()
        self.inner._client.cookies.set(CONSOLE_COOKIE, cookie, path="/console")
        return csrf


@pytest.fixture
def app(settings):
    return create_portal_app(settings)


@pytest.fixture
def browser(app, settings, identity):
    with app_client(app) as inner:
        yield Browser(inner, settings, identity)


@pytest.fixture
def second_browser(app, settings, identity):
    with app_client(app) as inner:
        yield Browser(inner, settings, identity)


def console_routes(app) -> list[Route]:
    (mount,) = [r for r in app.routes if isinstance(r, Mount) and r.path == "/console"]
    return [r for r in mount.routes if isinstance(r, Route)]


def new_draft(browser, csrf: str) -> str:
    response = browser.post("/console/drafts", data={"csrf_token": csrf})
    assert response.status_code == 303, response.text
    return response.headers["location"].rsplit("/", 1)[1]


def edit_form(data_dir: Path, **changes: str | None) -> dict[str, str]:
    """The planning agreement's form as the page fills it in from the version in force,
    with ``changes`` (None leaves a field out, as an unticked box is left out)."""
    published = read_published(data_dir)
    planning = next(a for a in published.agreements["agreements"] if a["id"] == PLANNING)
    shown = agreement_form(planning)
    form = {
        "title": shown.title,
        "status": shown.status,
        "start": shown.start,
        "end": shown.end,
        "min_cell_size": shown.min_cell_size,
        **{f"purpose-{p}": "on" for p in shown.purposes},
        **{choice.name: choice.output for choice in shown.fields},
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def field_name(data_dir: Path, node: str, field: str) -> str:
    """The form input of ``field`` at ``node`` in the planning agreement."""
    published = read_published(data_dir)
    planning = next(a for a in published.agreements["agreements"] if a["id"] == PLANNING)
    return next(
        c.name for c in agreement_form(planning).fields if (c.node, c.field) == (node, field)
    )


# -- who may use it -----------------------------------------------------------------------


def test_the_console_asks_a_signed_out_visitor_to_sign_in(browser):
    response = browser.get("/console/")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?next=/console/"
    response = browser.get("/console/sign-in?next=https://evil.example/")
    location = urlsplit(response.headers["location"])
    assert location.path == "/authorize"
    assert parse_qs(location.query)["redirect_uri"] == [CALLBACK]


@pytest.mark.parametrize("username", ["citizen", "analyst"])
def test_a_signed_in_account_that_is_not_a_dpos_is_refused(browser, username):
    """Through the real sign-in: the callback refuses the account with a 403 page."""
    start = browser.get("/console/sign-in")
    authorize = start.headers["location"]
    with httpx.Client() as idp:
        page = idp.get(authorize)
        fields = dict(re.findall(r'name="(csrf_token|oauth)" value="([^"]*)"', page.text))
        answer = idp.post(
            authorize.split("?")[0],
            data={
                "csrf_token": fields["csrf_token"],
                "oauth": fields["oauth"].replace("&amp;", "&"),
                "username": username,
                "password": browser.identity.live.accounts.passwords[username],
            },
        )
    back = answer.headers["location"]
    assert back.startswith(CALLBACK + "?")
    response = browser.get(back.removeprefix(PUBLIC_URL))
    assert response.status_code == 403
    assert "This service is for data protection officers" in response.text
    assert "not a data protection officer" in response.text
    # And a session holding such a token is no sign-in either.
    browser.sign_in_as(username)
    assert browser.get("/console/").status_code == 303


def test_a_dpo_signs_in_through_the_identity_server_and_sees_their_agency(browser):
    start = browser.get("/console/sign-in?next=/console/history")
    authorize = start.headers["location"]
    with httpx.Client() as idp:
        page = idp.get(authorize)
        fields = dict(re.findall(r'name="(csrf_token|oauth)" value="([^"]*)"', page.text))
        answer = idp.post(
            authorize.split("?")[0],
            data={
                "csrf_token": fields["csrf_token"],
                "oauth": fields["oauth"].replace("&amp;", "&"),
                "username": "health-dpo",
                "password": browser.identity.live.accounts.passwords["health-dpo"],
            },
        )
    response = browser.get(answer.headers["location"].removeprefix(PUBLIC_URL))
    assert (response.status_code, response.headers["location"]) == (303, "/console/history")
    page = browser.get("/console/")
    assert page.status_code == 200
    assert "data protection officer for health" in page.text
    assert PLANNING in page.text
    assert SAFEGUARDING not in page.text  # council and social care's, not health's


# -- CSRF ---------------------------------------------------------------------------------


def test_every_console_post_refuses_a_form_without_the_sessions_csrf_token(app, browser, data_dir):
    csrf = browser.sign_in_as("health-dpo")
    draft = new_draft(browser, csrf)
    before = read_draft(data_dir, draft)
    posts = sorted(r.path for r in console_routes(app) if "POST" in (r.methods or ()))
    assert posts == [
        "/drafts",
        "/drafts/{ident}/agreements/{agreement}",
        "/drafts/{ident}/new-purpose",
        "/drafts/{ident}/publish",
        "/drafts/{ident}/purposes/{purpose}",
        "/drafts/{ident}/purposes/{purpose}/remove",
        "/drafts/{ident}/review",
        "/drafts/{ident}/submit",
        "/history/rollback",
        "/sign-out",
    ]
    paths = {
        p: "/console"
        + p.replace("{ident}", draft)
        .replace("{agreement}", PLANNING)
        .replace("{purpose}", "research")
        for p in posts
    }
    for path in paths.values():
        for token in ({}, {"csrf_token": ""}, {"csrf_token": csrf + "x"}):
            form = {"comment": "ok", "decision": "approve", "version": "1", "reason": "r"}
            response = browser.post(path, data={**form, **edit_form(data_dir, title="X"), **token})
            assert response.status_code == 403, (path, token)
            assert "You cannot do that" in response.text
    assert draft_ids(data_dir) == [draft]
    assert read_draft(data_dir, draft) == before
    assert read_draft(data_dir, draft).agreements == before.agreements
    assert read_published(data_dir).number == 1


# -- the edit form ------------------------------------------------------------------------


def test_the_edit_form_shows_an_error_summary_and_inline_errors_and_keeps_what_was_typed(
    browser, data_dir
):
    csrf = browser.sign_in_as("health-dpo")
    draft = new_draft(browser, csrf)
    before = read_draft(data_dir, draft).agreements
    form = edit_form(
        data_dir,
        title="",
        end="2025-12-31",
        start="2026-01-01",
        min_cell_size="ten",
        **{"purpose-service-planning": None, "purpose-commissioning": None},
    )
    response = browser.post(
        f"/console/drafts/{draft}/agreements/{PLANNING}", data={**form, "csrf_token": csrf}
    )
    assert response.status_code == 400
    html = response.text
    assert "<title>Error: " in html, re.findall(r"<p class=\"govuk-body\">([^<]*)", html)
    summary = re.search(r'govuk-error-summary__list">(.*?)</ul>', html, re.S).group(1)
    assert re.findall(r'<a href="#([^"]+)">([^<]+)</a>', summary) == [
        ("title", "Enter a title for the agreement"),
        ("end", "The end date must be the same as or after the start date"),
        ("purposes", "Select at least one purpose"),
        ("min_cell_size", "The minimum cell size must be a whole number, like 10"),
    ]
    for target in ("title", "end", "purposes", "min_cell_size"):
        assert f'id="{target}-error" class="govuk-error-message"' in html
        assert re.search(rf'id="{target}"[^>]*', html), target
    assert 'value="2025-12-31"' in html  # what was typed stays
    assert 'value="ten"' in html
    assert read_draft(data_dir, draft).agreements == before  # nothing written


def test_sharing_no_field_of_a_dataset_is_refused_inline_and_not_written(browser, data_dir):
    """Every field of the health dataset set to "Not shared": the dataset would be empty."""
    csrf = browser.sign_in_as("health-dpo")
    draft = new_draft(browser, csrf)
    before = read_draft(data_dir, draft).agreements
    health = [
        c for c in edit_form(data_dir) if c.startswith("field-1-")
    ]  # the health dataset's fields
    form = edit_form(data_dir, **dict.fromkeys(health, "not-shared"))
    response = browser.post(
        f"/console/drafts/{draft}/agreements/{PLANNING}", data={**form, "csrf_token": csrf}
    )
    assert response.status_code == 400
    assert "Keep at least one field of dataset health-area-statistics shared" in response.text
    assert 'href="#field-1-0"' in response.text
    assert read_draft(data_dir, draft).agreements == before


# -- the whole lifecycle, in process --------------------------------------------------------


def test_a_dpo_narrows_an_agreement_a_second_dpo_approves_and_it_is_published(
    browser, second_browser, data_dir
):
    csrf = browser.sign_in_as("health-dpo")
    draft = new_draft(browser, csrf)
    page = browser.get(f"/console/drafts/{draft}")
    assert "Nothing yet: the draft is the same as the version in force." in page.text
    response = browser.post(
        f"/console/drafts/{draft}/agreements/{PLANNING}",
        data={
            **edit_form(
                data_dir,
                **{field_name(data_dir, "health", "Area.encounterCount"): "not-shared"},
                end="2027-12-31",
            ),
            "csrf_token": csrf,
        },
    )
    assert (response.status_code, response.headers["location"]) == (
        303,
        f"/console/drafts/{draft}",
    )
    page = browser.get(f"/console/drafts/{draft}").text
    changes = re.findall(r"<li>(agreement [^<]+)</li>", page)
    assert changes == [
        f"agreement {PLANNING}: end date 2028-12-31 -&gt; 2027-12-31",
        f"agreement {PLANNING}: Area.encounterCount at health: aggregate-only -&gt; removed",
    ]
    dry = browser.get(f"/console/drafts/{draft}/dry-run?days=7")
    assert dry.status_code == 200
    assert "0 queries of the last 7 days replayed against v1: 0 would be decided" in dry.text
    assert browser.get(f"/console/drafts/{draft}/dry-run?days=0").status_code == 400

    assert (
        browser.post(
            f"/console/drafts/{draft}/submit", data={"csrf_token": csrf, "comment": "narrow"}
        ).headers["location"]
        == f"/console/drafts/{draft}"
    )
    assert read_draft(data_dir, draft).status == "submitted"
    # Its author cannot approve it: no review form, and a crafted one is refused.
    assert (
        'action="/console/drafts/' + draft + '/review"'
        not in browser.get(f"/console/drafts/{draft}").text
    )
    refused = browser.post(
        f"/console/drafts/{draft}/review",
        data={"csrf_token": csrf, "decision": "approve", "comment": "mine"},
    )
    assert refused.status_code == 409
    assert "a draft needs approval by a second DPO of the same agency, not its author" in (
        refused.text
    )
    assert read_draft(data_dir, draft).status == "submitted"

    second = second_browser.sign_in_as("health-dpo2")
    empty = second_browser.post(
        f"/console/drafts/{draft}/review",
        data={"csrf_token": second, "decision": "approve", "comment": " "},
    )
    assert empty.status_code == 400
    assert "Enter a comment saying why you approve the draft" in empty.text
    approved = second_browser.post(
        f"/console/drafts/{draft}/review",
        data={"csrf_token": second, "decision": "approve", "comment": "counts move to the SDE"},
    )
    assert approved.status_code == 303
    assert read_draft(data_dir, draft).status == "approved"
    published = second_browser.post(
        f"/console/drafts/{draft}/publish", data={"csrf_token": second, "reason": "SDE"}
    )
    assert published.status_code == 303
    assert read_published(data_dir).number == 2
    history = browser.get("/console/history").text
    assert '<td class="govuk-table__cell">SDE</td>' in history

    rolled = browser.post(
        "/console/history/rollback", data={"csrf_token": csrf, "version": "1", "reason": ""}
    )
    assert rolled.status_code == 400
    assert "Enter the reason for going back to that version" in rolled.text
    rolled = browser.post(
        "/console/history/rollback",
        data={"csrf_token": csrf, "version": "1", "reason": "until March"},
    )
    assert rolled.status_code == 303
    current = read_published(data_dir)
    assert current.number == 3
    assert browser.get("/console/history").text.count("rollback of v1") == 1


# -- another agency's documents -----------------------------------------------------------


def test_a_dpo_cannot_see_or_touch_another_agencys_documents(browser, second_browser, data_dir):
    council = second_browser.sign_in_as("dpo")
    council_draft = new_draft(second_browser, council)
    before = read_draft(data_dir, council_draft)
    csrf = browser.sign_in_as("health-dpo")
    own_draft = new_draft(browser, csrf)

    assert browser.get(f"/console/agreements/{SAFEGUARDING}").status_code == 404
    assert browser.get(f"/console/agreements/{PLANNING}").status_code == 200
    for path in (
        f"/console/drafts/{council_draft}",
        f"/console/drafts/{council_draft}/dry-run",
        f"/console/drafts/{council_draft}/agreements/{PLANNING}",
        f"/console/drafts/{own_draft}/agreements/{SAFEGUARDING}",
        "/console/drafts/..%2F..%2Fversions%2F1",
    ):
        response = browser.get(path)
        assert response.status_code == 404, path
        assert "Page not found" in response.text
    posts = {
        f"/console/drafts/{council_draft}/agreements/{PLANNING}": edit_form(
            data_dir, title="Mine now"
        ),
        f"/console/drafts/{own_draft}/agreements/{SAFEGUARDING}": edit_form(
            data_dir, title="Mine now"
        ),
        f"/console/drafts/{council_draft}/submit": {},
        f"/console/drafts/{council_draft}/review": {"decision": "reject", "comment": "no"},
        f"/console/drafts/{council_draft}/publish": {},
    }
    for path, form in posts.items():
        response = browser.post(path, data={**form, "csrf_token": csrf})
        assert response.status_code == 404, path
    assert read_draft(data_dir, council_draft) == before
    assert read_draft(data_dir, council_draft).agreements == before.agreements
    # The council's draft is not listed on health's overview.
    assert council_draft not in browser.get("/console/").text


def test_the_audit_page_validates_its_filters_and_exports_csv(browser, data_dir):
    browser.sign_in_as("health-dpo")
    page = browser.get("/console/audit?from=2026-13-01&outcome=maybe")
    assert page.status_code == 400
    assert 'href="#from">The from date must be a real date, like 2026-11-01' in page.text
    assert 'href="#outcome">Select allowed, refused or any outcome' in page.text
    page = browser.get("/console/audit?purpose=research&outcome=deny")
    assert page.status_code == 200
    assert "0 decisions" in page.text
    export = browser.get("/console/audit.csv?purpose=research")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert export.text.splitlines()[0].startswith("recorded_at,node,requester,agency")
