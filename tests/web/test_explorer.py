"""The analyst explorer in a real browser, against a real trust: ask, see table, chart and map.

The web tests' shared ``datatrust up`` serves it. The analyst signs in on the identity
server's page, runs the saved planning query and reads the answer; the same journey works
without JavaScript and with the keyboard alone. Every page is checked with axe-core for WCAG 2.2
A/AA and photographed at desktop and mobile widths into ``artifacts/screenshots/``.
"""

from __future__ import annotations

import json
import re

import pytest
from cryptography.fernet import Fernet

from datatrust.web.explorer import EXPLORER_COOKIE
from tests.web.conftest import DESKTOP
from tests.web.test_citizen_portal import check_page, watch_csp

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def running(shared_running):
    """The web tests' shared trust (tests/web/conftest.py): this module changes no
    consent, opt-out or policy."""
    return shared_running


PLANNING = "Hospital encounters, open care episodes and footfall by area"


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(20_000)
    yield context
    context.close()


@pytest.fixture
def no_js_context(browser):
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    context.set_default_timeout(20_000)
    yield context
    context.close()


def explorer(running) -> str:
    return running.trust.run["explorer"]


def sign_in(page, running) -> None:
    page.goto(explorer(running))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{running.identity}/authorize*")
    page.get_by_label("Username").fill("analyst")
    page.get_by_label("Password").fill(running.passwords["analyst"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(explorer(running))


def access_token(context, running) -> str:
    """The analyst's access token, from inside the encrypted cookie (as only the server can)."""
    key = (running.data_dir / "keys" / "portal-session.key").read_bytes().strip()
    [cookie] = [c for c in context.cookies() if c["name"] == EXPLORER_COOKIE]
    return json.loads(Fernet(key).decrypt(cookie["value"].encode()))["tokens"]["access_token"]


def check_answer(page) -> None:
    """A table of all 203 LSOAs, a bar chart and a map; suppressed cells say so, never 0."""
    table = page.locator("#results-table-1")
    assert table.locator("tbody tr").count() == 203
    headers = table.locator("thead th").all_inner_texts()
    assert headers == ["code", "name", "encounterCount", "openCareEpisodes", "footfall"]
    assert page.locator("#results-chart-figure svg[role=img]").count() == 1
    assert page.locator("#results-chart-figure rect[fill^='url(#']").count() >= 1
    assert page.locator("#results-map-figure svg path").count() == 203
    assert "Open Government Licence v.3.0" in page.locator("#map-attribution").inner_text()
    raw = json.loads(page.locator("pre.datatrust-raw").text_content())
    areas = raw["data"]["areas"]
    health = raw["extensions"]["disclosureControl"]["health"]
    nulls = [n for n, area in enumerate(areas) if area["encounterCount"] is None]
    assert nulls
    assert health["suppressedCells"] >= len(nulls)
    column = [text.strip() for text in table.locator("tbody tr td:nth-child(3)").all_inner_texts()]
    assert [column[n] for n in nulls] == ["suppressed"] * len(nulls)
    assert all(column[n] == f"{areas[n]['encounterCount']:,}" for n in range(203) if n not in nulls)
    first = areas[nulls[0]]
    title = f"{first['name']} ({first['code']}): suppressed"
    assert page.locator("#results-map-figure path title", has_text=title).count() == 1


def test_the_explorer_start_page_signed_out_passes_axe(running, context, axe_source):
    page = context.new_page()
    blocked = watch_csp(page)
    response = page.goto(explorer(running))
    assert response.status == 200
    assert page.get_by_role("heading", level=1).inner_text() == "Explore the trust's data"
    check_page(page, axe_source, "explorer-start-signed-out")
    assert blocked == []


def test_an_analyst_runs_the_saved_planning_query_and_sees_a_table_a_chart_and_a_map(
    running, context, axe_source
):
    page = context.new_page()
    blocked = watch_csp(page)
    sign_in(page, running)
    check_page(page, axe_source, "explorer-query-empty")
    purposes = page.locator("#purpose option").evaluate_all("os => os.map(o => o.value)")
    assert purposes == ["service-planning", "research"]  # the token's, and only those
    page.get_by_role("link", name=PLANNING).click()
    assert "query PlanningByArea" in page.get_by_label("GraphQL query").input_value()
    page.get_by_role("button", name="Run query").click()
    page.wait_for_selector("#results")
    check_answer(page)
    token = access_token(context, running)
    assert token not in page.content()
    check_page(page, axe_source, "explorer-planning-results")
    assert blocked == []


def test_the_same_journey_works_without_javascript(running, no_js_context, axe_source):
    page = no_js_context.new_page()
    sign_in(page, running)
    page.get_by_role("link", name=PLANNING).click()
    page.get_by_role("button", name="Run query").click()
    page.wait_for_selector("#results")
    check_answer(page)
    page.get_by_label("Column to chart and map").select_option("footfall")
    page.get_by_role("button", name="Run query").click()
    assert page.get_by_role("heading", name="Map: footfall by LSOA").count() == 1
    check_page(page, axe_source, "explorer-planning-results-no-js", javascript=False)
    page.goto(explorer(running) + "ide")
    assert "The IDE needs JavaScript" in page.locator("#graphiql-fallback").inner_text()


def test_keyboard_alone_reaches_the_saved_queries_and_the_run_button(running, context):
    page = context.new_page()
    sign_in(page, running)
    reached: list[str] = []
    for _ in range(60):
        page.keyboard.press("Tab")
        label = page.evaluate(
            "() => (document.activeElement.id || '') + ':' + "
            "document.activeElement.textContent.trim().slice(0, 60)"
        )
        reached.append(label)
        if label.startswith("run-query:"):
            break
    assert any(PLANNING in label for label in reached), reached
    assert reached[-1] == "run-query:Run query", reached
    for label in ("purpose:", "query:", "variables:"):
        assert any(r.startswith(label) for r in reached), (label, reached)
    # Open the saved query and run it with the keyboard only.
    page.keyboard.press("Shift+Tab")
    while PLANNING not in page.evaluate("document.activeElement.textContent"):
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    page.locator("#run-query").focus()
    assert page.evaluate("document.activeElement.id") == "run-query"
    page.keyboard.press("Enter")
    page.wait_for_selector("#results")
    assert page.locator("#results-table-1 tbody tr").count() == 203


def test_a_bad_variables_field_gets_an_inline_error_that_passes_axe(running, context, axe_source):
    page = context.new_page()
    sign_in(page, running)
    page.get_by_role("link", name=PLANNING).click()
    page.get_by_label("Variables (optional)").fill("[1]")
    page.get_by_role("button", name="Run query").click()
    summary = page.locator(".govuk-error-summary")
    assert re.search(r"Variables must be a JSON object", summary.inner_text())
    check_page(page, axe_source, "explorer-query-error")


def test_the_graphiql_ide_runs_a_query_through_the_explorer_with_the_chosen_purpose(
    running, context, axe_source
):
    page = context.new_page()
    blocked = watch_csp(page)
    sign_in(page, running)
    page.get_by_role("link", name="GraphQL IDE").first.click()
    page.wait_for_selector(".graphiql-container")
    assert page.locator("#graphiql-fallback").count() == 0  # replaced by GraphiQL
    options = page.locator("#ide-purpose option").evaluate_all("os => os.map(o => o.value)")
    assert options == ["service-planning", "research"]
    with page.expect_response(lambda r: r.url.endswith("/explorer/graphql")) as answer:
        page.locator(".graphiql-execute-button").click()
    while "PlanningByArea" not in (answer.value.request.post_data or ""):
        with page.expect_response(lambda r: r.url.endswith("/explorer/graphql")) as answer:
            pass
    assert answer.value.request.headers["purpose"] == "service-planning"
    assert "authorization" not in answer.value.request.headers
    body = answer.value.json()
    assert len(body["data"]["areas"]) == 203
    page.wait_for_selector(".graphiql-response .CodeMirror-code")
    assert "E01009522" in page.locator(".graphiql-response").inner_text()
    assert access_token(context, running) not in page.content()
    check_page(page, axe_source, "explorer-ide")
    assert blocked == []
