"""Petitioners' personal data (信访人个人信息): masking and hashing.

Names, phone numbers and ID numbers never leave the store unmasked where a role does
not need them, and never reach a log. ID numbers are not stored at all: only a salted
SHA-256, which is enough to spot a repeat petitioner (重复信访人).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pandas as pd

PERSONAL_COLUMNS = ("petitioner_name", "petitioner_phone", "petitioner_id", "petitioner_id_hash")


def mask_name(name: str | None) -> str | None:
    """Keep the surname only: 张三丰 → 张**, 'Li Wei' → 'L***'."""
    if name is None or (isinstance(name, float) and pd.isna(name)) or name == "":
        return name
    name = str(name)
    return name[0] + "*" * max(len(name) - 1, 1)


def mask_phone(phone: str | None) -> str | None:
    """Keep the first 3 and last 4 digits: 13812345678 → 138****5678."""
    if phone is None or (isinstance(phone, float) and pd.isna(phone)) or phone == "":
        return phone
    phone = str(phone)
    if len(phone) <= 4:
        return "*" * len(phone)
    keep_head = 3 if len(phone) >= 11 else 0
    return phone[:keep_head] + "*" * (len(phone) - keep_head - 4) + phone[-4:]


def mask_id_number(id_number: str | None) -> str | None:
    """Keep the first and last character only: 440103199001011234 → 4****************4."""
    if id_number is None or (isinstance(id_number, float) and pd.isna(id_number)) or id_number == "":
        return id_number
    s = str(id_number)
    return s[0] + "*" * max(len(s) - 2, 1) + (s[-1] if len(s) > 1 else "")


def hash_id_number(id_number: str | None, *, salt: str) -> str | None:
    """Return the salted SHA-256 of a normalised ID number (upper-case X, no spaces)."""
    if id_number is None or (isinstance(id_number, float) and pd.isna(id_number)):
        return None
    normalised = str(id_number).strip().upper().replace(" ", "")
    if not normalised:
        return None
    return hashlib.sha256((salt + ":" + normalised).encode()).hexdigest()


def mask_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of a case table with every personal column masked (hashes dropped).

    Free text (地址, 信访内容) keeps its words but not the phone and ID numbers typed into it.
    """
    out = frame.copy()
    if "petitioner_name" in out:
        out["petitioner_name"] = out["petitioner_name"].map(mask_name)
    if "petitioner_phone" in out:
        out["petitioner_phone"] = out["petitioner_phone"].map(mask_phone)
    if "petitioner_id" in out:
        out["petitioner_id"] = out["petitioner_id"].map(mask_id_number)
    for column in FREE_TEXT_COLUMNS:
        if column in out:
            out[column] = out[column].map(mask_text)
    return out.drop(columns=[c for c in ("petitioner_id_hash",) if c in out])


# --------------------------------------------------------------------------- free text

FREE_TEXT_COLUMNS = ("address", "description")
"""Canonical columns a person types into freely (地址, 信访内容): pattern-masked on the way out."""
REJECT_VALUE_CHARS = 200
"""A rejected row keeps at most this many characters of one value (enough to find the error)."""
UNREAD_KEY = "_未读取的列"
"""Where a masked rejected row lists the headers gridgov does not read (their values dropped)."""

_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_OLD_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{15}(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9])(?:(?:\+|00)?86[-\s]?)?(1[3-9]\d)[-\s]?(\d{4})[-\s]?(\d{4})(?![0-9])")
_LANDLINE = re.compile(r"(?<![0-9])(\(0\d{2,3}\)|（0\d{2,3}）|0\d{2,3})([-\s]?)([2-9]\d{2,3})[-\s]?"
                       r"(\d{4})(?![0-9])")
_DIGIT = re.compile(r"\d")
_PLAIN_PHONE = re.compile(r"\d[\d\s-]{5,}\d")

_NAME_WORDS = ("姓名", "名字", "联系人", "信访人", "申请人", "反映人", "投诉人", "举报人", "来访人",
               "来信人", "当事人", "代理人", "户主", "诉求人", "求助人", "被反映人", "petitioner",
               "person", "contact", "surname", "full_name", "fullname", "first_name",
               "last_name", "realname", "real_name")
_PHONE_WORDS = ("电话", "手机", "联系方式", "座机", "号码", "phone", "mobile", "tel", "contact_no")
_ID_WORDS = ("身份证", "证件", "身份号", "idcard", "id_card", "id_no", "id_number", "identity")
_NOT_A_NAME = ("人数", "单位", "机构", "站点", "地址", "内容", "编号", "时间", "日期", "级别",
               "类型", "数量")


def mask_text(text: Any) -> Any:
    """Mask every mobile number, landline and ID number inside free text.

    ``家住天河路1号，电话13812345678`` → ``家住天河路1号，电话138****5678``; 18-digit (or 17 + X)
    and 15-digit ID numbers keep their first and last character, landlines their area code and
    last four digits. Other text, None and NaN pass unchanged.
    """
    if not isinstance(text, str) or not text:
        return text
    if not _DIGIT.search(text):
        return text
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), text)
    text = _OLD_ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    return _LANDLINE.sub(lambda m: f"{m.group(1)}{m.group(2)}{'*' * len(m.group(3))}{m.group(4)}",
                         text)


def personal_kind(header: str) -> str | None:
    """What personal field a column header names: ``name``, ``phone``, ``id`` or None.

    Headers are matched by the words people use (信访人, 联系人, 姓名 …; 电话, 手机, 联系方式 …;
    身份证, 证件 …), so a second name column or 信访人手机 is found without being listed.
    """
    key = str(header).strip().lower().replace(" ", "").replace("-", "_")
    if any(word in key for word in _ID_WORDS):
        return "id"
    if any(word in key for word in _PHONE_WORDS):
        return "phone"
    if any(word in key for word in _NAME_WORDS) and not any(w in key for w in _NOT_A_NAME):
        return "name"
    return None


def mask_value(value: Any, kind: str | None) -> Any:
    """Mask one value as the personal field ``kind`` (see :func:`personal_kind`), else its text."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if kind is None:
        return mask_text(value) if isinstance(value, str) else value
    text = str(value).strip()
    if not text:
        return text
    if kind == "name":
        return mask_name(text)
    if kind == "id":
        return mask_id_number(text)
    if _PLAIN_PHONE.fullmatch(text):
        return mask_phone(re.sub(r"[-\s]", "", text))  # 13812345678 → 138****5678
    masked = mask_text(text)  # anything else in a phone column: every digit but the last four
    digits = [i for i, ch in enumerate(masked) if ch.isdigit()]
    hide = set(digits[:-4]) if len(digits) > 4 else set(digits)
    return "".join("*" if i in hide else ch for i, ch in enumerate(masked))


_PERSONAL_CANONICAL = {"petitioner_name": "name", "petitioner_phone": "phone",
                       "petitioner_id": "id", "petitioner_id_hash": "id"}


def mask_record(record: dict[str, Any], header_map: dict[str, str] | None = None
                ) -> dict[str, Any]:
    """Return what a clerk needs of one rejected row to fix it, every personal value masked.

    Parameters
    ----------
    record
        The row as read: source header → raw value.
    header_map
        Source header → canonical column, for the headers gridgov recognised. When given, a
        column gridgov does not read is not kept at all (its header is listed under
        :data:`UNREAD_KEY`: nothing to fix there, and it may hold anything); without it
        (rows stored earlier) every column is kept, masked by its header and by pattern.

    Personal columns (the recognised petitioner columns and any header that names a person,
    a phone or an ID number) are masked as such; every other text has its mobile numbers,
    landlines and ID numbers masked and is cut to :data:`REJECT_VALUE_CHARS` characters.
    """
    out: dict[str, Any] = {}
    dropped: list[str] = []
    for header, value in record.items():
        canonical = header_map.get(header) if header_map is not None else None
        if header_map is not None and canonical is None:
            if value is not None and not (isinstance(value, float) and pd.isna(value)) \
                    and str(value) != "":
                dropped.append(str(header))
            continue
        if canonical in _PERSONAL_CANONICAL:
            kind = _PERSONAL_CANONICAL[canonical]
        elif canonical is not None:
            kind = None  # a recognised column of gridgov's own (a station's 名称 is no person)
        else:
            kind = personal_kind(header)
        masked = mask_value(value, kind)
        if isinstance(masked, str) and len(masked) > REJECT_VALUE_CHARS:
            masked = masked[:REJECT_VALUE_CHARS] + f"…（共 {len(masked):,} 字）"
        out[str(header)] = masked
    if dropped:
        out[UNREAD_KEY] = "、".join(personal_header_safe(h) for h in dropped)
    return out


def personal_header_safe(header: str) -> str:
    """A header as it may be shown again (headers are data too: cut, patterns masked)."""
    text = mask_text(str(header))
    return text[:40] + "…" if len(text) > 40 else text


def mask_raw_json(raw: str | None) -> str | None:
    """Mask a stored reject's raw JSON again (rows stored before masking was complete)."""
    if raw is None:
        return None
    try:
        record = json.loads(raw)
    except (TypeError, ValueError):
        return mask_value(str(raw), None)
    if not isinstance(record, dict):
        return mask_value(str(raw), None)
    unread = record.pop(UNREAD_KEY, None)
    masked = mask_record(record)
    if unread is not None:
        masked[UNREAD_KEY] = personal_header_safe(str(unread))
    return json.dumps(masked, ensure_ascii=False)
