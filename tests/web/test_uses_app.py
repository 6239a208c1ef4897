"""The portal's "Who used your data" and "Your data", in process, against real parts.

A real identity server issues the tokens; the hospital's node (its demo store loaded through
ingest) runs in real uvicorn, so the portal reaches it over HTTP as it would in a trust;
the adult social care node is configured where nothing listens, so the pages must name it
as missing. Research and direct-care queries are made at the node with the demo clients'
real tokens before the citizen looks. The citizen's session cookie is written with the
portal's own session key (what a sign-in would leave), holding a real token of theirs.
"""

from __future__ import annotations

import csv
import io
import json
import socket
import sqlite3
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet

from datatrust import _prepare
from datatrust.node import create_node_app
from datatrust.settings import NodeSettings, PortalSettings, load_settings
from datatrust.trust import load_or_create_key, person_pseudonym
from datatrust.trust.identity._accounts import DEMO_CITIZEN_NHS_NUMBER
from datatrust.web import create_portal_app
from datatrust.web._session import SESSION_COOKIE
from datatrust.web._uses import CSV_HEADER, Use, safe_cell, uses_csv
from tests.asgi_client import app_client
from tests.trust_identity import trust_identity

HOSPITAL = "University Hospitals Coventry and Warwickshire NHS Trust"
SOCIAL_CARE = "Coventry City Council, Adult Social Care"
RESEARCH_QUERY = "{ patients(first: 1000) { pseudonym birthYear encounters { start } } }"
CARE_QUERY = "{ patients(first: 1000) { pseudonym gender } }"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("uses-trust")


@pytest.fixture(scope="module")
def identity(tmp_path_factory, data_dir):
    key = data_dir / "keys" / "pseudonym.key"
    with trust_identity(tmp_path_factory.mktemp("identity"), person_key_file=key) as running:
        yield running


@pytest.fixture(scope="module")
def health(data_dir, identity):
    """The hospital's node, prepared from the demo sources and served by uvicorn."""
    settings = load_settings(
        NodeSettings,
        environ={},
        node_id="health",
        agency="health",
        data_dir=data_dir,
        issuers=identity.issuers,
    )
    sources = _prepare.write_demo_files(data_dir)
    _prepare.prepare_demo_node(
        data_dir, "health", settings.effective_database_url, sources["health"]
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_node_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the health node did not start"
        time.sleep(0.02)
    try:
        yield url, settings.effective_database_url.removeprefix("sqlite:///")
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def me(data_dir) -> str:
    return person_pseudonym(
        load_or_create_key(data_dir / "keys" / "pseudonym.key"), DEMO_CITIZEN_NHS_NUMBER
    )


@pytest.fixture(scope="module")
def queried(health, identity, data_dir):
    """One research and one direct-care query that return the citizen's records."""
    url, db = health
    with httpx.Client(base_url=url) as node:
        for client, purpose, query in (
            ("research-cli", "research", RESEARCH_QUERY),
            ("care-cli", "direct-care", CARE_QUERY),
        ):
            answer = node.post(
                "/graphql", json={"query": query}, headers=identity.headers_for(client, purpose)
            )
            assert answer.status_code == 200, answer.text
            people = answer.json()["data"]["patients"]
            assert people, purpose
        # A query that returns one other person only: never a use of the citizen's data.
        with sqlite3.connect(db) as connection:
            first = connection.execute(
                "SELECT pseudonym FROM person WHERE pseudonym != ? ORDER BY pseudonym LIMIT 1",
                (me(data_dir),),
            ).fetchone()[0]
        answer = node.post(
            "/graphql",
            json={
                "query": "query One($p: _Any!) { _entities(representations: [$p]) "
                "{ ... on Person { gender } } }",
                "variables": {"p": {"__typename": "Person", "pseudonym": first}},
            },
            headers=identity.headers_for("care-cli", "direct-care"),
        )
        assert answer.status_code == 200, answer.text
    return first


@pytest.fixture(scope="module")
def portal(data_dir, identity, health, queried, tmp_path_factory):
    settings = load_settings(
        PortalSettings,
        environ={},
        data_dir=tmp_path_factory.mktemp("portal"),
        issuer=identity.live.url,
        consent_nodes=[
            {"id": "health", "name": HOSPITAL, "url": f"{health[0]}/consent"},
            {"id": "social-care", "name": SOCIAL_CARE, "url": "http://127.0.0.1:9/consent"},
        ],
    )
    token = identity.person_token("citizen")
    with app_client(create_portal_app(settings)) as client:
        key = settings.effective_session_key_file.read_bytes().strip()
        session = {
            "csrf": "x" * 43,
            "tokens": {
                "access_token": token,
                "refresh_token": None,
                "expires_at": int(time.time()) + 3600,
                "name": "Demo Citizen",
            },
            "signed_in_at": int(time.time()),
        }
        cookie = Fernet(key).encrypt(json.dumps(session).encode()).decode()
        client._client.cookies.set(SESSION_COOKIE, cookie)
        yield client


def cards(html: str) -> int:
    return html.count('class="govuk-summary-card datatrust-use"')


# -- the page ------------------------------------------------------------------------------


def test_the_page_lists_each_use_with_organisation_purpose_data_and_lawful_basis(portal):
    response = portal.get("/uses")
    assert response.status_code == 200, response.text
    html = response.text
    assert cards(html) == 2
    assert "2 uses of your data" in html
    assert "University" in html
    assert HOSPITAL in html
    assert "Scientific research" in html
    assert "Direct care of an individual" in html
    assert "your year of birth" in html
    assert "your hospital visits" in html
    assert "Article 6(1)(e): a task in the public interest; Article 9(2)(j)" in html
    assert "Article 9(2)(h): health or social care" in html
    # Newest first: the direct-care query was made after the research one.
    assert html.index("Direct care of an individual</dd>") < html.index("Scientific research</dd>")
    # The node that did not answer is named; the other's uses are still shown.
    assert f"could not get the records of {SOCIAL_CARE}" in html
    assert 'aria-current="page"' in html
    assert 'href="/uses"' in html
    assert 'href="/data"' in html


def test_filters_by_purpose_and_organisation_work_as_a_get_form(portal):
    html = portal.get("/uses", params={"purpose": "research"}).text
    assert cards(html) == 1
    assert "1 of 2 uses match your filters" in html
    assert "Direct care of an individual</dd>" not in html
    assert '<option value="research" selected>' in html
    html = portal.get("/uses", params={"organisation": "health"}).text
    assert cards(html) == 1
    assert "Direct care of an individual</dd>" in html
    html = portal.get("/uses", params={"organisation": "health", "purpose": "research"}).text
    assert cards(html) == 0
    assert "No uses match these filters." in html
    assert 'href="/uses.csv?organisation=health&amp;purpose=research"' in html


def test_a_filter_value_not_offered_is_an_error_summary_and_inline_error(portal):
    response = portal.get("/uses", params={"organisation": "<script>x</script>"})
    assert response.status_code == 400
    html = response.text
    assert "<title>Error: Who used your data" in html
    assert '<a href="#organisation">Select an organisation from the list</a>' in html
    assert 'id="organisation-error"' in html
    assert "<script>x" not in html


def test_the_csv_has_the_header_the_same_rows_and_the_same_filters(portal):
    response = portal.get("/uses.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["x-datatrust-missing"] == "social-care"
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == CSV_HEADER
    assert [row[2] for row in rows[1:]] == ["Direct care of an individual", "Scientific research"]
    assert rows[2][1] == "University"
    assert rows[1][1] == HOSPITAL
    assert "9(2)(j)" in rows[2][4]
    filtered = list(csv.reader(io.StringIO(portal.get("/uses.csv?purpose=research").text)))
    assert len(filtered) == 2
    assert filtered[1][2] == "Scientific research"


def test_csv_cells_that_start_like_a_formula_are_made_text():
    assert [safe_cell(v) for v in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "ok")] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "'\tx",
        "ok",
    ]
    row = Use(
        at=datetime(2026, 11, 26, 13, 5, tzinfo=UTC),
        agency="x",
        organisation='=HYPERLINK("http://evil.example","x")',
        purpose="p",
        purpose_title="+cmd",
        kinds=("-2", 'b, "quoted"'),
        lawful_basis="@x",
        agreement="Plain",
        recorded_by="Node",
        seq=1,
    )
    cells = list(csv.reader(io.StringIO(uses_csv([row]))))[1]
    assert cells == [
        "2026-11-26T13:05:00+00:00",
        '\'=HYPERLINK("http://evil.example","x")',
        "'+cmd",
        '\'-2; b, "quoted"',
        "'@x",
        "Plain",
        "Node",
    ]


# -- nobody else's uses ----------------------------------------------------------------------


def test_no_identifier_in_the_url_shows_another_persons_uses(portal, queried, data_dir):
    other = queried
    baseline = portal.get("/uses").text
    assert other not in baseline
    assert me(data_dir) not in baseline
    for params in ({"pseudonym": other}, {"person": other}, {"subject": other}, {"as": other}):
        page = portal.get("/uses", params=params)
        assert page.status_code == 200
        assert cards(page.text) == 2
        assert other not in page.text
        download = portal.get("/uses.csv", params=params).text
        assert len(download.strip().splitlines()) == 3
        assert other not in download
    # The form's fields: two filters only; nothing names a person.
    assert sorted(set(_names(baseline))) == ["organisation", "purpose"]


def _names(html: str) -> list[str]:
    import re

    form = html[html.index('<form method="get" action="/uses"') :]
    form = form[: form.index("</form>")]
    return re.findall(r'name="([^"]+)"', form)


def test_signed_out_visitors_are_sent_to_sign_in(data_dir, identity, tmp_path):
    settings = load_settings(
        PortalSettings, environ={}, data_dir=tmp_path, issuer=identity.live.url
    )
    with app_client(create_portal_app(settings)) as client:
        for path in ("/uses", "/uses.csv", "/data"):
            response = client.get(path)
            assert response.status_code == 303
            assert response.headers["location"] == f"/sign-in?next={path.removesuffix('.csv')}"


def test_reading_ones_uses_is_audited_as_an_access_and_not_listed_as_a_use(portal, health):
    before = cards(portal.get("/uses").text)
    with sqlite3.connect(health[1]) as db:
        entry = db.execute(
            "SELECT requester, outcome, subjects, fields FROM audit_event "
            "WHERE fields LIKE '%dataUses%' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    assert entry[0].startswith("public/")
    assert entry[1] == "permit"
    assert json.loads(entry[2]) == []
    assert cards(portal.get("/uses").text) == before


# -- "Your data" ----------------------------------------------------------------------------


def test_your_data_counts_the_citizens_records_per_organisation(portal, health, data_dir):
    with sqlite3.connect(health[1]) as db:
        visits = db.execute(
            "SELECT count(*) FROM encounter WHERE pseudonym = ?", (me(data_dir),)
        ).fetchone()[0]
    assert visits > 0
    response = portal.get("/data")
    assert response.status_code == 200
    html = response.text
    held = html[html.index('id="records-health"') :]
    held = held[: held.index("</dd>")]
    word = "hospital visit" if visits == 1 else "hospital visits"
    assert f"<li>{visits} {word}</li>" in held
    assert "<li>1 personal details record</li>" in held
    assert f"We could not ask {SOCIAL_CARE}" in html
    assert "records-social-care" in html
    assert "it did not answer" in html
