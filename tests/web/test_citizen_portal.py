"""The citizen portal in a real browser, against a real trust: sign in, see and change choices.

One ``datatrust up`` serves the module; the tests run in file order on its state (the
hospital's research consent is withdrawn in the first journey). Every page visited is
checked with axe-core for WCAG 2.2 A/AA and photographed at desktop and mobile widths into
``artifacts/screenshots/``.
"""

from __future__ import annotations

import re
import sqlite3

import pytest

from datatrust.trust.identity._accounts import DEMO_CITIZEN_NHS_NUMBER
from tests.web.conftest import DESKTOP, MOBILE, SCREENSHOTS, WCAG_TAGS

pytestmark = pytest.mark.slow

HOSPITAL = "University Hospitals Coventry and Warwickshire NHS Trust"
SOCIAL_CARE = "Coventry City Council, Adult Social Care"


# -- helpers -----------------------------------------------------------------------------


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


def watch_csp(page) -> list[str]:
    """Console errors about the Content-Security-Policy (a blocked script, style, font...)."""
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return problems


def check_page(page, axe_source: str, name: str, *, javascript: bool = True) -> None:
    """axe-core finds no WCAG 2.2 A/AA violation; screenshots at both widths."""
    if javascript:
        page.evaluate(axe_source)
        result = page.evaluate(
            "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS
        )
        violations = [
            (v["id"], v["help"], [node["target"] for node in v["nodes"]])
            for v in result["violations"]
        ]
        assert violations == [], f"{name}: {violations}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for label, viewport in (("desktop", DESKTOP), ("mobile", MOBILE)):
        page.set_viewport_size(viewport)
        page.screenshot(path=SCREENSHOTS / f"{name}-{label}.png", full_page=True)
    page.set_viewport_size(size)


def sign_in(page, running, start: str = "/") -> None:
    """Sign in as the demo citizen on the identity server's page, as a person would."""
    page.goto(running.portal + start)
    if start == "/":
        page.get_by_role("button", name="Start now").click()
    page.wait_for_url(f"{running.identity}/authorize*")
    page.get_by_label("Username").fill("citizen")
    page.get_by_label("Password").fill(running.passwords["citizen"])
    page.get_by_role("button", name="Sign in").click()


def action_button(page, verb: str, agency: str):
    name = f"{verb} consent for scientific research at {agency}"
    return page.get_by_role("button", name=name, exact=True)


def me(running) -> str:
    return running.pseudonym(DEMO_CITIZEN_NHS_NUMBER)


# -- journeys ----------------------------------------------------------------------------


def test_the_start_page_works_and_runs_govuk_frontend_under_the_strict_csp(
    running, context, axe_source
):
    page = context.new_page()
    blocked = watch_csp(page)
    response = page.goto(running.portal + "/")
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page.get_by_role("heading", level=1).inner_text() == (
        "See and change how your records are used"
    )
    assert "govuk-frontend-supported" in page.locator("body").get_attribute("class")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to main content"
    check_page(page, axe_source, "start-signed-out")
    assert blocked == []


def test_a_citizen_withdraws_research_consent_at_the_hospital_and_the_node_records_it(
    running, context, axe_source
):
    assert running.consent_state("health", me(running)) == "ConsentGiven"  # the demo's
    page = context.new_page()
    blocked = watch_csp(page)
    sign_in(page, running)
    page.wait_for_url(running.portal + "/choices")
    assert page.title() == "Your choices \N{EN DASH} Your data choices"
    check_page(page, axe_source, "choices-signed-in")

    action_button(page, "Withdraw", HOSPITAL).click()
    page.wait_for_url(running.portal + "/choices")
    banner = page.locator(".govuk-notification-banner--success")
    assert banner.locator(".govuk-notification-banner__heading").inner_text() == (
        f"You have withdrawn your consent for scientific research at {HOSPITAL}"
    )
    assert "from now on its answers for scientific research will not include your records" in (
        banner.inner_text()
    )
    assert running.consent_state("health", me(running)) == "ConsentWithdrawn"
    assert action_button(page, "Give", HOSPITAL).is_visible()
    page.get_by_text(f"History of your choices at {HOSPITAL}").click()
    history = page.locator("table").first.inner_text()
    assert history.index("You withdrew consent") < history.index("You gave consent")
    check_page(page, axe_source, "choices-withdrawn-confirmation")
    page.reload()
    assert page.locator(".govuk-notification-banner").count() == 0  # shown once
    assert blocked == []


def test_the_same_journey_works_without_javascript(running, no_js_context):
    assert running.consent_state("social-care", me(running)) is None
    page = no_js_context.new_page()
    sign_in(page, running)
    page.wait_for_url(running.portal + "/choices")
    assert "govuk-frontend-supported" not in (page.locator("body").get_attribute("class") or "")

    action_button(page, "Give", SOCIAL_CARE).click()
    page.wait_for_url(running.portal + "/choices")
    assert running.consent_state("social-care", me(running)) == "ConsentGiven"
    assert f"You have given your consent for scientific research at {SOCIAL_CARE}" in (
        page.locator(".govuk-notification-banner").inner_text()
    )

    action_button(page, "Withdraw", SOCIAL_CARE).click()
    page.wait_for_url(running.portal + "/choices")
    assert running.consent_state("social-care", me(running)) == "ConsentWithdrawn"
    assert f"You have withdrawn your consent for scientific research at {SOCIAL_CARE}" in (
        page.locator(".govuk-notification-banner").inner_text()
    )
    check_page(page, "", "choices-no-javascript", javascript=False)


def test_a_change_made_meanwhile_shows_an_error_summary_and_an_inline_error(
    running, context, axe_source
):
    first = context.new_page()
    sign_in(first, running)
    first.wait_for_url(running.portal + "/choices")
    action_button(first, "Give", HOSPITAL).click()  # withdrawn by the journey above
    first.wait_for_url(running.portal + "/choices")
    second = context.new_page()
    second.goto(running.portal + "/choices")
    action_button(second, "Withdraw", HOSPITAL).click()
    second.wait_for_url(running.portal + "/choices")
    assert running.consent_state("health", me(running)) == "ConsentWithdrawn"

    with first.expect_response(running.portal + "/choices") as answer:
        action_button(first, "Withdraw", HOSPITAL).click()  # the page is out of date
    assert answer.value.status == 409
    assert first.title().startswith("Error: ")
    summary = first.locator(".govuk-error-summary")
    assert summary.get_by_role("heading").inner_text() == "There is a problem"
    link = summary.get_by_role("link")
    message = (
        f"Your consent for scientific research at {HOSPITAL} was not in place, so there was "
        "nothing to withdraw. This page now shows your current choice."
    )
    assert link.inner_text() == message
    inline = first.locator("#choice-health-research-error")
    assert " ".join(inline.text_content().split()) == f"Error: {message}"
    link.click()
    assert first.evaluate("document.activeElement.id") == "choice-health-research"
    assert action_button(first, "Give", HOSPITAL).is_visible()  # the current choice
    check_page(first, axe_source, "choices-error-summary")


def test_a_form_without_a_valid_csrf_token_is_refused_with_a_403_page(running, context, axe_source):
    page = context.new_page()
    sign_in(page, running)
    page.wait_for_url(running.portal + "/choices")
    before = running.consent_state("health", me(running))
    form = {"agency": "health", "purpose": "research", "action": "give"}
    for token in ({}, {"csrf_token": "forged"}):
        response = context.request.post(running.portal + "/choices", form={**form, **token})
        assert response.status == 403
        assert "You cannot do that" in response.text()
    # In the browser: the same form with its token taken out.
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    action_button(page, "Give", HOSPITAL).click()
    assert page.get_by_role("heading", level=1).inner_text() == "You cannot do that"
    assert running.consent_state("health", me(running)) == before
    check_page(page, axe_source, "error-403-csrf")


@pytest.mark.parametrize(
    "target", ["https://evil.example/choices", "//evil.example/choices", "/\\evil.example"]
)
def test_a_next_to_another_host_is_refused_and_lands_on_the_start_page(running, context, target):
    page = context.new_page()
    sign_in(page, running, start=f"/sign-in?next={target}")
    page.wait_for_url(running.portal + "/")
    assert page.get_by_role("button", name="See your choices").is_visible()
    page.goto(f"{running.portal}/sign-in?next={target}")  # signed in already
    assert page.url == running.portal + "/"


def test_no_identifier_in_a_url_or_form_reaches_another_persons_consent(running, context):
    with sqlite3.connect(running.data_dir / "health.db") as db:
        other = db.execute(
            "SELECT pseudonym FROM consent WHERE controller = 'health' AND purpose_id = "
            "'research' AND state = 'ConsentGiven' AND pseudonym != ? ORDER BY pseudonym",
            (me(running),),
        ).fetchone()[0]
    mine = running.consent_state("health", me(running))
    page = context.new_page()
    sign_in(page, running)
    page.wait_for_url(running.portal + "/choices")
    token = page.locator("input[name=csrf_token]").first.input_value()

    # A form naming someone else, however it names them, is refused outright.
    for field in ("pseudonym", "person", "subject"):
        response = context.request.post(
            f"{running.portal}/choices?{field}={other}",
            form={
                "csrf_token": token,
                "agency": "health",
                "purpose": "research",
                "action": "withdraw",
                field: other,
            },
        )
        assert response.status == 400, field
        assert field in response.text()
    # A URL naming someone else still shows only the signed-in citizen's own records.
    page.goto(f"{running.portal}/choices?pseudonym={other}&person={other}")
    assert other not in page.content()
    expected = {"ConsentGiven": "Consent given", "ConsentWithdrawn": "Consent withdrawn"}[mine]
    assert page.locator("#choice-health-research-status").inner_text() == expected
    # The action form itself names no person: the node takes them from the token.
    names = page.locator("form[action='/choices'] input").evaluate_all(
        "inputs => inputs.map(i => i.name)"
    )
    assert set(names) == {"csrf_token", "agency", "purpose", "action"}
    assert running.consent_state("health", other) == "ConsentGiven"
    assert running.consent_state("health", me(running)) == mine


def test_a_missing_page_is_a_404_page_and_signing_out_ends_the_session(
    running, context, axe_source
):
    page = context.new_page()
    response = page.goto(running.portal + "/no-such-page")
    assert response.status == 404
    assert page.get_by_role("heading", level=1).inner_text() == "Page not found"
    check_page(page, axe_source, "error-404")

    sign_in(page, running)
    page.wait_for_url(running.portal + "/choices")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(running.portal + "/")
    assert page.get_by_role("link", name="Sign in").is_visible()
    page.goto(running.portal + "/choices")
    assert re.match(rf"{re.escape(running.identity)}/authorize\?", page.url)


def test_a_second_citizen_sees_and_changes_only_their_own_consent(running, browser):
    """Two people signed in at once: each page and each change is the token's person's."""
    from datatrust.adapters import is_valid_nhs_number
    from datatrust.trust.identity import IdentityService, IdentitySettings

    with sqlite3.connect(running.data_dir / "health.db") as db:
        consented = {
            row[0]
            for row in db.execute(
                "SELECT pseudonym FROM consent WHERE controller = 'health' AND purpose_id = "
                "'research' AND state = 'ConsentGiven'"
            )
        }
    other_number = next(
        number
        for number in (f"999000{n:04d}" for n in range(1000, 2000))
        if number != DEMO_CITIZEN_NHS_NUMBER
        and is_valid_nhs_number(number)
        and running.pseudonym(number) in consented
    )
    other = running.pseudonym(other_number)
    service = IdentityService(
        IdentitySettings(
            issuer=running.identity,
            audiences=("urn:datatrust:gateway",),
            data_dir=running.data_dir / "identity",
            person_key_file=running.data_dir / "keys" / "pseudonym.key",
        )
    )
    password = service.add_person(
        "citizen2", name="Sam Second", agency="public", roles=["citizen"], nhs_number=other_number
    )
    service.store.engine.dispose()
    mine_before = running.consent_state("health", me(running))

    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        page.goto(running.portal + "/sign-in?next=/choices")
        page.get_by_label("Username").fill("citizen2")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(running.portal + "/choices")
        assert "Signed in as Sam Second." in page.inner_text("main")
        assert page.locator("#choice-health-research-status").inner_text() == "Consent given"
        page.get_by_text(f"History of your choices at {HOSPITAL}").click()
        assert "You withdrew consent" not in page.locator("table").first.inner_text()
        action_button(page, "Withdraw", HOSPITAL).click()
        page.wait_for_url(running.portal + "/choices")
    finally:
        context.close()
    assert running.consent_state("health", other) == "ConsentWithdrawn"
    assert running.consent_state("health", me(running)) == mine_before
