"""What the opt-out page offers, from what the nodes answered (pure: no node, no browser)."""

from __future__ import annotations

from datetime import UTC, datetime

from datatrust.web._consent_api import ConsentNode
from datatrust.web._opt_out import OptOutLine, opt_out_confirmation, opt_out_state

HEALTH = ConsentNode("health", "Hospital", "https://127.0.0.1:9/consent")
CARE = ConsentNode("social-care", "Social care", "https://127.0.0.1:9/consent")
NODES = [HEALTH, CARE]
MONDAY = "2026-11-23T09:00:00+00:00"
TUESDAY = "2026-11-24T10:30:00+00:00"


def out(since: str, *history: tuple[str, str]) -> dict:
    return {
        "optedOut": True,
        "since": since,
        "history": [{"action": a, "at": at} for a, at in history],
    }


NOT_OUT = {"optedOut": False, "since": None, "history": []}


def test_opted_out_everywhere_offers_removal_and_says_since_the_first_registration():
    state = opt_out_state(
        NODES,
        {
            "health": out(MONDAY, ("OptOutRegistered", MONDAY)),
            "social-care": out(TUESDAY, ("OptOutRegistered", TUESDAY)),
        },
        [],
    )
    assert (state.is_opted_out, state.is_partly, state.action) == (True, False, "remove")
    assert state.since == datetime(2026, 11, 23, 9, tzinfo=UTC)
    assert state.history == (
        OptOutLine(datetime(2026, 11, 24, 10, 30, tzinfo=UTC), "Social care", "You opted out"),
        OptOutLine(datetime(2026, 11, 23, 9, tzinfo=UTC), "Hospital", "You opted out"),
    )


def test_nowhere_offers_registering():
    state = opt_out_state(NODES, {"health": NOT_OUT, "social-care": NOT_OUT}, [])
    assert (state.is_opted_out, state.is_partly, state.action) == (False, False, "register")
    assert (state.opted_out_at, state.since) == ((), None)
    assert state.not_at == ("Hospital", "Social care")


def test_recorded_at_one_node_only_offers_registering_to_complete_it():
    state = opt_out_state(
        NODES, {"health": out(MONDAY, ("OptOutRegistered", MONDAY)), "social-care": NOT_OUT}, []
    )
    assert (state.is_opted_out, state.is_partly, state.action) == (False, True, "register")
    assert (state.opted_out_at, state.not_at) == (("Hospital",), ("Social care",))


def test_a_silent_node_never_lets_the_page_say_you_are_out_or_offer_removal():
    state = opt_out_state(NODES, {"health": out(MONDAY, ("OptOutRegistered", MONDAY))}, [CARE])
    assert (state.is_opted_out, state.is_partly, state.action) == (False, True, "register")
    assert state.unknown_at == ("Social care",)


def test_a_removal_is_in_the_history_in_words():
    state = opt_out_state(
        [HEALTH],
        {
            "health": {
                "optedOut": False,
                "since": None,
                "history": [
                    {"action": "OptOutRegistered", "at": MONDAY},
                    {"action": "OptOutRemoved", "at": TUESDAY},
                ],
            }
        },
        [],
    )
    assert [line.what for line in state.history] == ["You removed your opt-out", "You opted out"]


def test_the_confirmation_names_every_organisation_and_says_from_when():
    words = opt_out_confirmation("register", ["Hospital", "Social care", "Housing"])
    assert words == {
        "heading": "You have opted out of research and planning",
        "effect": "This applies from the next time anyone asks for data at every organisation "
        "in the data trust that holds your records: Hospital, Social care and Housing. Each "
        "checks your choice every time it answers, so from now on their answers for research "
        "and planning will not include your records. It does not change your care.",
    }
    removed = opt_out_confirmation("remove", ["Hospital"])
    assert removed["heading"] == "You have removed your opt-out from research and planning"
    assert (
        "at every organisation in the data trust that holds your records: Hospital."
        in (removed["effect"])
    )
