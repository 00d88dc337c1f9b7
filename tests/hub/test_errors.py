"""The hub's refusals (:mod:`hub.errors`): each is its core kind (the API's status is unchanged),
says the same English as before in ``str`` (the API's ``detail``), and has its Vietnamese in the
catalogue."""

from __future__ import annotations

import pytest

from core.errors import ConflictError, InvalidInputError, NotFoundError
from hub.errors import HubConflict, HubError, HubInvalid, HubNotFound
from hub.messages import HUB_MESSAGES


@pytest.mark.parametrize(
    ("error", "kind", "english", "vietnamese"),
    [
        (
            HubNotFound("hub.error.not_enrolled", lab="ghost"),
            NotFoundError,
            "lab ghost is not enrolled",
            "phòng thí nghiệm ghost chưa được đăng ký",
        ),
        (
            HubConflict("hub.error.withdrawn_already", id=7),
            ConflictError,
            "link 7 was withdrawn already",
            "liên kết 7 đã được rút lại từ trước",
        ),
        (
            HubInvalid("hub.error.lab_id", lab="bad lab!"),
            InvalidInputError,
            "'bad lab!' is not a lab id (letters, digits, . _ : -)",
            "'bad lab!' không phải mã phòng thí nghiệm (gồm chữ, số, . _ : -)",
        ),
        (
            HubInvalid("hub.error.lab_standard", option="--to", text="lab-b"),
            InvalidInputError,
            "--to: give LAB/STANDARD, not 'lab-b'",
            "--to: cần dạng LAB/STANDARD (mã phòng thí nghiệm/mã chuẩn), không phải 'lab-b'",
        ),
    ],
)
def test_a_refusal_is_its_kind_in_english_and_vietnamese(
    error: HubError, kind: type[Exception], english: str, vietnamese: str
) -> None:
    assert isinstance(error, kind)
    assert str(error) == error.message("en") == english
    assert error.message("vi") == vietnamese


def test_every_refusal_has_its_own_vietnamese() -> None:
    codes = [code for code in HUB_MESSAGES if code.startswith("hub.error.")]
    assert len(codes) >= 10
    for code in codes:
        texts = HUB_MESSAGES[code]
        assert texts["vi"] != texts["en"], code
