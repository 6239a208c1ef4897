"""Rendering pages: the Jinja2 environment, shared page values and the error pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

__all__ = ["ERRORS", "Pages", "PrefixedPages", "format_when"]

try:
    _LONDON: Any = ZoneInfo("Europe/London")
except ZoneInfoNotFoundError:  # no tz database on this machine: say UTC honestly
    _LONDON = UTC

ERRORS = {
    400: ("There is a problem with that request", ["The page sent something it should not."]),
    403: (
        "You cannot do that",
        [
            "The form expired or was not sent from this service. Go back, reload the page "
            "and try again."
        ],
    ),
    404: (
        "Page not found",
        [
            "If you typed the web address, check it is correct.",
            "If you pasted the web address, check you copied the entire address.",
        ],
    ),
    405: ("There is a problem with that request", ["That page cannot be used like that."]),
    500: (
        "Sorry, there is a problem with the service",
        ["Try again later. Your choices have not changed unless this service told you so."],
    ),
    502: (
        "Sorry, there is a problem with the service",
        ["A part of the data trust did not answer. Try again later."],
    ),
}
"""Each error page's heading and paragraphs, in GOV.UK's words where it has them."""


def format_when(value: datetime) -> str:
    """GOV.UK style: '26 November 2026 at 2:05pm' (UK time)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(_LONDON)
    hour = local.hour % 12 or 12
    suffix = "am" if local.hour < 12 else "pm"
    return f"{local.day} {local:%B %Y} at {hour}:{local:%M}{suffix}"


class Pages:
    def __init__(self, *, service_name: str, trust_name: str) -> None:
        self.env = Environment(
            loader=PackageLoader("datatrust.web", "templates"),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
        )
        self.env.filters["when"] = format_when
        self.common = {"service_name": service_name, "trust_name": trust_name}

    def render(
        self,
        template: str,
        *,
        status: int = 200,
        csrf_token: str,
        signed_in: bool,
        current: str | None = None,
        **values: Any,
    ) -> HTMLResponse:
        navigation = [{"href": "/", "text": "Start", "current": current == "start"}]
        if signed_in:
            navigation.append(
                {"href": "/choices", "text": "Your choices", "current": current == "choices"}
            )
        values.setdefault("error_summary", [])
        html = self.env.get_template(template).render(
            **self.common,
            csrf_token=csrf_token,
            signed_in=signed_in,
            navigation=navigation,
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def error(
        self,
        status: int,
        *,
        csrf_token: str,
        signed_in: bool,
        paragraphs: list[str] | None = None,
        heading: str | None = None,
    ) -> HTMLResponse:
        default_heading, default_paragraphs = ERRORS.get(status, ERRORS[500])
        return self.render(
            "error.html",
            status=status,
            csrf_token=csrf_token,
            signed_in=signed_in,
            heading=heading or default_heading,
            paragraphs=paragraphs or default_paragraphs,
        )


class PrefixedPages:
    """Pages of a page set mounted under ``prefix`` (the DPO console, the explorer) on the
    portal's layout: their own menu, home, sign-in and sign-out links, and error wording."""

    def __init__(
        self,
        *,
        prefix: str,
        service_name: str,
        menu: tuple[tuple[str, str, str], ...],
        errors: dict[int, tuple[str, list[str]]],
        trust_name: str = "the data trust",
    ) -> None:
        self.prefix = prefix
        self.menu = menu
        self.errors = errors
        self.pages = Pages(service_name=service_name, trust_name=trust_name)

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
            {"href": self.prefix + href, "text": text, "current": current == key}
            for key, href, text in self.menu
            if signed_in
        ]
        values.setdefault("error_summary", [])
        html = self.pages.env.get_template(template).render(
            **self.pages.common,
            csrf_token=csrf_token,
            signed_in=signed_in,
            navigation=navigation,
            home_href=self.prefix + "/",
            sign_in_href=self.prefix + "/sign-in",
            sign_out_href=self.prefix + "/sign-out",
            prefix=self.prefix,
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
        default_heading, default_paragraphs = self.errors.get(status, self.errors[500])
        return self.render(
            "error.html",
            status=status,
            csrf_token=csrf_token,
            signed_in=signed_in,
            heading=heading or default_heading,
            paragraphs=paragraphs or default_paragraphs,
        )
