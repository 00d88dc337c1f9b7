"""A protocol fault a link meets reaches the agent's ``protocol_faults`` self-metric."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from drivers.faults import PROTOCOL_FAULTS, protocol_faults
from drivers.visa import hislip_link, serial_link, vxi11_link
from drivers.visa.link import LinkError
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from tests.drivers.visa.conftest import visa_config
from tests.drivers.visa.loop_transports import TRANSPORTS, Start, serving
from tests.support.chain import AGENT, SITE, sim_instruments

HOSTILE = {"hislip": "bad_header", "serial": "flood", "vxi11": "wrong_xid"}
"""A reply each protocol's link must count as a fault (not a timeout, not a closed link); the
serial one is 2 MiB without a newline."""


def test_every_link_counts_its_faults_where_the_agent_sums_them() -> None:
    assert PROTOCOL_FAULTS["HiSLIP"] is hislip_link.FAULTS
    assert PROTOCOL_FAULTS["VXI-11"] is vxi11_link.FAULTS
    assert PROTOCOL_FAULTS["serial"] is serial_link.FAULTS


def _agent(tmp_path: Path) -> Agent:
    """An agent of the chain tests' simulated instruments (its metrics message is looked at)."""
    spool = {"path": str(tmp_path / "spool.db")}
    config = {"site": SITE, "id": AGENT, "mqtt": {"port": 1883}, "spool": spool}
    return Agent(AgentConfig.model_validate({**config, "instruments": sim_instruments()}))


def _reported(agent: Agent) -> int:
    return int(orjson.loads(agent.metrics_payload())["metrics"]["protocol_faults"])


@pytest.mark.parametrize("transport", sorted(HOSTILE))
async def test_a_hostile_reply_is_counted_in_the_agents_self_metrics(
    transport: str, scpi_sim: Start, tmp_path: Path
) -> None:
    way = TRANSPORTS[transport]
    sim = await serving(scpi_sim, **way.sim_options)("longscale-dmm")
    agent = _agent(tmp_path)
    before = _reported(agent)
    assert before == protocol_faults()
    link = await way.open(visa_config(way.resource(sim), "longscale-dmm"))
    try:
        assert await link.query("*IDN?")  # a good exchange is no fault
        assert _reported(agent) == before
        way.spoil_next_reply(sim, HOSTILE[transport])
        with pytest.raises(LinkError):
            await link.query("*IDN?")
    finally:
        link.close()
    assert _reported(agent) == before + 1
