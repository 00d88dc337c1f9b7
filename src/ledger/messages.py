"""What the verifier says, in English and Vietnamese.

Each finding and note carries a ``code`` and ``params``; ``render`` fills the code's template in
the reader's language. ``MESSAGES`` is the declared table a feature registers with the i18n
catalogue (``{code: {"en": ..., "vi": ...}}``); a test holds both languages to the same
placeholders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

MESSAGES: Final[dict[str, dict[str, str]]] = {
    # -- kinds, as a title --------------------------------------------------------------------
    "kind.edited": {"en": "edited", "vi": "bị sửa"},
    "kind.deleted": {"en": "deleted", "vi": "bị xóa"},
    "kind.inserted": {"en": "inserted", "vi": "bị chèn thêm"},
    "kind.reordered": {"en": "reordered", "vi": "bị đảo thứ tự"},
    "kind.truncated": {"en": "truncated", "vi": "bị cắt bớt"},
    "kind.rewritten": {"en": "rewritten", "vi": "bị viết lại"},
    "kind.checkpoint_forged": {"en": "checkpoint forged", "vi": "điểm chốt bị giả mạo"},
    "kind.checkpoint_replayed": {"en": "checkpoint replayed", "vi": "điểm chốt cũ bị phát lại"},
    "kind.rotation_forged": {"en": "key rotation forged", "vi": "lần đổi khóa bị giả mạo"},
    # -- entries ------------------------------------------------------------------------------
    "edited.malformed": {
        "en": "entry {seq}: the stored row is not a valid entry ({problem})",
        "vi": "mục {seq}: dòng đã lưu không còn là một mục hợp lệ ({problem})",
    },
    "edited.mismatch": {
        "en": "entry {seq}: its content no longer matches its hash",
        "vi": "mục {seq}: nội dung không còn khớp với mã băm của nó",
    },
    "edited.seq_changed": {
        "en": "entry {seq}: its sequence number was changed to {claimed}",
        "vi": "mục {seq}: số thứ tự của nó đã bị đổi thành {claimed}",
    },
    "edited.recomputed": {
        "en": "entry {seq}: its content was changed and its hash recomputed "
        "(entry {next} still names the original hash)",
        "vi": "mục {seq}: nội dung đã bị sửa và mã băm được tính lại "
        "(mục {next} vẫn ghi mã băm gốc)",
    },
    "edited.recomputed_checkpoint": {
        "en": "entry {seq}: its content was changed and its hash recomputed "
        "(signed checkpoint {checkpoint} and entry {next} still name the original hash)",
        "vi": "mục {seq}: nội dung đã bị sửa và mã băm được tính lại "
        "(điểm chốt có chữ ký {checkpoint} và mục {next} vẫn ghi mã băm gốc)",
    },
    "edited.renumbered": {
        "en": "entry {seq}: its sequence number was changed to {claimed} and its hash recomputed",
        "vi": "mục {seq}: số thứ tự đã bị đổi thành {claimed} và mã băm được tính lại",
    },
    "deleted.entries_one": {
        "en": "entry {seq} is missing",
        "vi": "mục {seq} bị thiếu",
    },
    "deleted.entries": {
        "en": "entries {seq} to {last_seq} are missing",
        "vi": "các mục từ {seq} đến {last_seq} bị thiếu",
    },
    "inserted.duplicate": {
        "en": "entry {seq} appears twice",
        "vi": "mục {seq} xuất hiện hai lần",
    },
    "inserted.second_claim": {
        "en": "a second entry claims sequence number {seq}; the chain continues from the other",
        "vi": "một mục thứ hai cũng mang số thứ tự {seq}; chuỗi tiếp tục từ mục kia",
    },
    "inserted.corrupt_claim": {
        "en": "a second entry claims sequence number {seq}, and its content does not match "
        "its hash",
        "vi": "một mục thứ hai cũng mang số thứ tự {seq}, và nội dung của nó không khớp với mã băm",
    },
    "inserted.branch": {
        "en": "an entry numbered {claimed} follows entry {branch_of}, not entry {expected}: "
        "it was added afterwards",
        "vi": "một mục mang số {claimed} nối tiếp mục {branch_of}, không phải mục {expected}: "
        "nó đã được thêm vào sau",
    },
    "inserted.intruder": {
        "en": "entry {seq} is not the one the chain continues from: it was inserted "
        "(the genuine entry {seq} comes later)",
        "vi": "mục {seq} không phải là mục mà chuỗi nối tiếp: nó đã bị chèn vào "
        "(mục {seq} thật nằm phía sau)",
    },
    "inserted.backdated": {
        "en": "entry {seq} is dated before entry {prev_seq}: it was written outside the ledger",
        "vi": "mục {seq} mang thời điểm trước mục {prev_seq}: nó đã được ghi ngoài sổ cái",
    },
    "inserted.foreign": {
        "en": "entry {seq} does not continue ledger {ledger}: it belongs to another chain",
        "vi": "mục {seq} không nối tiếp sổ cái {ledger}: nó thuộc một chuỗi khác",
    },
    "inserted.extra": {
        "en": "entry {seq} lies beyond the segment's end ({to_seq})",
        "vi": "mục {seq} nằm ngoài điểm cuối của đoạn ({to_seq})",
    },
    "reordered.moved": {
        "en": "entry {claimed} appears where entry {seq} belongs: entries are out of order",
        "vi": "mục {claimed} nằm ở chỗ của mục {seq}: các mục bị đảo thứ tự",
    },
    "reordered.renumbered": {
        "en": "entry {original} was renumbered {claimed} and put where entry {seq} belongs",
        "vi": "mục {original} đã bị đổi số thành {claimed} và đặt vào chỗ của mục {seq}",
    },
    "truncated.checkpoint": {
        "en": "the ledger ends at entry {count}, but signed checkpoint {checkpoint} counts "
        "{last_seq}: entries {seq} to {last_seq} were removed",
        "vi": "sổ cái kết thúc ở mục {count}, nhưng điểm chốt có chữ ký {checkpoint} ghi "
        "{last_seq} mục: các mục từ {seq} đến {last_seq} đã bị xóa",
    },
    "truncated.checkpoint_one": {
        "en": "the ledger ends at entry {count}, but signed checkpoint {checkpoint} counts "
        "{last_seq}: entry {seq} was removed",
        "vi": "sổ cái kết thúc ở mục {count}, nhưng điểm chốt có chữ ký {checkpoint} ghi "
        "{last_seq} mục: mục {seq} đã bị xóa",
    },
    "truncated.segment": {
        "en": "the segment ends at entry {count}, but it says it runs to entry {last_seq}",
        "vi": "đoạn kết thúc ở mục {count}, nhưng nó ghi là kéo dài đến mục {last_seq}",
    },
    "rewritten.checkpoint": {
        "en": "the chain disagrees with signed checkpoint {checkpoint} (count {last_seq}): "
        "it was rewritten from an entry between {seq} and {last_seq}",
        "vi": "chuỗi không khớp với điểm chốt có chữ ký {checkpoint} ({last_seq} mục): "
        "nó đã bị viết lại từ một mục trong khoảng {seq} đến {last_seq}",
    },
    "rewritten.checkpoint_one": {
        "en": "the chain disagrees with signed checkpoint {checkpoint} (count {last_seq}): "
        "entry {seq} was rewritten",
        "vi": "chuỗi không khớp với điểm chốt có chữ ký {checkpoint} ({last_seq} mục): "
        "mục {seq} đã bị viết lại",
    },
    "rewritten.rotation": {
        "en": "the chain disagrees with the key rotation at entry {rotation}, which both keys "
        "signed: it was rewritten from an entry between {seq} and {last_seq}",
        "vi": "chuỗi không khớp với lần đổi khóa ở mục {rotation} mà cả hai khóa đã ký: "
        "nó đã bị viết lại từ một mục trong khoảng {seq} đến {last_seq}",
    },
    "rewritten.rotation_one": {
        "en": "the chain disagrees with the key rotation at entry {rotation}, which both keys "
        "signed: entry {seq} was rewritten",
        "vi": "chuỗi không khớp với lần đổi khóa ở mục {rotation} mà cả hai khóa đã ký: "
        "mục {seq} đã bị viết lại",
    },
    "rewritten.known_head": {
        "en": "entry {seq} differs from the entry {seq} already received: the chain was rewritten",
        "vi": "mục {seq} khác với mục {seq} đã nhận trước đó: chuỗi đã bị viết lại",
    },
    # -- checkpoints and keys -----------------------------------------------------------------
    "checkpoint_forged.malformed": {
        "en": "checkpoint {checkpoint} is not a valid checkpoint ({problem})",
        "vi": "điểm chốt {checkpoint} không phải là điểm chốt hợp lệ ({problem})",
    },
    "checkpoint_forged.other_ledger": {
        "en": "checkpoint {checkpoint} belongs to ledger {other}, not {ledger}",
        "vi": "điểm chốt {checkpoint} thuộc sổ cái {other}, không phải {ledger}",
    },
    "checkpoint_forged.signature": {
        "en": "checkpoint {checkpoint} (count {count}): its signature does not hold",
        "vi": "điểm chốt {checkpoint} ({count} mục): chữ ký không hợp lệ",
    },
    "checkpoint_forged.wrong_key": {
        "en": "checkpoint {checkpoint} (count {count}) is signed by {key}, but the key in force "
        "at entry {count} is {expected}",
        "vi": "điểm chốt {checkpoint} ({count} mục) được ký bằng {key}, nhưng khóa có hiệu lực "
        "ở mục {count} là {expected}",
    },
    "checkpoint_forged.unknown_key": {
        "en": "checkpoint {checkpoint} (count {count}) is signed by {key}, which is not a "
        "trusted key",
        "vi": "điểm chốt {checkpoint} ({count} mục) được ký bằng {key}, không phải khóa tin cậy",
    },
    "checkpoint_forged.untrusted_chain": {
        "en": "checkpoint {checkpoint} (count {count}) is signed by {key}, which no trusted key "
        "vouches for",
        "vi": "điểm chốt {checkpoint} ({count} mục) được ký bằng {key}, khóa mà không khóa tin "
        "cậy nào bảo chứng",
    },
    "checkpoint_replayed.order": {
        "en": "checkpoint {checkpoint} (count {count}) comes after one counting {latest}: an "
        "old checkpoint was replayed",
        "vi": "điểm chốt {checkpoint} ({count} mục) đứng sau một điểm chốt ghi {latest} mục: "
        "một điểm chốt cũ đã bị phát lại",
    },
    "rotation_forged.malformed": {
        "en": "entry {seq}: the key rotation is malformed ({problem})",
        "vi": "mục {seq}: lần đổi khóa bị sai định dạng ({problem})",
    },
    "rotation_forged.signature": {
        "en": "entry {seq}: the key rotation's signatures do not hold ({problem})",
        "vi": "mục {seq}: chữ ký của lần đổi khóa không hợp lệ ({problem})",
    },
    "rotation_forged.other_ledger": {
        "en": "entry {seq}: the key rotation was signed for ledger {other}",
        "vi": "mục {seq}: lần đổi khóa được ký cho sổ cái {other}",
    },
    "rotation_forged.wrong_old_key": {
        "en": "entry {seq}: the rotation hands over from {key}, but the key in force is {expected}",
        "vi": "mục {seq}: lần đổi khóa chuyển giao từ {key}, nhưng khóa có hiệu lực là {expected}",
    },
    "rotation_forged.untrusted": {
        "en": "entry {seq}: the key rotation is between keys that no trusted key vouches for",
        "vi": "mục {seq}: lần đổi khóa diễn ra giữa các khóa mà không khóa tin cậy nào bảo chứng",
    },
    # -- segments (a hub's verdict) -----------------------------------------------------------
    "segment.accepted": {
        "en": "accepted: {new} new entries, {known} already held; the head is now {count}",
        "vi": "đã nhận: {new} mục mới, {known} mục đã có; đầu chuỗi nay là {count}",
    },
    "segment.wrong_ledger": {
        "en": "the segment is of ledger {other}, not {ledger}",
        "vi": "đoạn thuộc sổ cái {other}, không phải {ledger}",
    },
    "segment.gap": {
        "en": "the segment starts at entry {from_seq}, but only entries up to {count} are held: "
        "entries from {missing} are missing",
        "vi": "đoạn bắt đầu ở mục {from_seq}, nhưng mới chỉ có các mục đến {count}: "
        "thiếu các mục từ {missing}",
    },
    "segment.stale": {
        "en": "the segment ends at entry {to_seq}, before the head ({count}), and cannot be "
        "matched with what is held",
        "vi": "đoạn kết thúc ở mục {to_seq}, trước đầu chuỗi ({count}), và không thể đối chiếu "
        "với dữ liệu đã có",
    },
    "segment.key_not_enrolled": {
        "en": "the lab's key in force ({key}) is not enrolled (revoked?)",
        "vi": "khóa đang có hiệu lực của phòng thí nghiệm ({key}) chưa được đăng ký "
        "(đã bị thu hồi?)",
    },
    "segment.unsigned": {
        "en": "entries after {signed_count} up to {to_seq} are not covered by a checkpoint: "
        "a segment must end on a signed checkpoint",
        "vi": "các mục sau {signed_count} đến {to_seq} không được điểm chốt nào bao phủ: "
        "một đoạn phải kết thúc bằng một điểm chốt có chữ ký",
    },
    # -- notes: what a clean result does not prove --------------------------------------------
    "note.unsigned": {
        "en": "{unsigned} entries after the last checkpoint (count {signed_count}) are not "
        "signed yet: their removal or rewrite cannot be detected before the next checkpoint",
        "vi": "{unsigned} mục sau điểm chốt cuối ({signed_count} mục) chưa được ký: việc xóa "
        "hay viết lại chúng không thể phát hiện trước điểm chốt kế tiếp",
    },
    "note.no_checkpoint": {
        "en": "no verified checkpoint: the chain is consistent, but a rewrite of the whole "
        "chain or the removal of its last entries cannot be detected",
        "vi": "không có điểm chốt nào được xác minh: chuỗi nhất quán, nhưng việc viết lại "
        "toàn bộ chuỗi hay xóa các mục cuối không thể phát hiện",
    },
    "note.stopped": {
        "en": "verification stops at the first broken entry: entries after it were not checked",
        "vi": "việc xác minh dừng ở mục hỏng đầu tiên: các mục sau đó chưa được kiểm tra",
    },
}

LANGUAGES: Final = ("en", "vi")


def render(code: str, params: Mapping[str, object], lang: str = "en") -> str:
    """The message ``code`` in ``lang`` (English for an unknown language) with ``params``."""
    templates = MESSAGES[code]
    return templates.get(lang, templates["en"]).format_map(dict(params))
