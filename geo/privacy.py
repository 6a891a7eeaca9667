"""Petitioners' personal data (信访人个人信息): masking and hashing.

Names, phone numbers and ID numbers never leave the store unmasked where a role does
not need them, and never reach a log. ID numbers are not stored at all: only a salted
SHA-256, which is enough to spot a repeat petitioner (重复信访人).
"""

from __future__ import annotations

import hashlib

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
    """Return a copy of a case table with every personal column masked (hashes dropped)."""
    out = frame.copy()
    if "petitioner_name" in out:
        out["petitioner_name"] = out["petitioner_name"].map(mask_name)
    if "petitioner_phone" in out:
        out["petitioner_phone"] = out["petitioner_phone"].map(mask_phone)
    if "petitioner_id" in out:
        out["petitioner_id"] = out["petitioner_id"].map(mask_id_number)
    return out.drop(columns=[c for c in ("petitioner_id_hash",) if c in out])
