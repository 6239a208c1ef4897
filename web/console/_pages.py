"""Rendering console pages on the portal's layout (``base.html``), with the console's menu."""

from __future__ import annotations

from datatrust.web._pages import ERRORS, PrefixedPages

__all__ = ["PREFIX", "console_pages", "error_summary"]

PREFIX = "/console"
SERVICE_NAME = "DPO console"
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


def console_pages() -> PrefixedPages:
    """This page set's pages on the portal's layout."""
    return PrefixedPages(prefix=PREFIX, service_name=SERVICE_NAME, menu=MENU, errors=CONSOLE_ERRORS)


def error_summary(errors: dict[str, str]) -> list[dict[str, str]]:
    """The error summary's items: each error's text, linking to the input it belongs to."""
    return [{"target": key, "text": text} for key, text in errors.items()]
