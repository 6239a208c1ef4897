"""The analyst explorer in process: its guards, and the rendering of answers.

The guards run against a real identity server (in a thread) for the analyst's sign-in;
the gateway address is one where nothing listens, so a test that wrongly let a request
through to the gateway would see the "did not answer" page and fail. The rendering tests
feed gateway-shaped answers to the pure functions and read back tables, charts and maps.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet
from starlette.routing import Route

from datatrust._gateway_cli import local_supergraph
from datatrust.settings import PortalSettings, load_settings
from datatrust.web import create_portal_app
from datatrust.web.explorer import (
    ATTRIBUTION,
    EXPLORER_COOKIE,
    SAVED_QUERIES,
    area_map,
    bar_chart,
    demo_boundaries,
    project_boundaries,
    query_columns,
    result_tables,
    results_view,
)
from tests.asgi_client import app_client
from tests.trust.identity.live import running_identity
from tests.trust_identity import AUDIENCES

NOWHERE = "http://127.0.0.1:9"  # nothing listens here
PUBLIC_URL = "http://testserver"
PLANNING = next(q for q in SAVED_QUERIES if q.id == "planning-by-area")


# -- rendering: pure functions ---------------------------------------------------------------


@pytest.fixture(scope="module")
def supergraph():
    return local_supergraph()


def planning_answer(health_suppressed: int = 2) -> dict:
    """The shape the gateway gives the planning query: health suppressed two cells."""
    rows = [
        ("E01009522", "Coventry 014A", 230, 15, 8090),
        ("E01009523", "Coventry 010A", None, 0, 7990),
        ("E01009524", "Coventry 006A", 190, None, None),
        ("E01009525", "Coventry 006B", None, 10, 8095),
    ]
    note = {
        "method": "cell-key perturbation, suppression below the minimum cell size, rounding",
        "minCellSize": 10,
        "roundedTo": 5,
    }
    return {
        "data": {
            "areas": [
                {
                    "code": code,
                    "name": name,
                    "encounterCount": encounters,
                    "openCareEpisodes": episodes,
                    "footfall": footfall,
                }
                for code, name, encounters, episodes, footfall in rows
            ]
        },
        "extensions": {
            "disclosureControl": {
                "council": {**note, "suppressedCells": 0},
                "health": {**note, "suppressedCells": health_suppressed},
                "social-care": {**note, "suppressedCells": 1},
            }
        },
    }


def cells(table, key: str) -> list[tuple[str, str]]:
    index = table.column_index(key)
    return [(row[index].text, row[index].status) for row in table.rows]


def test_the_planning_query_makes_one_table_whose_columns_name_their_nodes(supergraph):
    roots = query_columns(supergraph.schema, supergraph.owners_of, PLANNING.query)
    assert [r.key for r in roots] == ["areas"]
    assert [(c.key, c.type_name, c.owners) for c in roots[0].columns] == [
        ("code", "ID", ("council", "health", "social-care")),
        ("name", "String", ("council",)),
        ("encounterCount", "Int", ("health",)),
        ("openCareEpisodes", "Int", ("social-care",)),
        ("footfall", "Int", ("council",)),
    ]


def test_columns_follow_aliases_fragments_and_nested_objects(supergraph):
    query = """
      query Q { places: areas(first: 3) { ...Names air: airQuality { pm25Mean } } }
      fragment Names on Area { code label: name }
    """
    roots = query_columns(supergraph.schema, supergraph.owners_of, query, "Q")
    assert [(c.key, c.owners) for c in roots[0].columns] == [
        ("code", ("council", "health", "social-care")),
        ("label", ("council",)),
        ("air.pm25Mean", ("council",)),
    ]
    assert roots[0].key == "places"
    assert query_columns(supergraph.schema, supergraph.owners_of, "{ not graphql") == []


def test_a_suppressed_count_is_shown_as_suppressed_and_a_missing_one_as_no_data(supergraph):
    roots = query_columns(supergraph.schema, supergraph.owners_of, PLANNING.query)
    [table] = result_tables(planning_answer(), roots)
    assert table.area_column == 0
    assert cells(table, "encounterCount") == [
        ("230", "value"),
        ("suppressed", "suppressed"),
        ("190", "value"),
        ("suppressed", "suppressed"),
    ]
    assert cells(table, "openCareEpisodes") == [
        ("15", "value"),
        ("0", "value"),  # a true zero stays 0
        ("suppressed", "suppressed"),
        ("10", "value"),
    ]
    # The council suppressed nothing, so its null is missing data, not a suppressed cell.
    assert cells(table, "footfall")[2] == ("no data", "no data")


def test_more_nulls_than_the_node_suppressed_cannot_be_called_suppressed(supergraph):
    roots = query_columns(supergraph.schema, supergraph.owners_of, PLANNING.query)
    [table] = result_tables(planning_answer(health_suppressed=1), roots)
    assert cells(table, "encounterCount")[1] == (
        "suppressed or no data",
        "suppressed or no data",
    )


def test_a_row_that_says_it_is_suppressed_marks_its_null_count(supergraph):
    query = next(q for q in SAVED_QUERIES if q.id == "known-to-both").query
    answer = {
        "data": {
            "crossAgencyCounts": [
                {"areaCode": "E01009522", "count": 15, "suppressed": False},
                {"areaCode": "E01009523", "count": None, "suppressed": True},
            ]
        }
    }
    roots = query_columns(supergraph.schema, supergraph.owners_of, query)
    [table] = result_tables(answer, roots)
    assert cells(table, "count") == [("15", "value"), ("suppressed", "suppressed")]
    assert table.area_column == 0


def test_the_chart_draws_values_as_bars_and_suppressed_cells_as_labelled_hatching(supergraph):
    roots = query_columns(supergraph.schema, supergraph.owners_of, PLANNING.query)
    [table] = result_tables(planning_answer(), roots)
    chart = bar_chart(table, "encounterCount", chart_id="c")
    svg = str(chart.svg)
    assert (chart.shown, chart.total, chart.suppressed) == (4, 4, 2)
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" class="datatrust-chart"')
    assert 'role="img"' in svg
    assert 'aria-labelledby="c-title c-desc"' in svg
    assert svg.count('fill="url(#c-hatch)"') == 2
    assert svg.count(">suppressed</text>") == 2
    assert "<title>Coventry 014A E01009522: 230</title>" in svg
    assert not re.search(r"\sstyle=|<style", svg)  # the CSP forbids inline styles
    with pytest.raises(ValueError, match="no column 'nope'"):
        bar_chart(table, "nope")


def test_the_map_shades_each_lsoa_and_hatches_the_suppressed_ones(supergraph):
    roots = query_columns(supergraph.schema, supergraph.owners_of, PLANNING.query)
    [table] = result_tables(planning_answer(), roots)
    shown = area_map(table, "encounterCount", demo_boundaries(), map_id="m")
    svg = str(shown.svg)
    assert svg.count("<path ") == 203  # every Coventry LSOA is drawn
    assert shown.mapped == 4
    assert shown.unmapped == ()
    assert "<title>Coventry 010A (E01009523): suppressed</title>" in svg
    assert "<title>Coventry 014A (E01009522): 230</title>" in svg
    assert "<title>Coventry 014B (E01009529): not in this answer</title>" in svg
    assert [e.label for e in shown.legend] == [
        "190 to 190",
        "over 190 to 230",
        "suppressed (too few to publish)",
        "not in this answer",
    ]
    assert not re.search(r"\sstyle=|<style", svg)
    assert "Open Government Licence v.3.0" in ATTRIBUTION


def test_boundaries_project_into_the_map_box_and_bad_geometry_is_named():
    boundaries = demo_boundaries()
    assert len(boundaries.areas) == 203
    assert boundaries.width == 720
    numbers = [float(n) for a in boundaries.areas for n in re.findall(r"-?\d+\.\d", a.path)]
    assert min(numbers) >= 0
    assert max(numbers) <= max(boundaries.width, boundaries.height)
    bad = {"features": [{"properties": {"code": "E01"}, "geometry": {"type": "Point"}}]}
    with pytest.raises(ValueError, match=r"feature 0 \(E01\) is a 'Point'"):
        project_boundaries(bad)


def test_the_view_charts_and_maps_the_measure_asked_for_and_lists_errors(supergraph):
    roots = query_columns(supergraph.schema, supergraph.owners_of, PLANNING.query)
    answer = planning_answer()
    answer["errors"] = [{"message": "health did not answer", "extensions": {"node": "health"}}]
    view = results_view(answer, roots, demo_boundaries(), measure="footfall")
    assert view.measure.key == "footfall"
    assert view.map is not None
    assert view.chart is not None
    assert [(e.message, e.node) for e in view.errors] == [("health did not answer", "health")]
    assert view.suppressed_count == 3
    view = results_view(answer, roots, demo_boundaries(), measure="nope")
    assert view.measure.key == "encounterCount"  # the first number column


# -- the application's guards -----------------------------------------------------------------


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    with running_identity(tmp_path_factory.mktemp("identity"), audiences=AUDIENCES) as live:
        row = live.service.store.client("portal")
        uris = [*row["redirect_uris"], f"{PUBLIC_URL}/explorer/callback"]
        live.service.store.add_client(**{**row, "redirect_uris": uris})
        yield live


@pytest.fixture
def settings(tmp_path: Path, identity) -> PortalSettings:
    config = tmp_path / "config"
    config.mkdir()
    (config / "gateway.toml").write_text(
        f'[[issuers]]\nissuer = "{identity.url}"\njwks_url = "{identity.url}/jwks.json"\n'
        'agencies = ["council", "health", "social-care", "university", "public"]\n',
        encoding="utf-8",
    )
    return load_settings(
        PortalSettings,
        environ={},
        data_dir=tmp_path,
        issuer=identity.url,
        public_url=PUBLIC_URL,
        gateway=f"{NOWHERE}/graphql",
    )


@pytest.fixture
def client(settings):
    with app_client(create_portal_app(settings), base_url=PUBLIC_URL) as inner:
        yield inner


def explorer_session(client, settings) -> dict:
    key = settings.effective_session_key_file.read_bytes().strip()
    raw = client._client.cookies.get(EXPLORER_COOKIE, path="/explorer")
    return json.loads(Fernet(key).decrypt(raw.encode()))


def sign_in(client, identity, username: str = "analyst") -> httpx.Response:
    """The real authorization-code flow: our redirect, the identity server's form, back."""
    to_identity = client.get("/explorer/sign-in")
    assert to_identity.status_code == 303
    with httpx.Client() as browser:
        page = browser.get(to_identity.headers["location"])
        fields = dict(re.findall(r'name="(csrf_token|oauth)" value="([^"]*)"', page.text))
        back = browser.post(
            f"{identity.url}/authorize",
            data={
                "csrf_token": fields["csrf_token"],
                "oauth": fields["oauth"].replace("&amp;", "&"),
                "username": username,
                "password": identity.accounts.passwords[username],
            },
        )
    location = urlsplit(back.headers["location"])
    assert location.path == "/explorer/callback"
    return client.get(f"{location.path}?{location.query}")


def run_form(client, settings, **fields) -> httpx.Response:
    form = {
        "csrf_token": explorer_session(client, settings)["csrf"],
        "query": PLANNING.query,
        "variables": PLANNING.variables,
        "purpose": "service-planning",
        "measure": "",
        "saved": "",
        **fields,
    }
    return client.post("/explorer/", data=form)


def test_an_analyst_signs_in_and_is_offered_only_their_tokens_purposes(client, settings, identity):
    assert sign_in(client, identity).headers["location"] == "/explorer/"
    page = client.get("/explorer/?saved=planning-by-area")
    assert page.status_code == 200
    options = re.findall(r'<option value="([^"]+)"', page.text.split('id="purpose"')[1])
    assert options[:2] == ["service-planning", "research"]
    assert 'name="purpose"' in page.text
    assert "query PlanningByArea" in page.text


def test_someone_who_is_not_an_analyst_is_refused(client, settings, identity):
    response = sign_in(client, identity, username="citizen")
    assert response.status_code == 403
    assert "The explorer is for analysts" in response.text
    assert client.get("/explorer/").text.count("Sign in") >= 1  # still signed out


def test_a_purpose_outside_the_token_is_refused_before_the_gateway_is_asked(
    client, settings, identity
):
    sign_in(client, identity)
    response = run_form(client, settings, purpose="direct-care")
    assert response.status_code == 403
    assert (
        "Choose a purpose your sign-in allows: Planning and improving public services, "
        "Scientific research"
    ) in response.text
    assert "did not answer" not in response.text  # the gateway was never asked
    csrf = explorer_session(client, settings)["csrf"]
    proxied = client.post(
        "/explorer/graphql",
        json={"query": "{ areas(first: 1) { code } }"},
        headers={"X-CSRF-Token": csrf, "Purpose": "direct-care"},
    )
    assert proxied.status_code == 403
    assert proxied.json()["errors"][0]["extensions"]["code"] == "PURPOSE_NOT_ALLOWED"
    # A purpose the token allows goes on to the gateway (here: nobody listens).
    assert run_form(client, settings).status_code == 502


def test_every_explorer_post_needs_the_sessions_csrf_token(client, settings, identity):
    sign_in(client, identity)
    token = explorer_session(client, settings)["csrf"]
    app = client._client._transport.app
    [explorer] = [r.app for r in app.routes if getattr(r, "path", "") == "/explorer"]
    posts = sorted(r.path for r in explorer.routes if isinstance(r, Route) and "POST" in r.methods)
    assert posts == ["/", "/graphql", "/sign-out"]
    for path in ("/explorer/", "/explorer/sign-out"):
        for extra in ({}, {"csrf_token": ""}, {"csrf_token": token + "x"}):
            response = client.post(path, data={"query": "{ x }", **extra})
            assert response.status_code == 403, (path, extra)
            assert "You cannot do that" in response.text
    for headers in ({}, {"X-CSRF-Token": ""}, {"X-CSRF-Token": token + "x"}):
        response = client.post(
            "/explorer/graphql",
            json={"query": "{ areas(first: 1) { code } }"},
            headers={"Purpose": "service-planning", **headers},
        )
        assert response.status_code == 403, headers
        assert response.json()["errors"][0]["extensions"]["code"] == "CSRF_REFUSED"
    assert client.get("/explorer/").status_code == 200  # still signed in


def test_the_access_token_never_reaches_the_browser(client, settings, identity):
    responses = [sign_in(client, identity)]
    access = explorer_session(client, settings)["tokens"]["access_token"]
    refresh = explorer_session(client, settings)["tokens"]["refresh_token"]
    csrf = explorer_session(client, settings)["csrf"]
    responses += [
        client.get("/explorer/"),
        client.get("/explorer/?saved=planning-by-area"),
        client.get("/explorer/ide"),
        run_form(client, settings),
        run_form(client, settings, purpose="direct-care"),
        run_form(client, settings, variables="[1]"),
        client.post(
            "/explorer/graphql",
            json={"query": "{ areas(first: 1) { code } }"},
            headers={"X-CSRF-Token": csrf, "Purpose": "service-planning"},
        ),
        client.post(
            "/explorer/graphql",
            json={"query": "{ areas(first: 1) { code } }"},
            headers={"X-CSRF-Token": csrf, "Purpose": "research"},
        ),
    ]
    for response in responses:
        exposed = response.text + json.dumps(dict(response.headers))
        assert access not in exposed, response.request.url
        assert refresh not in exposed, response.request.url
        assert access[:40] not in exposed
    assert responses[-1].status_code == 502  # the proxy reached for the gateway, nobody there


def test_bad_variables_are_named_inline_and_the_query_is_not_sent(client, settings, identity):
    sign_in(client, identity)
    response = run_form(client, settings, variables="[1]")
    assert response.status_code == 400
    assert "Variables must be a JSON object, like {&#34;since&#34;: &#34;2026-10-01&#34;}" in (
        response.text
    )
    assert '<a href="#variables">' in response.text
