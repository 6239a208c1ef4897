"""The purpose register in a DPO's draft, in process: add, change, remove, and what is refused.

The same real trust as ``test_console_app``: a real identity server issues the DPOs'
tokens, and the policy store is a real one with version 1 (the shipped documents)
published. Every save is checked against what ``datatrust policy validate`` checks.
"""

from __future__ import annotations

import json
import re

import pytest

from datatrust.policies.lifecycle import read_draft, read_published
from datatrust.web.console._purpose_form import apply_purpose_form, remove_purpose
from tests.web import test_console_app as console_app

# The same trust as the console's own tests (fixtures shared by name, not copied).
identity = console_app.identity
data_dir = console_app.data_dir
settings = console_app.settings
app = console_app.app
browser = console_app.browser
second_browser = console_app.second_browser
new_draft = console_app.new_draft

NEW = {
    "id": "population-health",
    "title": "Population health management",
    "dpv": "datatrust:PopulationHealth",
    "dpv_parent": "dpv:PublicBenefit",
    "opt_out": "yes",
}


def summary(html: str) -> list[tuple[str, str]]:
    found = re.search(r'govuk-error-summary__list">(.*?)</ul>', html, re.S)
    assert found, "no error summary"
    return re.findall(r'<a href="#([^"]+)">([^<]+)</a>', found.group(1))


def purposes(data_dir, draft: str) -> dict[str, dict]:
    return {p["id"]: p for p in read_draft(data_dir, draft).register["purposes"]}


def changes(html: str) -> list[str]:
    return re.findall(r"<li>(purpose [^<]+)</li>", html)


def test_a_dpo_adds_a_purpose_changes_its_title_and_the_diff_says_so(browser, data_dir):
    csrf = browser.sign_in_as("health-dpo")
    draft = new_draft(browser, csrf)
    page = browser.get(f"/console/drafts/{draft}").text
    assert f'href="/console/drafts/{draft}/new-purpose">Add a purpose' in page
    assert f'href="/console/drafts/{draft}/purposes/research">Change' in page
    assert browser.get(f"/console/drafts/{draft}/new-purpose").status_code == 200

    added = browser.post(f"/console/drafts/{draft}/new-purpose", data={**NEW, "csrf_token": csrf})
    assert (added.status_code, added.headers["location"]) == (303, f"/console/drafts/{draft}")
    assert purposes(data_dir, draft)["population-health"] == {
        "id": "population-health",
        "title": "Population health management",
        "dpv": "datatrust:PopulationHealth",
        "dpv_parent": "dpv:PublicBenefit",
        "national_data_opt_out_applies": True,
    }
    page = browser.get(f"/console/drafts/{draft}").text
    assert "Purpose population-health added to draft" in page
    assert changes(page) == [
        "purpose population-health added to the register (&#39;Population health management&#39;)"
    ]

    form = browser.get(f"/console/drafts/{draft}/purposes/population-health").text
    assert 'value="Population health management"' in form
    edit = {k: v for k, v in NEW.items() if k != "id"} | {"title": "Population health"}
    changed = browser.post(
        f"/console/drafts/{draft}/purposes/population-health", data={**edit, "csrf_token": csrf}
    )
    assert changed.status_code == 303
    assert purposes(data_dir, draft)["population-health"]["title"] == "Population health"
    # Changing a purpose in force is a change in words too.
    research = {"title": "Research", "dpv": "dpv:ScientificResearch", "opt_out": "no"}
    assert (
        browser.post(
            f"/console/drafts/{draft}/purposes/research", data={**research, "csrf_token": csrf}
        ).status_code
        == 303
    )
    assert changes(browser.get(f"/console/drafts/{draft}").text) == [
        "purpose population-health added to the register (&#39;Population health&#39;)",
        "purpose research: national data opt out applies True -&gt; False",
        "purpose research: title &#39;Scientific research&#39; -&gt; &#39;Research&#39;",
    ]
    # The published register is untouched until the draft is approved and published.
    assert "population-health" not in {
        p["id"] for p in read_published(data_dir).register["purposes"]
    }


def test_the_purpose_form_shows_an_error_summary_and_inline_errors(browser, data_dir):
    csrf = browser.sign_in_as("health-dpo")
    draft = new_draft(browser, csrf)
    before = read_draft(data_dir, draft).register
    bad = {"id": "Population Health", "title": " ", "dpv": "PopulationHealth", "dpv_parent": "x"}
    response = browser.post(
        f"/console/drafts/{draft}/new-purpose", data={**bad, "csrf_token": csrf}
    )
    assert response.status_code == 400
    html = response.text
    assert "<title>Error: " in html
    assert summary(html) == [
        (
            "id",
            "The identifier must start with a lowercase letter and use only lowercase letters, "
            "digits and hyphens, like service-planning",
        ),
        ("title", "Enter a title for the purpose"),
        (
            "dpv",
            "The DPV term must be dpv: or datatrust: followed by letters only, like "
            "dpv:ScientificResearch",
        ),
        (
            "dpv_parent",
            "The broader DPV term must be dpv: followed by letters only, like dpv:PublicBenefit",
        ),
        ("opt_out", "Select whether the national data opt-out applies"),
    ]
    for target in ("id", "title", "dpv", "dpv_parent", "opt_out"):
        assert f'id="{target}-error" class="govuk-error-message"' in html, target
        assert re.search(rf'<input[^>]* id="{target}"', html), target
    assert 'value="Population Health"' in html  # what was typed stays
    # An id already in the register is refused too.
    taken = browser.post(
        f"/console/drafts/{draft}/new-purpose", data={**NEW, "id": "research", "csrf_token": csrf}
    )
    assert taken.status_code == 400
    assert summary(taken.text) == [
        ("id", "There is already a purpose research: choose another identifier")
    ]
    # A field the form never sends is a forged form.
    forged = browser.post(
        f"/console/drafts/{draft}/purposes/research",
        data={**NEW, "csrf_token": csrf},  # "id" is not on the change form
    )
    assert forged.status_code == 400
    assert "the form has fields this page never sends: id" in forged.text
    assert read_draft(data_dir, draft).register == before


def test_removing_a_purpose_an_agreement_uses_is_refused_inline(browser, data_dir):
    csrf = browser.sign_in_as("health-dpo")
    draft = new_draft(browser, csrf)
    before = read_draft(data_dir, draft).register
    response = browser.post(
        f"/console/drafts/{draft}/purposes/service-planning/remove", data={"csrf_token": csrf}
    )
    assert response.status_code == 400
    ((target, text),) = summary(response.text)
    assert target == "remove"
    assert text.startswith("The purpose service-planning cannot be removed: your agreement ")
    assert "dsa-planning-area-statistics" in text
    assert 'id="remove-error" class="govuk-error-message"' in response.text
    assert read_draft(data_dir, draft).register == before
    # A purpose nobody uses is removed, and the diff says so.
    browser.post(f"/console/drafts/{draft}/new-purpose", data={**NEW, "csrf_token": csrf})
    removed = browser.post(
        f"/console/drafts/{draft}/purposes/population-health/remove", data={"csrf_token": csrf}
    )
    assert removed.status_code == 303
    assert "population-health" not in purposes(data_dir, draft)
    assert changes(browser.get(f"/console/drafts/{draft}").text) == []


def test_the_trusts_validation_refuses_what_the_form_cannot_see_and_nothing_is_saved(
    browser, data_dir
):
    """The form's own checks pass, but validation (as ``policy validate``) refuses."""
    _, _, errors = apply_purpose_form({"purposes": []}, {**NEW, "title": "x" * 201})
    assert errors == {"title": "The title must be 200 characters or fewer"}
    # The agreements of another agency use "safeguarding": named only as a count.
    register = {"purposes": [{"id": "safeguarding"}]}
    agreements = {
        "agreements": [
            {"id": "a", "purposes": ["safeguarding"], "parties": [{"agency": "council"}]},
            {"id": "b", "purposes": ["safeguarding"], "parties": [{"agency": "health"}]},
        ]
    }
    changed, problem = remove_purpose(register, agreements, "safeguarding", "health")
    assert changed is None
    assert problem == (
        "The purpose safeguarding cannot be removed: your agreement b and 1 agreement of other "
        "organisations still use it. Take it out of them first"
    )
    # In the console: the draft's agreements were edited by hand (as the CLI flow lets a
    # DPO) to name a purpose nobody registered; the trust's validation refuses any save.
    csrf = browser.sign_in_as("health-dpo")
    draft = new_draft(browser, csrf)
    path = data_dir / "policies" / "drafts" / draft / "agreements.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["agreements"][0]["purposes"].append("marketing")
    path.write_text(json.dumps(document), encoding="utf-8")
    before = read_draft(data_dir, draft)
    response = browser.post(
        f"/console/drafts/{draft}/new-purpose", data={**NEW, "csrf_token": csrf}
    )
    assert response.status_code == 400
    assert summary(response.text) == [
        ("id", "unknown purpose &#39;marketing&#39; (agreements $.agreements[0].purposes[2])")
    ]
    assert 'id="id-error" class="govuk-error-message"' in response.text
    assert read_draft(data_dir, draft).register == before.register


def test_csrf_and_another_agencys_draft_are_refused(browser, second_browser, data_dir):
    council = second_browser.sign_in_as("dpo")
    council_draft = new_draft(second_browser, council)
    before = read_draft(data_dir, council_draft)
    csrf = browser.sign_in_as("health-dpo")
    own = new_draft(browser, csrf)
    own_before = read_draft(data_dir, own)
    posts = {
        f"/console/drafts/{own}/new-purpose": NEW,
        f"/console/drafts/{own}/purposes/research": {**NEW, "id": None},
        # (a body, so that the missing token, not a missing form, is what is refused)
        f"/console/drafts/{own}/purposes/research/remove": {"remove": "yes"},
    }
    for path, form in posts.items():
        for token in ({}, {"csrf_token": ""}, {"csrf_token": csrf + "x"}):
            sent = {k: v for k, v in {**form, **token}.items() if v is not None}
            response = browser.post(path, data=sent)
            assert response.status_code == 403, (path, token)
            assert "You cannot do that" in response.text
    assert read_draft(data_dir, own).register == own_before.register

    for path in (
        f"/console/drafts/{council_draft}/new-purpose",
        f"/console/drafts/{council_draft}/purposes/research",
        f"/console/drafts/{own}/purposes/no-such-purpose",
    ):
        assert browser.get(path).status_code == 404, path
    for path, form in (
        (f"/console/drafts/{council_draft}/new-purpose", NEW),
        (f"/console/drafts/{council_draft}/purposes/research", {"title": "Mine", "dpv": "dpv:X"}),
        (f"/console/drafts/{council_draft}/purposes/research/remove", {}),
        (f"/console/drafts/{own}/purposes/no-such-purpose/remove", {}),
    ):
        response = browser.post(path, data={**form, "csrf_token": csrf})
        assert response.status_code == 404, path
        assert "Page not found" in response.text
    assert read_draft(data_dir, council_draft).register == before.register


def test_a_submitted_draft_shows_the_register_without_change_links(browser, data_dir):
    csrf = browser.sign_in_as("health-dpo")
    draft = new_draft(browser, csrf)
    browser.post(f"/console/drafts/{draft}/submit", data={"csrf_token": csrf})
    page = browser.get(f"/console/drafts/{draft}").text
    assert "Scientific research" in page
    assert f"/console/drafts/{draft}/new-purpose" not in page
    refused = browser.post(f"/console/drafts/{draft}/new-purpose", data={**NEW, "csrf_token": csrf})
    assert refused.status_code == 400
    assert f"draft {draft} is submitted; only a draft or a rejected draft can be changed" in (
        refused.text
    )
    assert "population-health" not in purposes(data_dir, draft)


@pytest.mark.parametrize("dpv", ["dpv:ScientificResearch", "datatrust:Commissioning"])
def test_the_form_accepts_dpv_and_trust_terms(dpv):
    register = {"purposes": []}
    changed, _, errors = apply_purpose_form(register, {**NEW, "dpv": dpv, "dpv_parent": ""})
    assert errors == {}
    assert changed["purposes"] == [
        {
            "id": "population-health",
            "title": "Population health management",
            "dpv": dpv,
            "national_data_opt_out_applies": True,
        }
    ]
    assert register == {"purposes": []}  # a copy is changed, never the register passed in


def test_a_purpose_added_in_a_draft_can_be_ticked_in_an_agreement_of_that_draft(browser, data_dir):
    """The agreement form offers the draft's register, not only the published one."""
    csrf = browser.sign_in_as("health-dpo")
    draft = new_draft(browser, csrf)
    added = browser.post(f"/console/drafts/{draft}/new-purpose", data={**NEW, "csrf_token": csrf})
    assert added.status_code in (200, 303), added.text
    page = browser.get(f"/console/drafts/{draft}/agreements/{console_app.PLANNING}")
    assert 'name="purpose-population-health"' in page.text
    form = console_app.edit_form(data_dir, **{"purpose-population-health": "on"})
    saved = browser.post(
        f"/console/drafts/{draft}/agreements/{console_app.PLANNING}",
        data={**form, "csrf_token": csrf},
    )
    assert saved.status_code in (200, 303), saved.text
    planning = next(
        a
        for a in read_draft(data_dir, draft).agreements["agreements"]
        if a["id"] == console_app.PLANNING
    )
    assert "population-health" in planning["purposes"]


def test_an_agreement_edit_the_trusts_validation_refuses_is_shown_inline_not_a_crash(
    browser, data_dir
):
    """A problem elsewhere in the documents (hand-edited) is an inline error, nothing saved."""
    csrf = browser.sign_in_as("health-dpo")
    draft = new_draft(browser, csrf)
    path = data_dir / "policies" / "drafts" / draft / "agreements.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    other = next(a for a in document["agreements"] if a["id"] != console_app.PLANNING)
    other["purposes"].append("marketing")
    path.write_text(json.dumps(document), encoding="utf-8")
    before = read_draft(data_dir, draft).agreements
    response = browser.post(
        f"/console/drafts/{draft}/agreements/{console_app.PLANNING}",
        data={**console_app.edit_form(data_dir, title="Planning, renamed"), "csrf_token": csrf},
    )
    assert response.status_code == 400, response.text
    [(target, message)] = summary(response.text)
    assert target == "purposes"
    assert "unknown purpose &#39;marketing&#39;" in message
    assert read_draft(data_dir, draft).agreements == before
