"""A ``next`` parameter keeps people on this site: anything else lands on the start page."""

from __future__ import annotations

import pytest

from datatrust.web import safe_next


@pytest.mark.parametrize(
    "value",
    ["/", "/choices", "/choices?tab=history", "/choices#agency-health", "/a/b%2Fc"],
)
def test_a_path_on_this_site_is_kept(value):
    assert safe_next(value) == value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "https://evil.example/",
        "http://evil.example/choices",
        "//evil.example/choices",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "javascript:alert(1)",
        "choices",
        "evil.example/choices",
        "/" + "a" * 2001,
    ],
)
def test_anything_naming_another_host_or_not_a_path_goes_to_the_start_page(value):
    assert safe_next(value) == "/"
