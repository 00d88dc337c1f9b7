"""A gateway that stops while browsers hold live streams open ends them cleanly (uvicorn would
otherwise wait for them, then cut them off)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from tests.support.lab import ROLE_TOKENS, Lab
from tests.support.services import Mosquitto


def test_stopping_the_gateway_ends_open_live_streams(tmp_path: Path, mosquitto: Mosquitto) -> None:
    store = {"kind": "sqlite", "path": str(tmp_path / "readings.db")}
    lab = Lab(tmp_path / "lab", mosquitto.port, store)
    lab.start()
    events: list[str] = []
    outcome: list[BaseException | None] = []
    connected = threading.Event()

    def listen() -> None:
        try:
            with httpx.stream(
                "GET",
                f"{lab.api_url}/api/v1/live",
                params={"access_token": ROLE_TOKENS["viewer"]},
                timeout=30,
            ) as stream:
                for line in stream.iter_lines():
                    if line.startswith("event: "):
                        events.append(line)
                        connected.set()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome.append(exc)

    listener = threading.Thread(target=listen, name="live-listener")
    listener.start()
    try:
        assert connected.wait(20), "no event arrived"
    finally:
        lab.stop()
        listener.join(30)
    assert not listener.is_alive()
    # The stream ended with its terminating chunk, not cut off mid-response.
    assert outcome == [None], outcome
    assert events[0] == "event: readings"
