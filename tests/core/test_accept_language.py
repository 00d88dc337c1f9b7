"""The language an HTTP request asks for by ``Accept-Language``, one reading for the gateway's
API and the hub's pages."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from core.i18n import accepted_language
from gateway.api.problems import request_language
from hub.api.html import LANG_COOKIE, lang_of


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("vi-VN,vi;q=0.9,en-US;q=0.8,en;q=0.7", "vi"),  # a Vietnamese browser
        ("en-US,en;q=0.9,vi;q=0.8", "en"),
        ("fr-FR, vi;q=0.9", "vi"),  # the first one it has, not the first one sent
        ("fr-FR,fr;q=0.9,en;q=0.8,vi;q=0.85", "vi"),  # by weight, not by place
        ("en;q=0.5, vi;q=0.5", "en"),  # a tie: the earlier
        ("EN-gb", "en"),
        ("vi;q=0", None),  # q=0 means "not this one"
        ("vi;q=high", None),  # a weight that is no number is refused
        ("", None),
        (",,;;", None),
        ("de, fr, *", None),
        ("x;q=1," * 500 + "vi", "vi"),
    ],
)
def test_accepted_language_ranks_by_weight(header: str, expected: str | None) -> None:
    """Weights rank; unknown, refused and malformed parts are passed over."""
    assert accepted_language(header) == expected


def request(headers: dict[str, str], query: str = "") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": raw,
        "query_string": query.encode(),
    }
    return Request(scope)


@pytest.mark.parametrize("reader", [request_language, lang_of])
def test_api_and_hub_pages_read_the_header_alike(reader: object) -> None:
    """A browser that prefers a language neither speaks, then Vietnamese, gets Vietnamese from the
    gateway's API and the hub's pages alike (the hub read only the header's first two letters)."""
    assert callable(reader)
    assert reader(request({"Accept-Language": "fr-FR,fr;q=0.9,vi;q=0.8"})) == "vi"
    assert reader(request({"Accept-Language": "vi;q=0.2, en"})) == "en"
    assert reader(request({"Accept-Language": "vi"}, "lang=en")) == "en"
    assert reader(request({})) == "en"


def test_hub_cookie_outranks_the_browser() -> None:
    """The language chosen on the hub's pages (its cookie) outranks the browser's."""
    assert lang_of(request({"Accept-Language": "vi", "Cookie": f"{LANG_COOKIE}=en"})) == "en"
    assert lang_of(request({"Accept-Language": "en", "Cookie": f"{LANG_COOKIE}=vi"})) == "vi"
