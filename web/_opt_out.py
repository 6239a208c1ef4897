"""The portal's research-and-planning opt-out (``/choices/opt-out``): see it, register, remove.

The opt-out is held at every consent node (each applies it in its own row filter, beside
the NHS national data opt-out list it loads), so one action here is one call per node with
the citizen's own token: ``registerOptOut`` or ``removeOptOut`` at each node's ``/consent``
API. Those take no argument naming a person; the node takes them from the token, and Polar
lets only that person act, so nothing a visitor changes in a URL or form can reach anyone
else. Both calls are idempotent, so a retry after one node failed finishes the job without
doubling anyone's history. The page state (pure, :func:`opt_out_state`) says where the
opt-out is in force; where it is only partly recorded, the one action offered completes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from datatrust.web._consent_api import ConsentApiError, ConsentNode
from datatrust.web._csrf import BadForm, read_form

if TYPE_CHECKING:
    from datatrust.web._app import _Portal
    from datatrust.web._session import Session
    from datatrust.web._signin import TokenSet

__all__ = [
    "OPT_OUT_PATH",
    "OptOutLine",
    "OptOutState",
    "opt_out_confirmation",
    "opt_out_endpoint",
    "opt_out_state",
]

logger = logging.getLogger("datatrust.web")

OPT_OUT_PATH = "/choices/opt-out"
READ = "{ optOut { optedOut since history { action at } } }"
CALLS = {
    "register": "mutation { registerOptOut { optedOut changed } }",
    "remove": "mutation { removeOptOut { optedOut changed } }",
}
FORM_FIELDS = frozenset({"action"})
ACTION_ID = "opt-out-action"
WHAT = {"OptOutRegistered": "You opted out", "OptOutRemoved": "You removed your opt-out"}


@dataclass(frozen=True)
class OptOutLine:
    at: datetime
    organisation: str
    what: str


@dataclass(frozen=True)
class OptOutState:
    """What the page shows: where the opt-out is in force, the one action, the history."""

    opted_out_at: tuple[str, ...]  # organisation names, in the portal's order
    not_at: tuple[str, ...]
    unknown_at: tuple[str, ...]  # nodes that did not answer
    since: datetime | None
    action: str  # "register" or "remove"
    history: tuple[OptOutLine, ...]  # newest first

    @property
    def is_opted_out(self) -> bool:
        return bool(self.opted_out_at) and not self.not_at and not self.unknown_at

    @property
    def is_partly(self) -> bool:
        return bool(self.opted_out_at) and bool(self.not_at or self.unknown_at)


def opt_out_state(
    nodes: list[ConsentNode], answers: dict[str, dict[str, Any]], failed: list[ConsentNode]
) -> OptOutState:
    """The page state from each node's ``optOut`` answer (by node id) and the silent nodes.

    Removing is offered only where the opt-out is in force at every node that answered and
    none was silent; otherwise the action is to register it (at the nodes missing it), so
    an unknown answer never leads a citizen to think they are out when they are not.
    """
    at = [n for n in nodes if n.id in answers and answers[n.id].get("optedOut") is True]
    not_at = [n for n in nodes if n.id in answers and answers[n.id].get("optedOut") is not True]
    sinces = [datetime.fromisoformat(answers[n.id]["since"]) for n in at if answers[n.id]["since"]]
    lines = [
        OptOutLine(
            at=datetime.fromisoformat(change["at"]),
            organisation=n.name,
            what=WHAT.get(change["action"], change["action"]),
        )
        for n in nodes
        if n.id in answers
        for change in answers[n.id].get("history") or ()
    ]
    state = OptOutState(
        opted_out_at=tuple(n.name for n in at),
        not_at=tuple(n.name for n in not_at),
        unknown_at=tuple(n.name for n in failed),
        since=min(sinces) if sinces else None,
        action="register",
        history=tuple(sorted(lines, key=lambda line: line.at, reverse=True)),
    )
    return replace(state, action="remove") if state.is_opted_out else state


def _names(names: list[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def opt_out_confirmation(action: str, organisations: list[str]) -> dict[str, str]:
    """The success banner's words: what changed, where, and from when it applies."""
    where = _names(organisations)
    if action == "register":
        return {
            "heading": "You have opted out of research and planning",
            "effect": f"This applies from the next time anyone asks for data at every "
            f"organisation in the data trust that holds your records: {where}. Each checks "
            "your choice every time it answers, so from now on their answers for research "
            "and planning will not include your records. It does not change your care.",
        }
    return {
        "heading": "You have removed your opt-out from research and planning",
        "effect": f"This applies from the next time anyone asks for data at every "
        f"organisation in the data trust that holds your records: {where}. From now on "
        "their answers for research may include your records again where you have given "
        "your consent. A national data opt-out you registered with the NHS still applies.",
    }


async def _each(
    portal: _Portal, tokens: TokenSet, query: str
) -> tuple[dict[str, dict[str, Any]], list[ConsentNode]]:
    """Each consent node's answer to ``query`` (by node id, at the query's one field)."""
    field = query.split("{", 2)[1].split()[0]

    async def one(node: ConsentNode) -> tuple[ConsentNode, dict[str, Any] | None]:
        try:
            # The portal's mutual-TLS client and error handling, as "Your choices" uses.
            data = await portal.consent._call(node, tokens.access_token, query, {})
        except ConsentApiError as error:
            logger.warning("%s at %s failed: %s", field, node.id, error.message)
            return node, None
        return node, data.get(field)

    answers = await asyncio.gather(*(one(n) for n in portal.nodes.values()))
    done = {node.id: answer for node, answer in answers if isinstance(answer, dict)}
    return done, [node for node, answer in answers if not isinstance(answer, dict)]


def opt_out_endpoint(portal: _Portal) -> Callable[[Request], Any]:
    """GET shows the citizen's opt-out; POST (CSRF-checked) registers or removes it."""

    async def page(
        request: Request,
        session: Session,
        tokens: TokenSet,
        *,
        done: dict | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        answers, failed = await _each(portal, tokens, READ)
        nodes = list(portal.nodes.values())
        response = portal.page(
            request,
            session,
            "opt_out.html",
            signed_in=True,
            current="choices",
            person_name=tokens.name,
            state=opt_out_state(nodes, answers, failed),
            organisation_names=[n.name for n in nodes],
            done=done,
            errors={ACTION_ID: error} if error else {},
            error_summary=[{"target": ACTION_ID, "text": error}] if error else [],
        )
        response.status_code = status
        return response

    async def change(request: Request, session: Session) -> Response:
        form = await read_form(request, session)
        tokens = await portal.citizen(session)
        if tokens is None:
            return portal.redirect(session, f"/sign-in?next={OPT_OUT_PATH}")
        extra = sorted(set(form) - FORM_FIELDS)
        if extra:
            raise BadForm(f"the form has fields this page never sends: {', '.join(extra)}")
        action = form.get("action", "")
        if action not in CALLS:
            raise BadForm("the form names an action this page does not offer")
        answers, failed = await _each(portal, tokens, CALLS[action])
        if failed:
            recorded = [n.name for n in portal.nodes.values() if n.id in answers]
            verb = "recorded" if action == "register" else "removed"
            text = f"Your opt-out could not be {verb} at {_names([n.name for n in failed])} "
            text += "just now. Try again later."
            if recorded:
                text += f" It has been {verb} at {_names(recorded)}."
            return await page(request, session, tokens, error=text, status=502)
        names = [n.name for n in portal.nodes.values()]
        session.set("opt_out_done", opt_out_confirmation(action, names))
        return portal.redirect(session, OPT_OUT_PATH)

    async def endpoint(request: Request) -> Response:
        session = portal.sessions.load(request)
        if request.method == "POST":
            return await change(request, session)
        tokens = await portal.citizen(session)
        if tokens is None:
            return portal.redirect(session, f"/sign-in?next={OPT_OUT_PATH}")
        return await page(request, session, tokens, done=session.pop("opt_out_done"))

    return endpoint
