"""Acceptance 1 in a real browser: a citizen's choice in the portal removes them from research.

One ``datatrust up`` serves the module, and the tests run in file order on its state. Each
journey is walked as a person would (Debian's Chromium through Playwright), and each is
judged by a research query made afterwards at the gateway with a real token from
``datatrust token --purpose research --client research-cli``: the citizen's pseudonym under
the research agreement (computed with the trust's key, as the node computes it) is in the
answer before and absent after. Every new page state is checked with axe-core for WCAG 2.2
A/AA and photographed at 1280 and 375 pixels wide into ``artifacts/screenshots/``.
"""

from __future__ import annotations

import sqlite3

import pytest

from datatrust.federation.subgraphs._pseudonyms import PseudonymCodec
from datatrust.node import node_keys
from datatrust.trust.identity._accounts import DEMO_CITIZEN_NHS_NUMBER
from tests._trust import post, token, tool_tls
from tests.web.conftest import DESKTOP
from tests.web.test_citizen_portal import action_button, check_page, sign_in, watch_csp

pytestmark = pytest.mark.slow

HOSPITAL = "University Hospitals Coventry and Warwickshire NHS Trust"
SOCIAL_CARE = "Coventry City Council, Adult Social Care"
RESEARCH_AGREEMENT = "dsa-research-cohort"
PATIENTS = "{ patients(first: 1000) { pseudonym } }"
CONSENT_NODES = ("health", "social-care")


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def no_js_context(browser):
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture(scope="module")
def research(running):
    """A research query at the gateway, with a real token: the research pseudonyms it returns."""
    bearer = token(running.trust, "research", "research-cli")

    def ask() -> set[str]:
        response = post(
            running.trust.run["gateway"],
            PATIENTS,
            "research",
            bearer=bearer,
            verify=tool_tls(running.trust.run),
        )
        body = response.json()
        assert (response.status_code, body.get("errors")) == (200, None), body
        return {person["pseudonym"] for person in body["data"]["patients"]}

    return ask


@pytest.fixture(scope="module")
def mine(running) -> str:
    """The demo citizen's pseudonym as the research agreement's recipients see it."""
    codec = PseudonymCodec(node_keys(running.data_dir).pseudonym_key)
    return codec.encode(running.pseudonym(DEMO_CITIZEN_NHS_NUMBER), RESEARCH_AGREEMENT)


def opt_out_rows(running, node: str) -> tuple[bool, list[str]]:
    """(opted out now, every change in order) in the node's own store."""
    me = running.pseudonym(DEMO_CITIZEN_NHS_NUMBER)
    with sqlite3.connect(running.data_dir / f"{node}.db") as db:
        current = db.execute("SELECT 1 FROM citizen_opt_out WHERE pseudonym = ?", (me,))
        is_out = current.fetchone() is not None
        history = db.execute(
            "SELECT action FROM citizen_opt_out_event WHERE pseudonym = ? ORDER BY id", (me,)
        )
        return is_out, [row[0] for row in history]


def banner(page) -> str:
    return " ".join(page.locator(".govuk-notification-banner--success").inner_text().split())


def open_opt_out_page(page, running) -> None:
    page.goto(running.portal + "/choices")
    page.get_by_role(
        "link", name="opt out of your records being used for research and planning"
    ).click()
    page.wait_for_url(running.portal + "/choices/opt-out")


# -- withdrawing research consent -------------------------------------------------------------


def test_a_withdrawal_in_the_browser_excludes_the_citizen_from_the_next_research_query(
    running, context, research, mine, axe_source
):
    before = research()
    assert mine in before  # the demo citizen consented to research at the hospital
    page = context.new_page()
    blocked = watch_csp(page)
    sign_in(page, running)
    page.wait_for_url(running.portal + "/choices")

    action_button(page, "Withdraw", HOSPITAL).click()
    page.wait_for_url(running.portal + "/choices")
    assert banner(page).startswith(
        f"Success You have withdrawn your consent for scientific research at {HOSPITAL}"
    )
    after = research()
    assert mine not in after
    assert after == before - {mine}  # nobody else changed

    action_button(page, "Give", HOSPITAL).click()  # back, for the opt-out journeys below
    page.wait_for_url(running.portal + "/choices")
    assert mine in research()
    assert blocked == []


# -- the research-and-planning opt-out --------------------------------------------------------


def test_registering_the_opt_out_excludes_the_citizen_and_removing_it_brings_them_back(
    running, context, research, mine, axe_source
):
    before = research()
    assert mine in before
    page = context.new_page()
    blocked = watch_csp(page)
    sign_in(page, running)
    page.wait_for_url(running.portal + "/choices")
    open_opt_out_page(page, running)
    assert page.title() == "Research and planning \N{EN DASH} Your data choices"
    assert page.locator("#opt-out-status").inner_text() == "You have not opted out"
    check_page(page, axe_source, "opt-out-not-opted-out")

    page.get_by_role("button", name="Opt out of research and planning").click()
    page.wait_for_url(running.portal + "/choices/opt-out")
    assert banner(page) == (
        "Success You have opted out of research and planning This applies from the next time "
        "anyone asks for data at every organisation in the data trust that holds your "
        f"records: {HOSPITAL} and {SOCIAL_CARE}. Each checks your choice every time it "
        "answers, so from now on their answers for research and planning will not include "
        "your records. It does not change your care."
    )
    assert page.locator("#opt-out-status").inner_text().startswith("You have opted out since ")
    for node in CONSENT_NODES:  # held at every node that applies the opt-out filter
        assert opt_out_rows(running, node) == (True, ["OptOutRegistered"])
    after = research()
    assert mine not in after
    assert after == before - {mine}
    page.get_by_text("History of your opt-out").click()
    history = page.locator("table").first.inner_text()
    assert history.count("You opted out") == 2  # one line per organisation
    check_page(page, axe_source, "opt-out-registered-confirmation")

    page.get_by_role("button", name="Remove your opt-out").click()
    page.wait_for_url(running.portal + "/choices/opt-out")
    assert banner(page).startswith(
        "Success You have removed your opt-out from research and planning"
    )
    assert "A national data opt-out you registered with the NHS still applies." in banner(page)
    for node in CONSENT_NODES:
        assert opt_out_rows(running, node) == (False, ["OptOutRegistered", "OptOutRemoved"])
    assert research() == before  # back, as they still consent
    check_page(page, axe_source, "opt-out-removed-confirmation")
    page.reload()
    assert page.locator(".govuk-notification-banner").count() == 0  # shown once
    assert blocked == []


def test_the_opt_out_journey_works_without_javascript(running, no_js_context, research, mine):
    before = research()
    page = no_js_context.new_page()
    sign_in(page, running)
    page.wait_for_url(running.portal + "/choices")
    assert "govuk-frontend-supported" not in (page.locator("body").get_attribute("class") or "")
    open_opt_out_page(page, running)

    page.get_by_role("button", name="Opt out of research and planning").click()
    page.wait_for_url(running.portal + "/choices/opt-out")
    assert banner(page).startswith("Success You have opted out of research and planning")
    assert mine not in research()
    check_page(page, "", "opt-out-no-javascript", javascript=False)

    page.get_by_role("button", name="Remove your opt-out").click()
    page.wait_for_url(running.portal + "/choices/opt-out")
    assert banner(page).startswith("Success You have removed your opt-out")
    assert research() == before
    for node in CONSENT_NODES:
        is_out, history = opt_out_rows(running, node)
        assert (is_out, history[-2:]) == (False, ["OptOutRegistered", "OptOutRemoved"])


def test_an_opt_out_form_without_a_valid_csrf_token_or_naming_a_person_is_refused(
    running, context, research, mine, axe_source
):
    before = research()
    page = context.new_page()
    sign_in(page, running)
    page.wait_for_url(running.portal + "/choices")
    open_opt_out_page(page, running)
    url = running.portal + "/choices/opt-out"
    for csrf in ({}, {"csrf_token": "forged"}):
        response = context.request.post(url, form={"action": "register", **csrf})
        assert response.status == 403
    token_value = page.locator("input[name=csrf_token]").first.input_value()
    for field in ("pseudonym", "person", "subject"):
        response = context.request.post(
            url, form={"csrf_token": token_value, "action": "register", field: "p-" + "0" * 32}
        )
        assert response.status == 400, field
        assert field in response.text()
    response = context.request.post(url, form={"csrf_token": token_value, "action": "delete"})
    assert response.status == 400
    # In the browser: the page's own form with its token taken out.
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    page.get_by_role("button", name="Opt out of research and planning").click()
    assert page.get_by_role("heading", level=1).inner_text() == "You cannot do that"
    assert research() == before
    assert all(not opt_out_rows(running, node)[0] for node in CONSENT_NODES)
