"""The read side of the API against a running lab: every endpoint for every role, what each
answers, bad input refused with a 4xx and a reason, exports, live values, the dashboard's files."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from importlib import resources
from typing import Any

import httpx
import pytest

from tests.app.test_vietnamese import english_vocabulary, english_words
from tests.gateway.web.conftest import bearer
from tests.support.lab import AGENT, ROLE_TOKENS, SITE, Lab

VOLTAGE = f"/api/v1/channels/{SITE}/{AGENT}/zener-10v/voltage"
READ_ENDPOINTS = [
    "/api/v1/me",
    "/api/v1/metrics",
    "/api/v1/agents",
    f"/api/v1/agents/{SITE}/{AGENT}",
    "/api/v1/instruments",
    "/api/v1/channels",
    VOLTAGE,
    f"{VOLTAGE}/history",
    "/api/v1/readings/latest",
    "/api/v1/audit",
]


@pytest.fixture(scope="module")
def http(lab: Lab) -> Iterator[httpx.Client]:
    """A client of the lab's API, once its channels have readings."""
    with httpx.Client(base_url=lab.api_url, timeout=20) as client:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            rows = client.get("/api/v1/channels", headers=bearer("viewer")).json()
            if sum(1 for c in rows if c["latest"]) >= 7 and any(
                c["instrument"] == "thermo-b" and c["latest"]["quality"] == "bad" for c in rows
            ):
                break
            time.sleep(0.2)
        yield client


@pytest.mark.parametrize("path", READ_ENDPOINTS)
def test_every_read_endpoint_takes_every_role_and_refuses_strangers(
    http: httpx.Client, path: str
) -> None:
    for role in ROLE_TOKENS:
        answer = http.get(path, headers=bearer(role))
        assert answer.status_code == 200, (role, answer.text)
    anonymous = http.get(path)
    assert anonymous.status_code == 401
    assert anonymous.json()["detail"].startswith("a token is required")
    assert http.get(path, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    # Writing to a read endpoint is refused too (no anonymous or accidental writes).
    assert http.post(path, headers=bearer("admin")).status_code == 405


def test_me_names_the_token_and_its_role(http: httpx.Client) -> None:
    for role, name in (
        ("viewer", "wall-screen"),
        ("operator", "nguyen"),
        ("admin", "quality-manager"),
    ):
        me = http.get("/api/v1/me", headers=bearer(role)).json()
        assert me == {"name": name, "role": role, "site": SITE, "gateway": "gw-1"}


def channels(http: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    answer = http.get("/api/v1/channels", params=params, headers=bearer("viewer"))
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()
    return rows


def test_channels_carry_catalogue_latest_reading_limits_and_status(http: httpx.Client) -> None:
    rows = {(c["instrument"], c["channel"]): c for c in channels(http)}
    assert set(rows) == {
        ("zener-10v", "voltage"),
        ("zener-10v", "temperature"),
        ("room-a", "temperature"),
        ("room-a", "humidity"),
        ("room-a", "pressure"),
        ("resistor-10k", "resistance"),
        ("dmm-spare", "voltage"),
        ("thermo-b", "temperature"),
    }
    voltage = rows[("zener-10v", "voltage")]
    assert voltage["unit"] == "V" and voltage["interval_s"] == 0.2
    assert voltage["tags"] == {"standard": "Z10-01"} and voltage["room"] is None
    assert voltage["latest"]["value"] == pytest.approx(10.0, abs=1e-3)
    assert voltage["latest"]["u"] == 5e-7 and voltage["status"] == "ok"
    assert voltage["latest"]["ts_ns"] > time.time_ns() - 10_000_000_000
    room = rows[("room-a", "temperature")]
    assert room["room"] == "A" and room["limits"] == {"low": 22.0, "high": 24.0}
    assert room["status"] in ("ok", "out_of_limits")
    assert rows[("room-a", "pressure")]["limits"] is None
    spare = rows[("dmm-spare", "voltage")]
    assert spare["status"] == "unavailable" and spare["latest"] is None
    assert spare["instrument_state"] == "unavailable"


def test_channel_filters(http: httpx.Client) -> None:
    assert {c["channel"] for c in channels(http, room="A")} == {
        "temperature",
        "humidity",
        "pressure",
    }
    [tagged] = channels(http, tag="standard=Z10-01")
    assert tagged["channel"] == "voltage"
    assert [c["instrument"] for c in channels(http, status="unavailable")] == ["dmm-spare"]
    assert len(channels(http, instrument="room-a")) == 3
    assert channels(http, site="elsewhere") == []
    assert len(channels(http, agent=AGENT, instrument="zener-10v", channel="voltage")) == 1


def test_one_channel_one_agent_instruments(http: httpx.Client) -> None:
    voltage = http.get(VOLTAGE, headers=bearer("viewer")).json()
    assert voltage["channel"] == "voltage" and voltage["protocol"] == "sim"
    agent = http.get(f"/api/v1/agents/{SITE}/{AGENT}", headers=bearer("viewer")).json()
    assert agent["state"] == "online" and isinstance(agent["clock"], dict)
    states = {i["instrument"]: i["state"] for i in agent["instruments"]}
    assert states == {
        "zener-10v": "connected",
        "room-a": "connected",
        "resistor-10k": "connected",
        "dmm-spare": "unavailable",
        "thermo-b": "connected",
    }
    unavailable = http.get(
        "/api/v1/instruments", params={"state": "unavailable"}, headers=bearer("viewer")
    ).json()
    assert [i["instrument"] for i in unavailable] == ["dmm-spare"]
    assert "connection refused" in unavailable[0]["reason"]
    assert unavailable[0]["identity"]["model"] == "sim-zener"


def test_latest_readings(http: httpx.Client) -> None:
    latest = http.get(
        "/api/v1/readings/latest", params={"instrument": "room-a"}, headers=bearer("viewer")
    ).json()
    assert {r["channel"] for r in latest} == {"temperature", "humidity", "pressure"}
    assert all(r["quality"] == "good" and r["site"] == SITE for r in latest)
    everything = http.get("/api/v1/readings/latest", headers=bearer("viewer")).json()
    assert len(everything) == 7  # every channel but the unreachable one
    bad = [r for r in everything if r["instrument"] == "thermo-b"]
    assert bad and bad[0]["unit"] == "°C"


def test_history_raw_and_downsampled(http: httpx.Client) -> None:
    raw = http.get(f"{VOLTAGE}/history", headers=bearer("viewer")).json()
    assert raw["store"] == "influxql" and raw["unit"] == "V"
    assert not raw["downsampled"] and raw["span_ns"] == 0
    stamps = [p["ts_ns"] for p in raw["points"]]
    assert len(stamps) >= 10 and stamps == sorted(stamps)
    assert all(
        p["value"] == pytest.approx(10.0, abs=1e-3) and p["count"] == 1 for p in raw["points"]
    )
    assert all(raw["start_ns"] <= s < raw["end_ns"] for s in stamps)
    small = http.get(
        f"{VOLTAGE}/history", params={"max_points": 3}, headers=bearer("viewer")
    ).json()
    assert small["downsampled"] and 1 <= len(small["points"]) <= 3
    assert small["span_ns"] == 1_200_000_000_000  # one hour in three buckets
    assert sum(p["count"] for p in small["points"]) >= len(stamps)
    window = http.get(
        f"{VOLTAGE}/history",
        params={"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00+07:00"},
        headers=bearer("viewer"),
    ).json()
    assert window["points"] == []
    assert window["start_ns"] == 1_577_836_800_000_000_000
    assert window["end_ns"] == 1_577_898_000_000_000_000


BAD_REQUESTS = [
        (
            f"{VOLTAGE}/history",
            {"start": "2026-01-02", "end": "2026-01-01"},
            422,
            "start must be before end",
        ),
        (f"{VOLTAGE}/history", {"start": "yesterday"}, 422, "start"),
        (f"{VOLTAGE}/history", {"start": "1900-01-01T00:00:00Z"}, 422, "outside 1970"),
        (f"{VOLTAGE}/history", {"end": "9999-12-31T23:59:59Z"}, 422, "outside 1970"),
        (f"{VOLTAGE}/history", {"max_points": 1}, 422, "max_points"),
        (f"{VOLTAGE}/history", {"max_points": "lots"}, 422, "max_points"),
        (f"{VOLTAGE}/history", {"format": "xml"}, 422, "format"),
        (f"/api/v1/channels/{SITE}/{AGENT}/zener-10v/nope/history", {}, 404, "unknown channel"),
        (f"/api/v1/channels/{SITE}/{AGENT}/zener-10v/nope", {}, 404, "unknown channel"),
        (f"/api/v1/channels/{SITE}/{AGENT}/zener 10v/voltage", {}, 422, "instrument"),
        (f"/api/v1/agents/{SITE}/ghost", {}, 404, "unknown agent"),
        ("/api/v1/channels", {"status": "sleepy"}, 422, "status"),
        ("/api/v1/channels", {"tag": "no-equals-sign"}, 422, "tag"),
        ("/api/v1/channels", {"site": "bad/site"}, 422, "site"),
        ("/api/v1/instruments", {"state": "asleep"}, 422, "state"),
        ("/api/v1/audit", {"limit": 0}, 422, "limit"),
        ("/api/v1/audit", {"before_id": 2**64}, 422, "before_id"),
        ("/api/v1/audit", {"order": "sideways"}, 422, "order"),
        ("/api/v1/live", {"interval_ms": 5}, 422, "interval_ms"),
]  # fmt: skip
"""Requests a client gets wrong, the status and a word of the reason the API answers."""


@pytest.mark.parametrize(("path", "params", "status", "reason"), BAD_REQUESTS)
def test_bad_requests_get_a_4xx_with_a_reason(
    http: httpx.Client, path: str, params: dict[str, Any], status: int, reason: str
) -> None:
    answer = http.get(path, params=params, headers=bearer("viewer"))
    assert answer.status_code == status, answer.text
    assert reason in json.dumps(answer.json()["detail"])


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        *[(path, params, status) for path, params, status, _ in BAD_REQUESTS],
        ("/api/v1/audit", {}, 401),  # no token
        ("/api/v1/nowhere", {}, 404),
        ("/api/v1/standards/NOPE", {}, 404),
    ],
)
def test_a_refusal_speaks_the_language_the_request_asks_for(
    http: httpx.Client, path: str, params: dict[str, Any], status: int
) -> None:
    """Accept-Language: vi (or ?lang=vi) gets every reason in Vietnamese; a request that asks
    for nothing gets English, as it always did."""
    token = bearer("viewer") if status != 401 else {}
    vocabulary = english_vocabulary()
    for headers, query in (
        ({"Accept-Language": "vi-VN,vi;q=0.9,en;q=0.5"}, {}),
        ({}, {"lang": "vi"}),
    ):
        answer = http.get(path, params={**params, **query}, headers={**token, **headers})
        assert answer.status_code == status, answer.text
        detail = answer.json()["detail"]
        reasons = [item["msg"] for item in detail] if isinstance(detail, list) else [detail]
        for text in reasons:
            assert english_words(text, vocabulary) == [], (path, params, text)
    english = http.get(path, params=params, headers=token).json()["detail"]
    if isinstance(english, str):
        assert english_words(english, vocabulary) != [] or status == 404, english


HOSTILE_LANGUAGES = [
    ({"Accept-Language": "vi;q=abc"}, {}),  # a weight that is no number: that language not taken
    ({"Accept-Language": "vi;q=0"}, {}),  # "not this one"
    ({"Accept-Language": "vi;q=nan, ;;, ,"}, {}),
    ({"Accept-Language": ", ".join(["*", "xx-YY;q=1.0", *["fr;q=0.5"] * 500])}, {}),
    ({"Accept-Language": "q=1;vi;en"}, {}),  # parts in the wrong order
    ({}, {"lang": "xx"}),
    ({}, {"lang": "vi" * 2000}),
]


@pytest.mark.parametrize(("headers", "query"), HOSTILE_LANGUAGES)
def test_a_language_asked_for_in_a_hostile_way_gets_english(
    http: httpx.Client, headers: dict[str, str], query: dict[str, str]
) -> None:
    """A malformed, refused, unknown or oversized language request is no failure of its own:
    the request is answered as if it asked for nothing (English, the same status)."""
    for path, status in (("/api/v1/standards/NOPE", 404), ("/api/v1/audit", 401)):
        token = bearer("viewer") if status != 401 else {}
        plain = http.get(path, headers=token)
        asked = http.get(path, params=query, headers={**token, **headers})
        assert (asked.status_code, asked.json()) == (status, plain.json()), asked.text


def test_audit_log_filters_and_pages(http: httpx.Client) -> None:
    entries = http.get("/api/v1/audit", headers=bearer("viewer")).json()
    actions = {e["action"] for e in entries}
    assert {"agent online", "instrument connected", "instrument unavailable"} <= actions
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids, reverse=True)
    [online] = http.get(
        "/api/v1/audit", params={"action": "agent online"}, headers=bearer("viewer")
    ).json()
    assert online["subject"] == f"{SITE}/{AGENT}" and online["actor"] == "gateway"
    assert online["details"]["version"]
    spare = http.get(
        "/api/v1/audit",
        params={"subject_prefix": f"{SITE}/{AGENT}/dmm", "order": "asc"},
        headers=bearer("viewer"),
    ).json()
    assert spare and all(e["subject"] == f"{SITE}/{AGENT}/dmm-spare" for e in spare)
    first, *_ = http.get(
        "/api/v1/audit", params={"limit": 2, "order": "asc"}, headers=bearer("viewer")
    ).json()
    older = http.get("/api/v1/audit", params={"before_id": ids[0]}, headers=bearer("viewer")).json()
    assert [e["id"] for e in older] == ids[1:]
    assert first["id"] == min(ids)
    future = http.get(
        "/api/v1/audit", params={"start": "2200-01-01T00:00:00Z"}, headers=bearer("viewer")
    ).json()
    assert future == []


def csv_rows(answer: httpx.Response) -> list[dict[str, str]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"].startswith("attachment; filename=")
    assert answer.content.startswith("\ufeff".encode())  # spreadsheets read UTF-8 right
    return list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))


@pytest.mark.parametrize(
    ("path", "columns"),
    [
        ("/api/v1/agents", {"site", "agent", "state", "since_utc", "since_ns"}),
        ("/api/v1/instruments", {"instrument", "state", "since_utc", "identity"}),
        ("/api/v1/channels", {"channel", "status", "latest.value", "latest.ts_utc", "limits.low"}),
        ("/api/v1/readings/latest", {"channel", "value", "ts_utc", "quality"}),
        (f"{VOLTAGE}/history", {"ts_utc", "ts_ns", "value", "min", "max", "count"}),
        ("/api/v1/audit", {"id", "ts_utc", "actor", "action", "subject", "details"}),
        (
            "/api/v1/standards",
            {"id", "kind", "tolerance", "due_date", "evaluated_utc", "summary.reference"},
        ),
        (
            "/api/v1/standards/Z10-01/certificates",
            {
                "number",
                "issuer",
                "calibration_date",
                "value",
                "expanded_uncertainty",
                "file.sha256",
            },
        ),
        (
            "/api/v1/standards/Z10-01/drift/history",
            {"ts_utc", "measured", "reference", "predicted_out_of_tolerance_utc", "violations"},
        ),
    ],
)
def test_every_list_exports_as_csv(http: httpx.Client, path: str, columns: set[str]) -> None:
    as_json = http.get(path, headers=bearer("viewer")).json()
    rows = csv_rows(http.get(path, params={"format": "csv"}, headers=bearer("viewer")))
    assert columns <= set(rows[0])
    expected = len(as_json["points"]) if isinstance(as_json, dict) else len(as_json)
    assert abs(len(rows) - expected) <= 2  # live data moves between the two requests
    for row in rows:
        for name, value in row.items():
            if name.endswith("_utc") and value:
                assert value.endswith("Z") and value[:2] in ("19", "20"), (name, value)


def test_a_standards_record_exports_with_full_precision(http: httpx.Client) -> None:
    """What a quality manager takes to an audit: the certificates exactly as registered."""
    path = "/api/v1/standards/Z10-01/certificates"
    certificates = http.get(path, headers=bearer("viewer")).json()
    rows = csv_rows(http.get(path, params={"format": "csv"}, headers=bearer("viewer")))
    assert [r["number"] for r in rows] == [c["number"] for c in certificates]
    for row, certificate in zip(rows, certificates, strict=True):
        assert float(row["value"]) == certificate["value"]  # every digit
        assert float(row["expanded_uncertainty"]) == certificate["expanded_uncertainty"]
        assert json.loads(row["traceable_to"]) == certificate["traceable_to"]


def test_csv_keeps_vietnamese_text_and_full_precision(http: httpx.Client) -> None:
    rows = csv_rows(
        http.get(
            "/api/v1/channels", params={"format": "csv", "room": "A"}, headers=bearer("viewer")
        )
    )
    temperature = next(r for r in rows if r["channel"] == "temperature")
    assert temperature["unit"] == "°C"
    assert float(temperature["latest.value"]) == pytest.approx(23, abs=2)
    assert json.loads(temperature["tags"]) == {"room": "A"}


def read_events(
    http: httpx.Client, params: dict[str, Any], wanted: int, timeout_s: float = 10
) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    with http.stream("GET", "/api/v1/live", params=params) as stream:
        assert stream.status_code == 200, stream.read()
        assert stream.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind or "message", json.loads(line[6:])))
                if len(events) >= wanted or time.monotonic() > deadline:
                    break
    return events


def test_live_stream_sends_a_snapshot_then_changes(http: httpx.Client) -> None:
    token = ROLE_TOKENS["viewer"]
    events = read_events(http, {"access_token": token, "instrument": "zener-10v"}, wanted=4)
    kinds = {kind for kind, _ in events}
    assert kinds == {"readings"}
    snapshot = events[0][1]
    assert {r["channel"] for r in snapshot} == {"voltage", "temperature"}
    voltages = [r for _, batch in events[1:] for r in batch if r["channel"] == "voltage"]
    assert voltages, events
    assert voltages[-1]["ts_ns"] > next(r for r in snapshot if r["channel"] == "voltage")["ts_ns"]
    assert all(r["instrument"] == "zener-10v" for _, batch in events for r in batch)
    refused = http.get("/api/v1/live", params={"access_token": "wrong-token-0123456789"})
    assert refused.status_code == 401
    assert http.get("/api/v1/live").status_code == 401


def test_dashboard_files_come_from_the_package(http: httpx.Client) -> None:
    redirect = http.get("/")
    assert redirect.status_code == 307 and redirect.headers["location"] == "/ui/"
    index = http.get("/ui/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in index.headers["content-security-policy"]
    assert "overview.js" in index.text
    for name in (
        "app.js",
        "i18n.js",
        "overview.js",
        "channel.js",
        "standard.js",
        "alerts.js",
        "audit.js",
        "style.css",
        "channel.html",
        "standard.html",
        "alerts.html",
        "audit.html",
    ):
        answer = http.get(f"/ui/{name}")
        assert answer.status_code == 200, name
        cached = http.get(f"/ui/{name}", headers={"If-None-Match": answer.headers["etag"]})
        assert cached.status_code == 304
    plotly = http.get("/ui/vendor/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert plotly.status_code == 200 and plotly.headers["content-encoding"] == "gzip"
    shipped = resources.files("plotly").joinpath("package_data", "plotly.min.js").read_bytes()
    assert plotly.content == shipped  # httpx decoded the gzip
    raw = http.get("/ui/vendor/plotly.min.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers and raw.content == shipped
    for bad in ("/ui/nope.js", "/ui/..%2Fapi%2Fauth.py", "/ui/app.py", "/ui/Index.html"):
        assert http.get(bad).status_code == 404, bad


def test_openapi_documents_every_read_endpoint_and_csv(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/api/v1/me",
        "/api/v1/instruments",
        "/api/v1/channels",
        "/api/v1/channels/{site}/{agent}/{instrument}/{channel}",
        "/api/v1/channels/{site}/{agent}/{instrument}/{channel}/history",
        "/api/v1/readings/latest",
        "/api/v1/live",
        "/api/v1/audit",
        "/api/v1/agents/{site}/{agent}",
    ):
        assert path in paths, path
    history = paths["/api/v1/channels/{site}/{agent}/{instrument}/{channel}/history"]["get"]
    assert "text/csv" in history["responses"]["200"]["content"]
    assert {"401", "403", "404", "422", "503"} <= set(history["responses"])
    assert not any(p.startswith("/ui") for p in paths)
    # FastAPI's own documentation pages load scripts from a CDN: they are off.
    assert http.get("/docs").status_code == 404
    assert http.get("/redoc").status_code == 404
