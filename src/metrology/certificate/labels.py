"""The words of a calibration report and of its DCC, in English and Vietnamese.

Contribution names in a run's budgets are stable keys (``repeatability``, ``uut_resolution``…);
:func:`contribution_label` prints them. Everything else a report prints is here or in
:data:`metrology.labels.LABELS` (decisions, distributions, budget columns). The texts are data
files beside this module: ``words.json`` and ``contributions.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.i18n import MessageTable, load_table, register
from metrology.labels import LABELS, Language

if TYPE_CHECKING:
    from metrology.certificate.record import CertificateInfo

CONTRIBUTIONS: MessageTable = load_table(__package__, "contributions.json")

WORDS: MessageTable = load_table(__package__, "words.json")


def word(key: str, language: Language = "en", **values: object) -> str:
    """A report word (or a decision/distribution/column label), filled with ``values``."""
    entry = WORDS.get(key) or CONTRIBUTIONS.get(key) or LABELS.get(key)
    text = key if entry is None else entry[language]
    return text.format(**values) if values else text


def certificate_line(certificate: CertificateInfo, language: Language = "en") -> str:
    """A reference's certificate in one line: number, issuer, calibration and due dates."""
    return word(
        "report.certificate.line",
        language,
        number=certificate.number,
        issuer=certificate.issuer,
        date=certificate.calibration_date.isoformat(),
        due=certificate.due_date.isoformat() if certificate.due_date else "—",
    )


def contribution_label(name: str, language: Language = "en") -> str:
    """The printed name of a budget row (a key of :data:`CONTRIBUTIONS`, else as given)."""
    entry = CONTRIBUTIONS.get(name)
    return name if entry is None else entry[language]


# The report's words join the one catalogue of what a user reads (budget rows under "budget.").
register(WORDS)
register({f"budget.{key}": texts for key, texts in CONTRIBUTIONS.items()})
