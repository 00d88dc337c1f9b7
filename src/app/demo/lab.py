"""What the demo adds to its gateway so every page of the dashboard has something true to show:
the API (read-only, anonymous, loopback), alert rules a calibration lab would keep, and the
simulated reference standards registered with certificates that agree with their models."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

from drivers.sim.models import ResistorParams, ZenerParams, build_model
from gateway.alerts.config import AlertsConfig
from gateway.config import ApiConfig
from gateway.records.chain import LedgerSettings
from gateway.records.config import RecordsConfig
from gateway.records.store import RecordStore
from gateway.standards.config import certificates_path
from gateway.standards.models import CertificateSpec, StandardSpec
from gateway.standards.registry import Registry

DEFAULT_PORT = 8080
YEAR_NS = int(365.25 * 86_400 * 1e9)
CERTIFICATE_AGES_YEARS = (2.5, 1.5, 0.5)
"""Yearly calibrations; the last one half a year ago, so the next is due in six months."""


@dataclass(frozen=True)
class Kind:
    """How a simulated standard is registered: its kind, the certificate's relative expanded
    uncertainty and the lab's tolerance, both in µ(unit)/(unit)."""

    kind: str
    quantity: str
    nominal_field: str
    relative_u_ppm: float
    tolerance: str


KINDS: dict[type, Kind] = {
    ZenerParams: Kind("dc_voltage", "voltage", "nominal_v", 0.4, "±2 µV/V"),
    ResistorParams: Kind("resistance", "resistance", "nominal_ohm", 0.5, "±5 ppm"),
}


def api_port(wanted: int | None) -> int:
    """``wanted`` (0: any free port); by default 8080, or any free port if 8080 is taken."""
    if wanted is not None:
        return wanted
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", DEFAULT_PORT))
        except OSError:
            return 0
    return DEFAULT_PORT


def demo_api(port: int) -> ApiConfig:
    """Read-only without a token, on loopback only: nobody else can reach it."""
    return ApiConfig(host="127.0.0.1", port=port, anonymous_read=True)


def demo_alerts(site: str) -> AlertsConfig:
    """The rules of a calibration lab: the room, silent or bad channels, lost communication,
    the standards' certificates, forecasts and calibration dates."""
    return AlertsConfig.model_validate(
        {
            "rules": [
                {
                    "id": "room-temperature",
                    "kind": "limits",
                    "preset": "calibration-room-temperature",
                    "channels": [f"{site}/*/*/temperature"],
                    "tags": {"room": "A"},
                },
                {
                    "id": "room-humidity",
                    "kind": "limits",
                    "preset": "calibration-room-humidity",
                    "channels": [f"{site}/*/*/humidity"],
                    "tags": {"room": "A"},
                },
                {"id": "silent-channels", "kind": "stale", "channels": [f"{site}/*/*/*"]},
                {"id": "bad-readings", "kind": "bad_quality", "channels": [f"{site}/*/*/*"]},
                {"id": "agents-offline", "kind": "agent_offline", "agents": [f"{site}/*"]},
                {
                    "id": "instruments-unavailable",
                    "kind": "instrument_unavailable",
                    "instruments": [f"{site}/*/*"],
                    "on_delay_s": 10,
                },
                {"id": "standards-certificate", "kind": "standard_certificate", "factor": 2},
                {"id": "standards-forecast", "kind": "standard_prediction", "within_days": 60},
                {"id": "calibrations", "kind": "calibration_due", "within_days": 30},
            ]
        }
    )


def demo_standards(
    instruments: list[Any], agent: str, now_ns: int | None = None
) -> list[tuple[StandardSpec, list[CertificateSpec]]]:
    """A standard for each simulated Zener or resistor channel tagged ``standard``, with yearly
    certificates whose values are the model's true value on the calibration day."""
    now = time.time_ns() if now_ns is None else now_ns
    out = []
    for instrument in instruments:
        params = getattr(instrument, "model", None)
        kind = KINDS.get(type(params))
        if kind is None or not isinstance(params, ZenerParams | ResistorParams):
            continue
        model = build_model(params)
        nominal: float = getattr(params, kind.nominal_field)
        for channel in instrument.channels:
            standard_id = channel.tags.get("standard")
            if standard_id is None or getattr(channel, "quantity", None) != kind.quantity:
                continue
            certificates = []
            for age in CERTIFICATE_AGES_YEARS:
                calibrated = now - int(age * YEAR_NS)
                certificates.append(
                    CertificateSpec.model_validate(
                        {
                            "number": f"DEMO-{standard_id}-{_date(calibrated)[:4]}",
                            "issuer": "VMI (demo)",
                            "calibration_date": _date(calibrated),
                            "due_date": _date(calibrated + YEAR_NS),
                            "value": model.true_value(kind.quantity, calibrated),
                            "expanded_uncertainty": nominal * kind.relative_u_ppm * 1e-6,
                            "coverage_factor": 2,
                            "traceable_to": [
                                {"lab": "VMI", "standard": "national standard", "national": True}
                            ],
                        }
                    )
                )
            spec = StandardSpec.model_validate(
                {
                    "id": standard_id,
                    "kind": kind.kind,
                    "description": f"{instrument.name} (simulated)",
                    "nominal": nominal,
                    "unit": channel.unit,
                    "owner_lab": "demo",
                    "tolerance": kind.tolerance,
                    "channels": [
                        {
                            "agent": agent,
                            "instrument": instrument.name,
                            "channel": channel.name,
                            "unit": channel.unit,
                        }
                    ],
                }
            )
            out.append((spec, certificates))
    return out


async def register_standards(
    records_config: RecordsConfig, site: str, gateway_id: str, instruments: list[Any], agent: str
) -> list[str]:
    """Register the demo's standards and their certificates (audited as ``demo``); those
    already there (a demo run again on the same data directory) are left as they are."""
    records_path = records_config.path
    records = RecordStore(
        records_path, LedgerSettings.of(records_config, site, gateway_id, sign_each_session=True)
    )
    await records.open()
    try:
        registry = Registry(records, certificates_path(None, records_path), site)
        known = {record.id for record in await registry.standards()}
        added = []
        for spec, certificates in demo_standards(instruments, agent):
            if spec.id in known:
                continue
            await registry.add_standard(spec, "demo")
            for certificate in certificates:
                await registry.add_certificate(spec.id, certificate, "demo")
            added.append(spec.id)
        return added
    finally:
        await records.close()


def _date(ts_ns: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts_ns / 1e9))
