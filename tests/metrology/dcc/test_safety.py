"""Hostile input: every way an XML document attacks its reader is refused with a reason, before
the schema, and nothing is read from disk or the network on its behalf."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from metrology import dcc
from metrology.dcc.safexml import parse_xml
from tests.metrology.dcc import samples

# Every entry point that reads a document from outside.
READERS: dict[str, Callable[[bytes], object]] = {
    "validate": dcc.validate,
    "parse": dcc.parse,
    "verify": lambda data: dcc.verify(data, anchors=[]),
}


class _Counter(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        body = b'<!ENTITY secret "from the network">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on loopback that counts requests (none must come)."""
    _Counter.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    thread = threading.Thread(target=server.serve_forever, name="dcc-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Counter.hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize("reader", sorted(READERS))
def test_external_entity_reading_a_local_file_is_refused(reader: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-KEY")
    document = (
        f'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "{secret.as_uri()}">]>\n<r>&x;</r>'
    ).encode()
    with pytest.raises(dcc.DccUnsafe, match=r"DOCTYPE declaration .* is refused") as caught:
        READERS[reader](document)
    assert "TOP-SECRET-KEY" not in str(caught.value)


@pytest.mark.parametrize("reader", sorted(READERS))
def test_entity_expansion_bomb_is_refused_quickly(reader: str) -> None:
    entities = "".join(
        f'<!ENTITY e{i} "{("&e" + str(i - 1) + ";") * 10 if i else "lol"}">' for i in range(10)
    )
    document = f'<?xml version="1.0"?>\n<!DOCTYPE r [{entities}]>\n<r>&e9;</r>'.encode()
    started = time.monotonic()
    with pytest.raises(dcc.DccUnsafe, match="refused"):
        READERS[reader](document)
    # 10^9 expansions would take minutes and gigabytes; refusing takes milliseconds
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("reader", sorted(READERS))
def test_external_dtd_and_parameter_entities_fetch_nothing(
    reader: str, http_server: tuple[str, list[str]]
) -> None:
    url, hits = http_server
    for document in (
        f'<?xml version="1.0"?><!DOCTYPE r SYSTEM "{url}/x.dtd"><r/>'.encode(),
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;]><r/>'.encode(),
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "{url}/x">]><r>&x;</r>'.encode(),
    ):
        with pytest.raises(dcc.DccUnsafe, match="refused"):
            READERS[reader](document)
    assert hits == []


def test_the_http_server_would_count_a_fetch(http_server: tuple[str, list[str]]) -> None:
    import urllib.request

    url, hits = http_server
    with urllib.request.urlopen(f"{url}/probe", timeout=5) as answer:
        answer.read()
    assert hits == ["/probe"]


@pytest.mark.parametrize("reader", sorted(READERS))
def test_too_large_is_refused_before_parsing(reader: str) -> None:
    document = dcc.build(samples.single())
    limit = len(document) - 1
    entry = {
        "validate": lambda: dcc.validate(document, max_bytes=limit),
        "parse": lambda: dcc.parse(document, max_bytes=limit),
        "verify": lambda: dcc.verify(document, anchors=[], max_bytes=limit),
    }[reader]
    with pytest.raises(dcc.DccUnsafe, match=f"more than the limit of {limit} bytes"):
        entry()


def test_the_default_limit_refuses_a_flood() -> None:
    flood = b"<r>" + b" " * dcc.MAX_DCC_BYTES + b"</r>"
    with pytest.raises(dcc.DccUnsafe, match="more than the limit"):
        dcc.validate(flood)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"%PDF-1.7 binary", "not well-formed XML"),
        (b"<dcc:digitalCalibrationCertificate", "not well-formed XML"),
        (b"<a><b></a>", "not well-formed XML"),
        (b"\xff\xfe<\x00r\x00", "not well-formed XML"),
        ("<r>\u0000</r>".encode(), "not well-formed XML"),
    ],
)
def test_garbage_is_refused_with_a_reason(document: bytes, reason: str) -> None:
    with pytest.raises(dcc.DccUnsafe, match=reason):
        dcc.parse(document)


def test_not_bytes_is_refused() -> None:
    with pytest.raises(dcc.DccUnsafe, match="expected the document's bytes, got str"):
        parse_xml("<r/>")  # type: ignore[arg-type]


def test_deep_nesting_is_refused_by_the_parser_limits() -> None:
    document = b"<r>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</r>"
    with pytest.raises(dcc.DccUnsafe, match="not well-formed XML"):
        dcc.parse(document)


def test_refusals_read_in_vietnamese_too() -> None:
    with pytest.raises(dcc.DccUnsafe) as caught:
        dcc.parse(b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "x.dtd"><r/>')
    assert caught.value.message("vi").startswith("DCC bị từ chối trước khi đọc")
