"""The reference of a run, resolved once when the run starts and kept with it.

- A **reference meter**: its certificate's points (indication → correction, U, k), written in
  the procedure or read from a DCC file (validated against the XSD, its signature verified
  against the procedure's trust anchors when it is signed). At a point the correction is
  interpolated linearly between certificate points, with the uncertainty of the fully correlated
  bound (``metrology.correction``); one point gives one constant correction.
- A **registered standard**: fetched from the gateway's API (``GET /api/v1/standards/{id}`` and
  its latest evaluation ``…/drift``). When the evaluation's value in use comes from a drift fit
  of its certificates, the value on the run date is the fit's prediction there with the
  uncertainty of a new observation (what the standards service uses); otherwise the latest
  certificate's value with U/k, plus the declared drift per year if the procedure gives one.

The result (:class:`ResolvedReference`) is plain data stored with the run, so a resumed run uses
exactly the reference the run started with, without asking the gateway again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
from decimal import Decimal
from typing import Any, Literal

import httpx
from pydantic import Field

from calibration.procedure import (
    LoadedProcedure,
    MeterReference,
    StandardReference,
    certificate_expired,
)
from core.errors import ConfigError
from core.models import FrozenModel
from metrology.certificate.record import CertificateInfo, ReferenceInfo
from metrology.correction import CalibrationPoint, ChannelCalibration, build_correction
from metrology.limits import MAX_DCC_BYTES


class CorrectionPoint(FrozenModel):
    """One point of a meter's certificate, in the procedure's unit."""

    value: float
    correction: float
    expanded_uncertainty: float
    coverage_factor: float


class ResolvedReference(FrozenModel):
    """The reference as the run uses it (see the module doc)."""

    kind: Literal["meter", "standard"]
    name: str
    description: str
    unit: str
    certificate: CertificateInfo | None
    value_from: str
    drift_per_year: str | None = None
    notes: tuple[str, ...] = ()
    # a meter
    points: tuple[CorrectionPoint, ...] = ()
    # a standard
    value: float | None = None
    standard_uncertainty: float | None = None
    dof: float | None = Field(None, description="None: infinite.")
    from_fit: bool = False
    nominal: float | None = None

    def info(self) -> ReferenceInfo:
        """What the record says of it."""
        return ReferenceInfo.model_validate(self, from_attributes=True)

    def correction_at(self, x: float) -> tuple[float, float, bool]:
        """A meter's certificate correction at indication ``x``: (correction, its standard
        uncertainty, whether x lies within the certificate's points)."""
        if self.kind != "meter" or not self.points:
            raise ValueError("only a reference meter has certificate corrections")
        if len(self.points) == 1:
            point = self.points[0]
            u = point.expanded_uncertainty / point.coverage_factor
            return point.correction, u, math.isclose(x, point.value, rel_tol=0.05, abs_tol=1e-9)
        calibration = ChannelCalibration(
            channel=self.name,
            unit=self.unit,
            points=tuple(
                CalibrationPoint(
                    indication=p.value,
                    correction=p.correction,
                    expanded_uncertainty=p.expanded_uncertainty,
                    coverage_factor=p.coverage_factor,
                )
                for p in self.points
            ),
        )
        correction = build_correction(calibration)
        value, u = correction.correction_at(x)
        return value, u, correction.in_range(x)

    def years_since_calibration(self, on: dt.date) -> float:
        """Years from the certificate's calibration date to ``on`` (0 without a certificate)."""
        if self.certificate is None:
            return 0.0
        return max(0.0, (on - self.certificate.calibration_date).days / 365.25)


# -- a reference meter -----------------------------------------------------------------------------


def _certificate(
    number: str,
    issuer: str,
    calibration_date: dt.date,
    due_date: dt.date | None,
    on: dt.date,
    source: Literal["procedure", "dcc", "registry"],
    **dcc: str | None,
) -> CertificateInfo:
    """A reference's certificate as the record states it, expired or not on the run date
    ``on`` (``dcc``: the DCC's hash and signature)."""
    return CertificateInfo(
        number=number,
        issuer=issuer,
        calibration_date=calibration_date,
        due_date=due_date,
        expired=certificate_expired(due_date, on),
        source=source,
        **dcc,
    )


def _meter(
    reference: MeterReference,
    unit: str,
    certificate: CertificateInfo,
    value_from: str,
    points: tuple[CorrectionPoint, ...],
) -> ResolvedReference:
    return ResolvedReference(
        kind="meter",
        name=reference.instrument,
        description=reference.description,
        unit=unit,
        certificate=certificate,
        value_from=value_from,
        drift_per_year=reference.drift_per_year,
        points=points,
    )


def _meter_inline(reference: MeterReference, unit: str, on: dt.date) -> ResolvedReference:
    certificate = reference.certificate
    assert certificate is not None
    return _meter(
        reference,
        unit,
        _certificate(
            certificate.number,
            certificate.issuer,
            certificate.calibration_date,
            certificate.due_date,
            on,
            "procedure",
        ),
        "reading corrected by its certificate",
        tuple(CorrectionPoint.model_validate(p, from_attributes=True) for p in certificate.points),
    )


def _meter_dcc(
    loaded: LoadedProcedure, reference: MeterReference, unit: str, on: dt.date
) -> ResolvedReference:
    from metrology import dcc, units
    from metrology.errors import DccError, UnsupportedUnit

    assert reference.dcc is not None
    path = loaded.resolve(reference.dcc)
    where = loaded.where(("reference", "dcc"))
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_DCC_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{where}: cannot read {path}: {exc.strerror or exc}"]) from None
    try:
        certificate = dcc.parse(data)
    except DccError as exc:
        raise ConfigError([f"{where}: {path} is not a valid DCC: {exc}"]) from None
    signature_text = None
    verdict = None
    if reference.dcc_trust_anchors is not None:
        anchors_path = loaded.resolve(reference.dcc_trust_anchors)
        try:
            anchors = dcc.load_certificates(anchors_path.read_bytes())
        except (OSError, DccError) as exc:
            raise ConfigError(
                [f"{loaded.where(('reference', 'dcc_trust_anchors'))}: {exc}"]
            ) from None
        verdict = dcc.verify(data, anchors=anchors)
    else:
        verdict = dcc.verify(data, anchors=[])
    if verdict.status == "invalid":
        raise ConfigError([f"{where}: the DCC's signature is invalid: {verdict.reason}"])
    signer = verdict.signer.subject if verdict.signer is not None else None
    signature_text = f"DCC signature: {verdict.status}" + (f" ({signer})" if signer else "")
    target = units.symbol_to_dsi(unit)
    points: list[CorrectionPoint] = []
    for point in certificate.points():
        if "basic_measurementError" not in point.ref_types or point.value.uncertainty is None:
            continue
        indication = (
            point.condition("basic_measuredValue")
            or point.condition("basic_referenceValue")
            or point.condition("basic_nominalValue")
        )
        if indication is None:
            continue
        try:
            scale = units.scale_factor(point.value.unit, target)
            at_scale = units.scale_factor(indication.unit, target)
        except UnsupportedUnit as exc:
            raise ConfigError([f"{where}: {point.path}: {exc}"]) from None
        expanded = point.value.uncertainty
        points.append(
            CorrectionPoint(
                value=float(indication.decimal() * at_scale),
                correction=float(-point.value.decimal() * scale),
                expanded_uncertainty=float(Decimal(expanded.value) * scale),
                coverage_factor=float(expanded.coverage_factor),
            )
        )
    if not points:
        raise ConfigError(
            [
                f"{where}: {path} holds no measurement error with an uncertainty and an "
                "indication (refTypes basic_measurementError and basic_measuredValue)"
            ]
        )
    seen: dict[float, CorrectionPoint] = {}
    for p in points:
        seen.setdefault(p.value, p)
    digest = hashlib.sha256(data).hexdigest()
    return _meter(
        reference,
        unit,
        _certificate(
            certificate.unique_identifier,
            certificate.laboratory.name.get("en"),
            certificate.end_performance_date,
            certificate.recalibration_date,
            on,
            "dcc",
            dcc_sha256=digest,
            signature=signature_text,
        ),
        "reading corrected by its certificate (DCC)",
        tuple(sorted(seen.values(), key=lambda p: p.value)),
    )


# -- a registered standard ------------------------------------------------------------------------


class RegistryUnavailable(Exception):
    """The gateway's API could not be asked (offline, refused, timed out)."""


class RegistryAnswer(FrozenModel):
    """What the gateway said about a standard: its record and its latest evaluation."""

    standard: dict[str, Any]
    evaluation: dict[str, Any] | None


def fetch_standard(reference: StandardReference) -> RegistryAnswer | None:
    """The standard and its latest evaluation from the gateway; None when the registry has no
    such standard; raises RegistryUnavailable when the gateway cannot be asked."""
    headers = {"Accept": "application/json"}
    link = reference.gateway
    if link.token_env is not None:
        token = os.environ.get(link.token_env)
        if token is None:
            raise RegistryUnavailable(f"the environment variable {link.token_env} is not set")
        headers["Authorization"] = f"Bearer {token}"
    base = link.url.rstrip("/") + f"/api/v1/standards/{reference.id}"
    try:
        with httpx.Client(timeout=link.timeout_s, headers=headers, trust_env=False) as client:
            answer = client.get(base)
            if answer.status_code == 404:
                return None
            if answer.status_code != 200:
                raise RegistryUnavailable(f"GET {base}: HTTP {answer.status_code}")
            standard = answer.json()
            drift = client.get(base + "/drift")
            evaluation = drift.json() if drift.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        raise RegistryUnavailable(f"{link.url}: {type(exc).__name__}: {exc}") from None
    if not isinstance(standard, dict):
        raise RegistryUnavailable(f"GET {base}: not a standard")
    return RegistryAnswer(
        standard=standard, evaluation=evaluation if isinstance(evaluation, dict) else None
    )


def _days(moment: dt.datetime) -> float:
    return moment.timestamp() / 86_400.0


def _fit_prediction(fit: dict[str, Any], x: float) -> tuple[float, float, float | None]:
    """The drift fit at ``x`` (days since the epoch): value, standard uncertainty of a new
    observation, degrees of freedom (None: infinite)."""
    x0 = float(fit["x0"])
    coefficients = [float(c["value"]) for c in fit["coefficients"]]
    covariance = [[float(v) for v in row] for row in fit["covariance"]]
    d = x - x0
    g = [d**k for k in range(len(coefficients))]
    value = math.fsum(c * gk for c, gk in zip(coefficients, g, strict=True))
    variance = math.fsum(
        g[i] * covariance[i][j] * g[j] for i in range(len(g)) for j in range(len(g))
    )
    u_new = float(fit.get("u_new") or 0.0)
    u = math.sqrt(max(variance, 0.0) + u_new * u_new)
    dof = fit.get("dof")
    return value, u, None if dof is None else float(dof)


def resolve_standard(
    reference: StandardReference, answer: RegistryAnswer, unit: str, moment: dt.datetime
) -> ResolvedReference:
    """The standard's value in use at ``moment`` (see the module doc); raises ValueError when
    the registry's answer cannot give one."""
    standard = answer.standard
    if standard.get("unit") != unit:
        raise ValueError(
            f"standard {reference.id} is in {standard.get('unit')!r}, the UUT reads {unit!r}"
        )
    certificates = standard.get("certificates") or []
    if not certificates:
        raise ValueError(f"standard {reference.id} has no certificate in the registry")
    latest = max(certificates, key=lambda c: int(c["calibration_ns"]))
    on = moment.date()
    due = dt.date.fromisoformat(latest["due_date"][:10]) if latest.get("due_date") else None
    info = _certificate(
        str(latest["number"]),
        str(latest["issuer"]),
        dt.date.fromisoformat(str(latest["calibration_date"])[:10]),
        due,
        on,
        "registry",
    )
    description = str(standard.get("description") or f"Standard {reference.id}")

    def standard_at(**value: Any) -> ResolvedReference:
        return ResolvedReference(
            kind="standard",
            name=reference.id,
            description=description,
            unit=unit,
            certificate=info,
            **value,
        )

    evaluation = answer.evaluation or {}
    analysis = evaluation.get("certificates") or {}
    fit = ((analysis.get("drift") or {}).get("fit")) if analysis else None
    if analysis.get("reference_from") == "fit" and isinstance(fit, dict):
        value, u, dof = _fit_prediction(fit, _days(moment))
        count = len(certificates)
        return standard_at(
            value_from=f"drift fit of {count} certificates ({fit.get('model', 'fit')}), "
            f"predicted for {on.isoformat()}",
            value=value,
            standard_uncertainty=u,
            dof=dof,
            from_fit=True,
            nominal=float(standard.get("nominal", value)),
        )
    return standard_at(
        value_from=f"latest certificate {info.number}"
        + (" with the declared drift per year" if reference.drift_per_year else ""),
        drift_per_year=reference.drift_per_year,
        value=float(latest["value"]),
        standard_uncertainty=float(latest["expanded_uncertainty"])
        / float(latest["coverage_factor"]),
        dof=None,
        from_fit=False,
        nominal=float(standard.get("nominal", latest["value"])),
    )


def resolve(loaded: LoadedProcedure, moment: dt.datetime) -> ResolvedReference:
    """The procedure's reference on the run date; raises ConfigError naming the field."""
    procedure = loaded.procedure
    reference = procedure.reference
    unit = procedure.uut.unit
    on = moment.date()
    if isinstance(reference, MeterReference):
        if reference.certificate is not None:
            return _meter_inline(reference, unit, on)
        return _meter_dcc(loaded, reference, unit, on)
    where = loaded.where(("reference", "id"))
    try:
        answer = fetch_standard(reference)
    except RegistryUnavailable as exc:
        raise ConfigError([f"{where}: the registry cannot be asked: {exc}"]) from None
    if answer is None:
        raise ConfigError([f"{where}: the registry has no standard {reference.id!r}"])
    try:
        return resolve_standard(reference, answer, unit, moment)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError([f"{where}: {exc}"]) from None
