"""Every protocol through the chain: Modbus, serial ASCII, VISA/SCPI and OPC UA instruments, each
behind its real simulator, read by an agent process, exactly once in a strict store, with units;
and each instrument's identification (and OPC UA units) in the gateway's catalogue."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from core.config_loader import load_config
from drivers.registry import DRIVERS
from edge_agent.config import AgentConfig
from tests.support.chain import AGENT, Chain, stored_in_victoria, wait_for_count
from tests.support.services import Mosquitto, VictoriaMetrics

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = {
    "modbus": ("config/modbus-tcp.yaml", "chiller-1"),
    "serial_ascii": ("config/serial-ascii-thp.yaml", "room-a-thp"),
    "visa": ("config/agent-visa.yaml", "counter-rb"),
    "opcua": ("config/agent-opcua.yaml", "chamber-1"),
}


def example_instrument(protocol: str) -> Any:
    path, name = EXAMPLES[protocol]
    config = load_config(REPO / path, AgentConfig)
    [instrument] = [i for i in config.instruments if i.name == name]
    fast = [c.model_copy(update={"interval_s": 0.5}) for c in instrument.channels]
    return instrument.model_copy(update={"channels": fast})


def run_chain(chain: Chain, victoria: VictoriaMetrics) -> tuple[dict[str, int], Any]:
    chain.start()
    time.sleep(6)
    metrics = chain.stop_agent()
    stored = wait_for_count(lambda: stored_in_victoria(victoria), metrics["readings_read"])
    assert chain.gateway.stop() == 0
    return metrics, stored


async def test_all_protocols_arrive_exactly_once_with_units_and_identity(
    tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics
) -> None:
    store = {"kind": "influxdb_v2", "url": victoria.url, "bucket": "b", "org": "o"}
    worker = ThreadPoolExecutor(max_workers=1)
    async with contextlib.AsyncExitStack() as stack:
        instruments = [
            await stack.enter_async_context(DRIVERS[p].simulate(example_instrument(p)))
            for p in EXAMPLES
        ]
        chain = Chain(
            tmp_path,
            mosquitto,
            store,
            instruments=[i.model_dump(mode="json", exclude_none=True) for i in instruments],
        )
        try:
            # The simulators serve on this loop while the chain runs in processes.
            metrics, stored = await asyncio.get_running_loop().run_in_executor(
                worker, run_chain, chain, victoria
            )
        finally:
            chain.close()
            worker.shutdown()
    assert metrics["readings_bad"] == 0, (tmp_path / "agent.log").read_text()[-3000:]
    assert stored.count == stored.distinct == metrics["readings_read"]
    per_instrument: dict[str, set[tuple[str, str]]] = {}
    for instrument, channel, unit, _ in stored.samples:
        per_instrument.setdefault(instrument, set()).add((channel, unit))
    for instrument in instruments:
        seen = per_instrument[instrument.name]
        assert {c for c, _ in seen} == {c.name for c in instrument.channels}
        assert all(unit for _, unit in seen), seen  # every reading carries its unit
    assert ("rb-frequency", "Hz") in per_instrument["counter-rb"]
    db = sqlite3.connect(tmp_path / "gateway" / "records.db")
    identities = {
        name: json.loads(identity)
        for name, identity in db.execute(
            "SELECT instrument, identity FROM channels WHERE agent=?", (AGENT,)
        )
    }
    catalogue_units = dict(
        db.execute(
            "SELECT channel, unit FROM channels WHERE agent=? AND instrument=?",
            (AGENT, "chamber-1"),
        )
    )
    db.close()
    # The OPC UA channels' config gives no unit: the nodes' EngineeringUnits, read at connect,
    # reached the catalogue of the birth message.
    assert catalogue_units == {"temperature": "°C", "humidity": "%rh", "pressure": "hPa"}
    # *IDN? of the SCPI counter, known only after it connected, reached the catalogue.
    assert identities["counter-rb"]["manufacturer"] == "ETALON-SIM"
    assert identities["counter-rb"].get("serial")
