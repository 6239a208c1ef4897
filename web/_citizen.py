"""The portal's "Who used your data" (``/uses``, ``/uses.csv``) and "Your data" (``/data``).

Both ask every consent node's ``/consent`` API for the signed-in citizen, with the
citizen's own access token over the portal's mutual TLS (the same client as "Your
choices"); nothing in a URL or form names the person, so no identifier a visitor changes
can reach anyone else: the node takes the person from the token and Polar lets them read
only their own. A node that does not answer is named on the page and the others are shown.

The council's node is not asked: it serves no consent API and its resolvers return areas
only (aggregates), so its ledger never records a person as a subject; the gateway keeps no
subjects either. Lawful bases and purpose titles come from the trust's published
documents in the portal's data directory (those the nodes decide with), per the policy
version each use names.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from datatrust.web._consent_api import ConsentApiError, ConsentNode
from datatrust.web._uses import Documents, Use, filter_uses, use_rows, uses_csv
from datatrust.web._your_data import AgencyRecords, agency_records

if TYPE_CHECKING:
    from datatrust.web._app import _Portal

__all__ = ["DATA_USES", "MY_RECORDS", "data_page", "trust_documents", "uses_csv_file", "uses_page"]

logger = logging.getLogger("datatrust.web")

DATA_USES = (
    "{ dataUses { seq at node agency clientId purpose operation fields agreement "
    "policyVersion aggregate } }"
)
MY_RECORDS = "{ myRecords { kind count } }"
FILTERS = ("organisation", "purpose")


def trust_documents(data_dir) -> Documents:
    """Every published policy version's documents (and the shipped ones), by policy version."""
    from datatrust.policies._enforcement import shipped_policy
    from datatrust.policies.lifecycle import read_published, read_version, version_numbers

    shipped = shipped_policy()
    versions: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        shipped.policy_version: (shipped.register, shipped.agreements)
    }
    for number in version_numbers(data_dir):
        manifest, register, agreements = read_version(data_dir, number)
        versions[manifest.policy_version] = (register, agreements)
    published = read_published(data_dir)
    current = published.policy_version if published else shipped.policy_version
    return Documents(versions, current)


def _agency_names(portal: _Portal) -> dict[str, str]:
    from datatrust._demo_trust import DEMO_NODES

    names = {node.node_id: node.agency for node in DEMO_NODES}
    names.update({node.id: node.name for node in portal.nodes.values()})
    return names


def _organisation(agency: str, names: dict[str, str]) -> str:
    return names.get(agency) or agency.replace("-", " ").capitalize()


async def _ask(
    portal: _Portal, access_token: str, query: str
) -> tuple[dict[str, Any], list[ConsentNode]]:
    """Each consent node's ``data`` for ``query`` (by node id), and the nodes that failed."""

    async def one(node: ConsentNode) -> tuple[ConsentNode, dict[str, Any] | None]:
        try:
            # The same mutual-TLS client and error handling as the consent calls.
            return node, await portal.consent._call(node, access_token, query, {})
        except ConsentApiError as error:
            logger.warning("%s at %s failed: %s", query.split()[1], node.id, error.message)
            return node, None

    answers = await asyncio.gather(*(one(n) for n in portal.nodes.values()))
    data = {node.id: answer for node, answer in answers if answer is not None}
    failed = [node for node, answer in answers if answer is None]
    return data, failed


async def _uses(portal: _Portal, access_token: str) -> tuple[list[Use], list[ConsentNode]]:
    data, failed = await _ask(portal, access_token, DATA_USES)
    documents = await run_in_threadpool(trust_documents, portal.settings.data_dir)
    names = {a: _organisation(a, _agency_names(portal)) for a in _all_agencies(data)}
    rows = use_rows(
        {node_id: answer.get("dataUses") or [] for node_id, answer in data.items()},
        {node.id: node.name for node in portal.nodes.values()},
        names,
        documents,
    )
    return rows, failed


def _all_agencies(data: dict[str, Any]) -> set[str]:
    return {str(u.get("agency") or "") for a in data.values() for u in a.get("dataUses") or []}


def _filters(request: Request) -> dict[str, str]:
    """The page's two filters (other query parameters are ignored: none names a person)."""
    return {name: request.query_params.get(name, "").strip() for name in FILTERS}


def _options(rows: list[Use]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    organisations = sorted({(r.agency, r.organisation) for r in rows}, key=lambda o: o[1])
    purposes = sorted({(r.purpose, r.purpose_title) for r in rows}, key=lambda p: p[1])
    return organisations, purposes


def _filter_errors(
    filters: dict[str, str], organisations: list[tuple[str, str]], purposes: list[tuple[str, str]]
) -> dict[str, str]:
    errors = {}
    if filters["organisation"] and filters["organisation"] not in dict(organisations):
        errors["organisation"] = "Select an organisation from the list"
    if filters["purpose"] and filters["purpose"] not in dict(purposes):
        errors["purpose"] = "Select a purpose from the list"
    return errors


@dataclass(frozen=True, slots=True)
class _AskedUses:
    """What ``/uses`` and ``/uses.csv`` both show: the citizen's uses under the filters."""

    session: Any
    person_name: str | None
    rows: list[Use]
    failed: list[ConsentNode]
    filters: dict[str, str]
    organisations: list[tuple[str, str]]
    purposes: list[tuple[str, str]]
    errors: dict[str, str]
    shown: list[Use]


async def _asked_uses(portal: _Portal, request: Request) -> _AskedUses | Response:
    """The signed-in citizen's uses, filtered as the query asks; else a sign-in redirect."""
    session = portal.sessions.load(request)
    tokens = await portal.citizen(session)
    if tokens is None:
        return portal.redirect(session, "/sign-in?next=/uses")
    rows, failed = await _uses(portal, tokens.access_token)
    filters = _filters(request)
    organisations, purposes = _options(rows)
    errors = _filter_errors(filters, organisations, purposes)
    shown = (
        []
        if errors
        else filter_uses(rows, agency=filters["organisation"], purpose=filters["purpose"])
    )
    return _AskedUses(
        session, tokens.name, rows, failed, filters, organisations, purposes, errors, shown
    )


def uses_page(portal: _Portal) -> Callable[[Request], Any]:
    """GET ``/uses``: the citizen's uses, newest first, filtered by organisation and purpose."""

    async def endpoint(request: Request) -> Response:
        asked = await _asked_uses(portal, request)
        if isinstance(asked, Response):
            return asked
        filters, errors = asked.filters, asked.errors
        query = "" if errors else urlencode({k: v for k, v in filters.items() if v})
        response = portal.page(
            request,
            asked.session,
            "uses.html",
            signed_in=True,
            nav_here="/uses",
            person_name=asked.person_name,
            uses=asked.shown,
            total=len(asked.rows),
            failed=asked.failed,
            filters=filters,
            organisations=asked.organisations,
            purposes=asked.purposes,
            csv_href="/uses.csv" + (f"?{query}" if query else ""),
            errors=errors,
            error_summary=[{"target": key, "text": text} for key, text in errors.items()],
        )
        response.status_code = 400 if errors else 200
        return response

    return endpoint


def uses_csv_file(portal: _Portal) -> Callable[[Request], Any]:
    """GET ``/uses.csv``: the same rows as ``/uses`` with the same filters, as a download."""

    async def endpoint(request: Request) -> Response:
        asked = await _asked_uses(portal, request)
        if isinstance(asked, Response):
            return asked
        if asked.errors:
            return portal.redirect(asked.session, "/uses")
        headers = {"Content-Disposition": 'attachment; filename="who-used-your-data.csv"'}
        if asked.failed:  # say so in the file's response too: the download is incomplete
            headers["X-Datatrust-Missing"] = ", ".join(node.id for node in asked.failed)
        response = Response(
            uses_csv(asked.shown), media_type="text/csv; charset=utf-8", headers=headers
        )
        portal.sessions.save(response, asked.session)
        return response

    return endpoint


def data_page(portal: _Portal) -> Callable[[Request], Any]:
    """GET ``/data``: which organisations hold records about the citizen, counted by kind."""

    async def endpoint(request: Request) -> Response:
        session = portal.sessions.load(request)
        tokens = await portal.citizen(session)
        if tokens is None:
            return portal.redirect(session, "/sign-in?next=/data")
        data, failed = await _ask(portal, tokens.access_token, MY_RECORDS)
        agencies: list[AgencyRecords] = []
        for node in portal.nodes.values():
            if node.id in data:
                agencies.append(agency_records(node.id, node.name, data[node.id]["myRecords"]))
            else:
                agencies.append(AgencyRecords(node.id, node.name, (), "it did not answer"))
        return portal.page(
            request,
            session,
            "your_data.html",
            signed_in=True,
            nav_here="/data",
            person_name=tokens.name,
            agencies=agencies,
            failed=failed,
        )

    return endpoint
