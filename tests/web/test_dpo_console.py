"""The DPO console in a real browser, against a real trust (``datatrust up``).

A DPO of the hospital narrows the planning agreement in the form, sees the diff in words
and the dry run naming the analyst's earlier query, and submits; a second DPO approves and
publishes; the node's ``/readyz`` shows the new version and the same query, made at the
gateway with a real token from ``datatrust token``, is refused naming the agreement. The
council's DPOs then walk the same journey with JavaScript off. Every console page visited
is checked with axe-core and photographed at both widths into ``artifacts/screenshots/``.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests._trust import post, token, tool_tls
from tests.web.test_citizen_portal import check_page, watch_csp

pytestmark = pytest.mark.slow

PLANNING = "dsa-planning-area-statistics"
AREA_COUNTS = "{ areas(first: 5) { code encounterCount } }"
NARROWED = f"agreement {PLANNING} does not share field Area.encounterCount at node 'health'"
PUBLISH_WAIT_SECONDS = 15


@pytest.fixture
def new_context(browser):
    contexts = []

    def make(*, javascript: bool = True):
        from tests.web.conftest import DESKTOP

        context = browser.new_context(viewport=DESKTOP, java_script_enabled=javascript)
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def console_url(running) -> str:
    return running.trust.run["console"]


def sign_in(page, running, username: str) -> None:
    """Open the console and sign in on the identity server's page, as a person would."""
    page.goto(console_url(running))
    page.wait_for_url(f"{running.identity}/authorize*")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(running.passwords[username])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(console_url(running))


def readyz_version(running, node: str) -> str:
    url = running.trust.run["nodes"][node].replace("/graphql", "/readyz")
    response = httpx.get(url, verify=tool_tls(running.trust.run), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["policy_version"]


def wait_for_version(running, node: str, label: str) -> str:
    deadline = time.monotonic() + PUBLISH_WAIT_SECONDS
    while True:
        version = readyz_version(running, node)
        if version.startswith(f"{label} "):
            return version
        assert time.monotonic() < deadline, f"{node} still runs {version}, not {label}"
        time.sleep(0.2)


def area_counts(running) -> httpx.Response:
    return post(
        running.trust.run["gateway"],
        AREA_COUNTS,
        "service-planning",
        bearer=token(running.trust, "service-planning"),
    )


def test_a_dpo_narrows_planning_a_second_dpo_approves_and_the_gateway_refuses_naming_it(
    running, new_context, axe_source
):
    before = area_counts(running)
    assert before.status_code == 200, before.text
    assert any(area["encounterCount"] for area in before.json()["data"]["areas"])
    assert readyz_version(running, "health").startswith("v1 ")

    page = new_context().new_page()
    blocked = watch_csp(page)
    sign_in(page, running, "health-dpo")
    assert page.get_by_role("heading", level=1).inner_text() == "Agreements and drafts"
    check_page(page, axe_source, "console-overview")
    page.get_by_role("link", name="Purpose register").click()
    check_page(page, axe_source, "console-purposes")
    page.get_by_role("link", name="Agreements and drafts").click()
    page.get_by_role("link", name="Service planning").first.click()
    assert page.get_by_role("heading", level=1).inner_text() == PLANNING
    check_page(page, axe_source, "console-agreement")
    page.go_back()

    page.get_by_role("button", name="Start a new draft").click()
    page.wait_for_url(f"{console_url(running)}drafts/*")
    draft = page.url.rsplit("/", 1)[1]
    assert "Nothing yet" in page.locator("#changes").inner_text()
    check_page(page, axe_source, "console-draft-new")

    page.get_by_role("link", name=f"Change {PLANNING}").click()
    check_page(page, axe_source, "console-edit-agreement")
    # A mistake first: the error summary and the inline error, as GOV.UK prescribes.
    page.get_by_label("End date").fill("2025-12-31")
    page.get_by_role("button", name="Save changes to the draft").click()
    assert page.title().startswith("Error: ")
    summary = page.locator(".govuk-error-summary")
    message = "The end date must be the same as or after the start date"
    assert summary.get_by_role("link").inner_text() == message
    assert message in page.locator("#end-error").inner_text()
    check_page(page, axe_source, "console-edit-agreement-errors")
    summary.get_by_role("link").click()
    assert page.evaluate("document.activeElement.id") == "end"
    page.get_by_label("End date").fill("2028-12-31")
    page.get_by_label("Area.encounterCount", exact=True).select_option("not-shared")
    page.get_by_role("button", name="Save changes to the draft").click()
    page.wait_for_url(f"{console_url(running)}drafts/{draft}")
    assert page.locator("#changes").inner_text() == (
        f"agreement {PLANNING}: Area.encounterCount at health: aggregate-only -> removed"
    )
    check_page(page, axe_source, "console-draft-changed")

    page.get_by_role("link", name="Try the draft against recent queries").click()
    changes = page.locator("#dry-run-changes").inner_text()
    assert "council (analyst) via analyst-cli at health for service-planning" in changes
    assert f"would now be REFUSED: {NARROWED}" in changes
    check_page(page, axe_source, "console-dry-run")
    page.get_by_role("link", name=f"Back to draft {draft}").click()

    page.get_by_label("What the change is for (optional)").fill("Counts move to the SDE")
    page.get_by_role("button", name="Submit for approval").click()
    page.wait_for_url(f"{console_url(running)}drafts/{draft}")
    assert page.locator("#draft-status").inner_text() == "submitted"
    assert "You cannot approve your own draft" in page.inner_text("main")
    check_page(page, axe_source, "console-draft-submitted")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{console_url(running)}signed-out")
    check_page(page, axe_source, "console-signed-out")

    second = new_context().new_page()
    sign_in(second, running, "health-dpo2")
    second.get_by_role("link", name=f"Draft {draft}").click()
    second.get_by_label("Comment").fill("Agreed at the board on 20 November")
    second.get_by_role("button", name="Approve").click()
    second.wait_for_url(f"{console_url(running)}drafts/{draft}")
    assert second.locator("#draft-status").inner_text() == "approved"
    check_page(second, axe_source, "console-draft-approved")
    second.get_by_label("Reason (recorded in the history)").fill("Counts move to the SDE")
    second.get_by_role("button", name="Publish").click()
    second.wait_for_url(f"{console_url(running)}drafts/{draft}")
    banner = second.locator(".govuk-notification-banner").inner_text()
    assert f"Draft {draft} published as v2" in banner

    wait_for_version(running, "health", "v2")
    refused = area_counts(running)
    messages = " ".join(e["message"] for e in refused.json().get("errors", []))
    assert PLANNING in messages, refused.text
    assert "Area.encounterCount" in messages, refused.text

    second.get_by_role("link", name="History").click()
    assert "v2" in second.locator("#versions").inner_text()
    check_page(second, axe_source, "console-history")
    second.get_by_role("link", name="Audit").click()
    assert "Intact" in second.locator("#chains").inner_text()
    second.get_by_label("Purpose").select_option("service-planning")
    second.get_by_label("Outcome").select_option("permit")
    second.get_by_label("Requester contains").fill("analyst-cli")
    second.get_by_role("button", name="Search").click()
    decisions = second.locator("#decisions").inner_text()
    assert f"{PLANNING}: " in decisions  # the analyst's query before the change, and why
    assert "Refused" not in decisions
    check_page(second, axe_source, "console-audit")
    with second.expect_download() as download:
        second.get_by_role("link", name="Download these decisions (CSV)").click()
    exported = download.value.path().read_text(encoding="utf-8")
    assert exported.splitlines()[0].startswith("recorded_at,node,requester")
    assert exported.count("analyst-cli") >= 1
    assert ",deny," not in exported
    assert blocked == []


def test_the_same_journey_works_without_javascript(running, new_context, axe_source):
    page = new_context(javascript=False).new_page()
    sign_in(page, running, "dpo")
    page.get_by_role("button", name="Start a new draft").click()
    page.wait_for_url(f"{console_url(running)}drafts/*")
    draft = page.url.rsplit("/", 1)[1]
    assert draft.startswith("council-")
    page.get_by_role("link", name=f"Change {PLANNING}").click()
    page.get_by_label("Commissioning").uncheck()
    page.get_by_role("button", name="Save changes to the draft").click()
    page.wait_for_url(f"{console_url(running)}drafts/{draft}")
    assert f"agreement {PLANNING}: purpose commissioning removed" in (
        page.locator("#changes").inner_text()
    )
    page.get_by_role("link", name="Try the draft against recent queries").click()
    assert "replayed against v2" in page.locator("#dry-run-summary").inner_text()
    page.get_by_role("link", name=f"Back to draft {draft}").click()
    page.get_by_role("button", name="Submit for approval").click()
    page.wait_for_url(f"{console_url(running)}drafts/{draft}")
    check_page(page, "", "console-draft-submitted-no-javascript", javascript=False)

    second = new_context(javascript=False).new_page()
    sign_in(second, running, "dpo2")
    second.goto(f"{console_url(running)}drafts/{draft}")
    second.get_by_label("Comment").fill("Commissioning moves to its own agreement")
    second.get_by_role("button", name="Approve").click()
    second.wait_for_url(f"{console_url(running)}drafts/{draft}")
    second.get_by_label("Reason (recorded in the history)").fill("Commissioning split out")
    second.get_by_role("button", name="Publish").click()
    second.wait_for_url(f"{console_url(running)}drafts/{draft}")
    assert (
        f"Draft {draft} published as v3"
        in second.locator(".govuk-notification-banner").inner_text()
    )
    wait_for_version(running, "council", "v3")
    check_page(second, "", "console-published-no-javascript", javascript=False)


def test_a_health_dpo_cannot_open_the_councils_draft_in_the_browser(running, new_context):
    page = new_context().new_page()
    sign_in(page, running, "health-dpo")
    response = page.goto(f"{console_url(running)}drafts/council-1")
    assert response.status == 404
    assert page.get_by_role("heading", level=1).inner_text() == "Page not found"
    response = page.goto(f"{console_url(running)}agreements/dsa-safeguarding-referrals")
    assert response.status == 404
