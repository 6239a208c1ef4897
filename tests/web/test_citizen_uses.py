""" "Who used your data" and "Your data" in a real browser, against a real trust.

A researcher's query is made at the gateway with a real token (client ``research-cli``)
while the demo citizen is in the consented cohort; the citizen then signs in and finds that
query on their page, filters it, downloads it, with JavaScript and without. axe-core checks
each page for WCAG 2.2 A/AA, and each is photographed at desktop and mobile widths.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from datatrust.trust.identity._accounts import DEMO_CITIZEN_NHS_NUMBER
from datatrust.web._pages import format_when
from datatrust.web._uses import CSV_HEADER
from tests._trust import post, token, tool_tls
from tests.web.conftest import DESKTOP
from tests.web.test_citizen_portal import check_page, sign_in, watch_csp

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def running(shared_running):
    """The web tests' shared trust (tests/web/conftest.py): this module changes no
    consent, opt-out or policy."""
    return shared_running


HOSPITAL = "University Hospitals Coventry and Warwickshire NHS Trust"
RESEARCH = "{ patients(first: 1000) { pseudonym birthYear encounters { start } } }"


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def no_js_context(browser):
    context = browser.new_context(
        viewport=DESKTOP, java_script_enabled=False, accept_downloads=True
    )
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture(scope="module")
def research_query(running) -> datetime:
    """A research query at the gateway whose answer includes the demo citizen's records."""
    me = running.pseudonym(DEMO_CITIZEN_NHS_NUMBER)
    with sqlite3.connect(running.data_dir / "health.db") as db:
        in_cohort = db.execute(
            "SELECT 1 FROM consent WHERE pseudonym = ? AND controller = 'health' AND "
            "purpose_id = 'research' AND state = 'ConsentGiven' AND pseudonym NOT IN "
            "(SELECT pseudonym FROM national_opt_out)",
            (me,),
        ).fetchone()
    assert in_cohort, "the demo citizen must be in the research cohort for this journey"
    at = datetime.now(UTC)
    response = post(
        running.trust.run["gateway"],
        RESEARCH,
        "research",
        bearer=token(running.trust, "research", "research-cli"),
        verify=tool_tls(running.trust.run),
    )
    body = response.json()
    assert (response.status_code, body.get("errors")) == (200, None), body
    assert len(body["data"]["patients"]) > 1
    return at


def research_cards(page):
    return page.locator(".datatrust-use").filter(has_text="Scientific research")


def test_the_citizen_sees_the_research_query_filters_it_and_downloads_it(
    running, context, axe_source, research_query
):
    page = context.new_page()
    blocked = watch_csp(page)
    sign_in(page, running, start="/sign-in?next=/uses")
    page.wait_for_url(running.portal + "/uses")
    assert page.title() == "Who used your data \N{EN DASH} Your data choices"
    card = research_cards(page).first
    assert card.is_visible()
    text = card.inner_text()
    assert "University" in text
    assert "Article 9(2)(j)" in text
    assert "your year of birth" in text
    day = format_when(research_query).split(" at ")[0]
    assert card.locator(".govuk-summary-card__title").inner_text().startswith(day)
    assert page.locator("nav a[aria-current=page]").inner_text() == "Who used your data"
    check_page(page, axe_source, "uses-signed-in")

    page.select_option("#purpose", "research")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**/uses?*purpose=research*")
    assert page.locator(".datatrust-use").count() == research_cards(page).count() >= 1
    check_page(page, axe_source, "uses-filtered")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download this list as a spreadsheet (CSV)").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert tuple(rows[0]) == CSV_HEADER
    assert rows[1:]
    assert {row[2] for row in rows[1:]} == {"Scientific research"}
    assert "University" in {row[1] for row in rows[1:]}
    assert blocked == []


def test_the_same_journey_works_without_javascript(running, no_js_context, research_query):
    page = no_js_context.new_page()
    sign_in(page, running, start="/sign-in?next=/uses")
    page.wait_for_url(running.portal + "/uses")
    assert research_cards(page).count() >= 1
    page.select_option("#organisation", "university")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**/uses?*organisation=university*")
    assert page.locator(".datatrust-use").count() == research_cards(page).count() >= 1
    check_page(page, "", "uses-no-javascript", javascript=False)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download this list as a spreadsheet (CSV)").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.startswith(",".join(CSV_HEADER))
    assert "Scientific research" in text


def test_your_data_shows_the_hospitals_records_by_kind(running, context, axe_source):
    page = context.new_page()
    sign_in(page, running, start="/sign-in?next=/data")
    page.wait_for_url(running.portal + "/data")
    me = running.pseudonym(DEMO_CITIZEN_NHS_NUMBER)
    with sqlite3.connect(running.data_dir / "health.db") as db:
        visits = db.execute("SELECT count(*) FROM encounter WHERE pseudonym = ?", (me,)).fetchone()[
            0
        ]
    held = page.locator("#records-health").inner_text()
    assert f"{visits} hospital visit" in held
    assert (
        page.get_by_role("link", name="Your data", exact=True).get_attribute("aria-current")
        == "page"
    )
    check_page(page, axe_source, "your-data-signed-in")
    # Keyboard: the navigation link to the uses page is reachable and works.
    page.get_by_role("link", name="Who used your data").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(running.portal + "/uses")
    check_page(page, axe_source, "uses-from-your-data")
