"""LoRaWAN network servers pushing uplinks to a node over HTTP: TTS v3 webhooks, ChirpStack v4.

* ``POST /ingest/ttn``: a The Things Stack v3 webhook (JSON format, "Uplink message"
  enabled); the body is one ``up`` message, as on MQTT.
* ``POST /ingest/chirpstack?event=up``: ChirpStack v4's HTTP integration (JSON encoding)
  posts every event to one URL and names it in ``event``; events other than ``up`` are
  acknowledged and ignored.

Neither server signs its requests; both add the HTTP headers configured on the
integration to each one. So the node's shared secret goes in a header we name
(:data:`SECRET_HEADER`), compared in constant time; a missing or wrong one is a 401 and
nothing is read. A body that cannot be read is quarantined (its location is the route and
the request's content id) and answered 202 with a summary, never 500: a network server
retries a 5xx for ever, and the problem is the message, not the node. Only a store that is
down answers 503, so the server retries once it is back. Posting the same body twice
duplicates nothing: rows load on their natural keys and a quarantined body keeps one entry.
"""

from __future__ import annotations

import hmac
import json
import logging
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from datatrust.errors import DatatrustError, RecordError
from datatrust.ingest._messages import (
    CHIRPSTACK,
    THINGS_STACK,
    fresh_errors,
    message_id,
    read_message,
)
from datatrust.ingest._pipeline import load_items
from datatrust.ingest._pseudonymise import Pseudonymiser
from datatrust.trust import load_or_create_key

__all__ = ["SECRET_HEADER", "webhook_routes", "webhook_secret"]

logger = logging.getLogger("datatrust.ingest.webhooks")

SECRET_HEADER = "X-Datatrust-Webhook-Secret"  # noqa: S105 - a header name, not a secret
MAX_BODY_BYTES = 1024 * 1024
# The Things Stack sends these message types when a webhook enables them on one path.
_TTS_OTHER_MESSAGES = frozenset(
    {
        "join_accept",
        "downlink_ack",
        "downlink_nack",
        "downlink_sent",
        "downlink_failed",
        "downlink_queued",
        "downlink_queue_invalidated",
        "location_solved",
        "service_data",
    }
)


def webhook_secret(key_dir: Path) -> str:
    """The node's webhook secret, created (mode 0600) under ``key_dir`` at first use."""
    return load_or_create_key(key_dir / "webhook-secret").hex()


def webhook_routes(engine: Engine, pseudonymiser: Pseudonymiser, secret: str) -> list[Route]:
    """The ingest routes of a node whose store is ``engine``, guarded by ``secret``."""
    expected = secret.encode()

    async def ttn(request: Request) -> JSONResponse:
        return await _receive(request, THINGS_STACK, "/ingest/ttn")

    async def chirpstack(request: Request) -> JSONResponse:
        event = request.query_params.get("event")
        if event is None:
            return _error(
                400,
                "BAD_REQUEST",
                "no ?event= in the URL; point ChirpStack's HTTP integration at "
                "/ingest/chirpstack (it adds ?event=up itself)",
            )
        if event != "up":
            if not _is_authorised(request):
                return _unauthorised()
            return JSONResponse({"status": "ignored", "event": event}, 200)
        return await _receive(request, CHIRPSTACK, "/ingest/chirpstack?event=up")

    def _is_authorised(request: Request) -> bool:
        given = request.headers.get(SECRET_HEADER, "").encode()
        return hmac.compare_digest(given, expected)

    async def _receive(request: Request, format_name: str, route: str) -> JSONResponse:
        if not _is_authorised(request):
            return _unauthorised()
        body = await _body(request)
        if body is None:
            return _error(
                413,
                "PAYLOAD_TOO_LARGE",
                f"the body is over {MAX_BODY_BYTES} bytes; send one uplink",
            )
        request_id = message_id(route, body)
        try:
            summary = await run_in_threadpool(_load, format_name, route, request_id, body)
        except (DatatrustError, SQLAlchemyError) as error:
            logger.error("webhook %s request %s not stored: %s", route, request_id, type(error))
            return _error(
                503, "STORE_UNAVAILABLE", "the node's store cannot take data now; retry later"
            )
        status = 202 if summary["records_quarantined"] else 200
        logger.info(
            "webhook %s request %s: %s loaded, %s quarantined",
            route,
            request_id,
            summary["records_loaded"],
            summary["records_quarantined"],
        )
        return JSONResponse(summary, status)

    def _load(format_name: str, route: str, request_id: str, body: bytes) -> dict[str, object]:
        location = f"POST {route} request {request_id}"
        if format_name == THINGS_STACK and _is_other_tts_message(body):
            return _summary("ignored", request_id, 0, 0, 0)
        items = read_message(format_name, body, location)
        records = [item for item in items if not isinstance(item, RecordError)]
        errors = [item for item in items if isinstance(item, RecordError)]
        fresh = fresh_errors(engine, errors)
        report = load_items(
            engine,
            records + fresh,
            source=route,
            format_name=format_name,
            pseudonymiser=pseudonymiser,
        )
        return _summary(
            "loaded", request_id, report.records_loaded, len(errors), len(errors) - len(fresh)
        )

    return [
        Route("/ingest/ttn", ttn, methods=["POST"]),
        Route("/ingest/chirpstack", chirpstack, methods=["POST"]),
    ]


def _summary(
    status: str, request_id: str, loaded: int, quarantined: int, already: int
) -> dict[str, object]:
    return {
        "status": status,
        "request": request_id,
        "records_loaded": loaded,
        "records_quarantined": quarantined,
        "already_quarantined": already,
    }


def _is_other_tts_message(body: bytes) -> bool:
    """A TTS message that is not an uplink (a join, a downlink event): nothing to load."""
    try:
        message = json.loads(body)
    except ValueError:
        return False
    return (
        isinstance(message, dict)
        and "uplink_message" not in message
        and bool(_TTS_OTHER_MESSAGES & message.keys())
    )


async def _body(request: Request) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _unauthorised() -> JSONResponse:
    return _error(
        401,
        "WEBHOOK_SECRET_INVALID",
        f"missing or wrong {SECRET_HEADER} header; set it on the webhook (The Things Stack: "
        "Additional headers; ChirpStack: HTTP integration headers) to the node's "
        "keys/<node>/webhook-secret",
    )


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status)
