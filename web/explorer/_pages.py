"""Rendering explorer pages on the portal's layout (``base.html``), with the explorer's menu."""

from __future__ import annotations

from typing import Any

from starlette.responses import HTMLResponse

from datatrust.web._pages import ERRORS, Pages

__all__ = ["PREFIX", "ExplorerPages"]

PREFIX = "/explorer"
SERVICE_NAME = "Explore the trust's data"
TRUST_NAME = "the data trust"
MENU = (
    ("query", "/", "Ask a question"),
    ("ide", "/ide", "GraphQL IDE"),
)
EXPLORER_ERRORS = {
    **ERRORS,
    403: ("You cannot do that", ["The form expired or was not sent from this service."]),
    500: ("Sorry, there is a problem with the service", ["Try again later."]),
}


class ExplorerPages:
    def __init__(self) -> None:
        self.pages = Pages(service_name=SERVICE_NAME, trust_name=TRUST_NAME)

    def render(
        self,
        template: str,
        *,
        csrf_token: str,
        signed_in: bool,
        current: str | None = None,
        status: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        navigation = [
            {"href": PREFIX + href, "text": text, "current": current == key}
            for key, href, text in MENU
            if signed_in
        ]
        values.setdefault("error_summary", [])
        html = self.pages.env.get_template(template).render(
            **self.pages.common,
            csrf_token=csrf_token,
            signed_in=signed_in,
            navigation=navigation,
            home_href=PREFIX + "/",
            sign_in_href=PREFIX + "/sign-in",
            sign_out_href=PREFIX + "/sign-out",
            prefix=PREFIX,
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def error(
        self,
        status: int,
        *,
        csrf_token: str,
        signed_in: bool,
        heading: str | None = None,
        paragraphs: list[str] | None = None,
    ) -> HTMLResponse:
        default_heading, default_paragraphs = EXPLORER_ERRORS.get(status, EXPLORER_ERRORS[500])
        return self.render(
            "error.html",
            status=status,
            csrf_token=csrf_token,
            signed_in=signed_in,
            heading=heading or default_heading,
            paragraphs=paragraphs or default_paragraphs,
        )
