"""The console's audit pages: chain status per node, a search of the agency's decisions, CSV.

``/audit`` shows each ledger's chain check (as ``datatrust audit verify``) and the decisions
the DPO's agency's node made, filtered by requester, purpose, outcome and date;
``/audit.csv`` exports what the same filters find.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from datatrust.policies import Requester
from datatrust.web._session import Session
from datatrust.web.console import _audit_search as audit
from datatrust.web.console._context import Console
from datatrust.web.console._pages import PREFIX, error_summary

__all__ = ["AUDIT_ROWS_SHOWN", "audit_routes"]

AUDIT_ROWS_SHOWN = 200


def audit_routes(console: Console) -> list[Route]:
    """The audit routes, for the console's application."""

    @console.signed_in
    async def audit_page(request: Request, session: Session, actor: Requester) -> Response:
        from datatrust._audit_cli import verify_ledgers

        titles = console.purposes()
        filters, errors = audit.read_filters(request.query_params, titles)
        rows = (
            []
            if errors
            else await run_in_threadpool(
                audit.search_audit, console.data_dir, actor.agency, filters
            )
        )
        checks = await run_in_threadpool(verify_ledgers, console.data_dir)
        return console.page(
            session,
            "console/audit.html",
            status=400 if errors else 200,
            current="audit",
            actor=actor,
            filters=filters,
            purposes=titles,
            rows=rows[:AUDIT_ROWS_SHOWN],
            total=len(rows),
            checks=checks,
            searched=bool(request.query_params),
            errors=errors,
            error_summary=error_summary(errors),
        )

    @console.signed_in
    async def audit_export(request: Request, session: Session, actor: Requester) -> Response:
        filters, errors = audit.read_filters(request.query_params, console.purposes())
        if errors:
            return console.redirect(session, f"{PREFIX}/audit?{filters.query()}")
        rows = await run_in_threadpool(audit.search_audit, console.data_dir, actor.agency, filters)
        response = Response(
            audit.audit_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="audit-{actor.agency}.csv"'},
        )
        console.sessions.save(response, session)
        return response

    return [Route("/audit", audit_page), Route("/audit.csv", audit_export)]
