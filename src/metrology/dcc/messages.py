"""What the DCC library says to a user, in English and Vietnamese.

A declared table in the catalogue's shape (``key -> {"en": ..., "vi": ...}``) for the
integrator to register with the i18n catalogue; :func:`text` renders one here without it.
Technical detail (a schema's message, a certificate's subject) is inserted as produced.
"""

from __future__ import annotations

from typing import Any

LANGUAGES = ("en", "vi")

MESSAGES: dict[str, dict[str, str]] = {
    "dcc.error": {"en": "DCC: {detail}", "vi": "DCC: {detail}"},
    "dcc.unsafe": {
        "en": "DCC refused before reading it: {detail}",
        "vi": "DCC bị từ chối trước khi đọc: {detail}",
    },
    "dcc.invalid": {
        "en": "not a valid DCC 3.1.2 document: {detail}",
        "vi": "không phải tài liệu DCC 3.1.2 hợp lệ: {detail}",
    },
    "dcc.unit": {
        "en": "unknown unit {unit!r}: {reason}",
        "vi": "đơn vị không xác định {unit!r}: {reason}",
    },
    "dcc.signature_error": {
        "en": "the DCC cannot be signed: {detail}",
        "vi": "không thể ký DCC: {detail}",
    },
    # signature verdicts (SignatureVerdict.code)
    "dcc.signature.valid": {
        "en": "signature valid: signed by {signer}",
        "vi": "chữ ký hợp lệ: do {signer} ký",
    },
    "dcc.signature.unsigned": {
        "en": "the DCC is not signed",
        "vi": "DCC không có chữ ký",
    },
    "dcc.signature.invalid": {
        "en": "signature INVALID: {reason}",
        "vi": "chữ ký KHÔNG hợp lệ: {reason}",
    },
    "dcc.signature.untrusted": {
        "en": "signature intact but not trusted: {reason}",
        "vi": "chữ ký nguyên vẹn nhưng không được tin cậy: {reason}",
    },
    "dcc.signature.expired": {
        "en": "signature intact but the signer's certificate is not valid on {checked_at}: "
        "{reason}",
        "vi": "chữ ký nguyên vẹn nhưng chứng thư của người ký không còn hiệu lực vào {checked_at}: "
        "{reason}",
    },
}


def text(key: str, lang: str = "en", **values: Any) -> str:
    """The message ``key`` in ``lang`` (English when the language is not known)."""
    texts = MESSAGES[key]
    template = texts.get(lang) or texts["en"]
    return template.format(**values)
