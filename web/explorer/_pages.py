"""Rendering explorer pages on the portal's layout (``base.html``), with the explorer's menu."""

from __future__ import annotations

from datatrust.web._pages import ERRORS, PrefixedPages

__all__ = ["PREFIX", "explorer_pages"]

PREFIX = "/explorer"
SERVICE_NAME = "Explore the trust's data"
MENU = (
    ("query", "/", "Ask a question"),
    ("ide", "/ide", "GraphQL IDE"),
)
EXPLORER_ERRORS = {
    **ERRORS,
    403: ("You cannot do that", ["The form expired or was not sent from this service."]),
    500: ("Sorry, there is a problem with the service", ["Try again later."]),
}


def explorer_pages() -> PrefixedPages:
    """This page set's pages on the portal's layout."""
    return PrefixedPages(
        prefix=PREFIX, service_name=SERVICE_NAME, menu=MENU, errors=EXPLORER_ERRORS
    )
