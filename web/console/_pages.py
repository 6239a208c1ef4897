"""Rendering console pages on the portal's layout (``base.html``), with the console's menu."""

from __future__ import annotations

from typing import Any

from starlette.responses import HTMLResponse

from datatrust.web._pages import ERRORS, Pages

__all__ = ["PREFIX", "ConsolePages", "error_summary"]

PREFIX = "/console"
SERVICE_NAME = "DPO console"
TRUST_NAME = "the data trust"
MENU = (
    ("overview", "/", "Agreements and drafts"),
    ("purposes", "/purposes", "Purpose register"),
    ("history", "/history", "History"),
    ("audit", "/audit", "Audit"),
)
CONSOLE_ERRORS = {
    **ERRORS,
    403: ("You cannot do that", ["The form expired or was not sent from this service."]),
    404: (
        "Page not found",
        [
            "If you typed the web address, check it is correct.",
            "You can only see your own organisation's agreements and drafts.",
        ],
    ),
    500: ("Sorry, there is a problem with the service", ["Try again later."]),
}


class ConsolePages:
    """Pages of the console: ``/console`` links, its menu, its sign-in and sign-out."""

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
        default_heading, default_paragraphs = CONSOLE_ERRORS.get(status, CONSOLE_ERRORS[500])
        return self.render(
            "error.html",
            status=status,
            csrf_token=csrf_token,
            signed_in=signed_in,
            heading=heading or default_heading,
            paragraphs=paragraphs or default_paragraphs,
        )


def error_summary(errors: dict[str, str]) -> list[dict[str, str]]:
    """The error summary's items: each error's text, linking to the input it belongs to."""
    return [{"target": key, "text": text} for key, text in errors.items()]
