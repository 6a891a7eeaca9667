"""The case numbers (信访件编号) of the columnar case table, kept as a stem code and a number.

Case numbers are a short prefix and a run of digits (``XF20261127000123``, ``WS…``, ``EWM…``):
as Arrow text a million of them hold 26 MB, a quarter of the whole table (issue 15: ≤ 150 MB
per million cases in the server). Split into the *stem* (the text before the trailing digits,
with the digits' width, so leading zeros survive) and the trailing number, they hold 10 MB: an
int16 stem code (a store has a handful of stems) and an int64 number per case. A number with no
trailing digits, or with more than 18 (an int64 holds 18 digits safely), is kept whole in a
small side table, so every text round-trips exactly, whatever an export contained.

Why not a library: Arrow and pandas keep strings as offsets and bytes (no prefix sharing), and a
dictionary does not help because every number is distinct.

Reading a few ids (lists, a case page) formats them in Arrow per stem; finding one id compares
its number against the int64 column in C (under a millisecond per million cases).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_SPLIT = r"(?s)^(?P<stem>.*?)(?P<digits>[0-9]{1,18})$"
"""Stem and trailing digits (RE2 in Arrow; the same rule in Python below)."""
_SPLIT_ONE = re.compile(r"(.*?)([0-9]{1,18})", re.DOTALL)
_WHOLE = -1
"""Stem code of an id kept whole in :attr:`CaseIds.whole`."""


@dataclass(frozen=True)
class CaseIds:
    """The 信访件编号 of every case in table order (immutable: a refresh makes a new one).

    Attributes
    ----------
    stems
        Per case, the index into :attr:`stem_texts` (:data:`_WHOLE` = kept in :attr:`whole`).
    numbers
        Per case, the trailing number (0 for an id kept whole).
    stem_texts
        (prefix, digit width) of each stem code.
    whole
        Row → id, for the ids that do not split (usually none).
    """

    stems: np.ndarray
    numbers: np.ndarray
    stem_texts: tuple[tuple[str, int], ...]
    whole: dict[int, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ building

    @classmethod
    def from_arrow(cls, ids: pa.Array | pa.ChunkedArray) -> CaseIds:
        """Split an Arrow string column (no nulls: a case always has its number)."""
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        ids = ids.cast(pa.string())
        parts = pc.extract_regex(ids, _SPLIT)
        split = parts.is_valid().to_numpy(zero_copy_only=False)
        stem = pc.struct_field(parts, "stem")
        digits = pc.struct_field(parts, "digits")
        width = pc.cast(pc.utf8_length(digits), pa.string())
        key = pc.binary_join_element_wise(width, stem, "\x00")
        encoded = pc.dictionary_encode(key.fill_null(""))
        stems = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        texts = []
        for text in encoded.dictionary.to_pylist():
            width_text, _, prefix = text.partition("\x00")
            texts.append((prefix, int(width_text) if width_text else 0))
        numbers = pc.cast(digits.fill_null("0"), pa.int64()).to_numpy(zero_copy_only=False)
        whole = {int(row): str(ids[int(row)].as_py()) for row in np.flatnonzero(~split)}
        stems[~split] = _WHOLE
        return cls(_narrow(stems, len(texts)), np.ascontiguousarray(numbers, dtype=np.int64),
                   tuple(texts), whole)

    @classmethod
    def from_strings(cls, ids: Sequence[str]) -> CaseIds:
        """Split Python strings (a refresh's few cases, tests)."""
        return cls.from_arrow(pa.array([str(i) for i in ids], type=pa.string()))

    def append(self, more: CaseIds) -> CaseIds:
        """These ids followed by ``more`` (stems merged), as a new object."""
        codes = {text: code for code, text in enumerate(self.stem_texts)}
        texts = list(self.stem_texts)
        remap = np.empty(len(more.stem_texts) + 1, dtype=np.int32)
        remap[-1] = _WHOLE  # index -1 (kept whole) maps to itself
        for code, text in enumerate(more.stem_texts):
            if text not in codes:
                codes[text] = len(texts)
                texts.append(text)
            remap[code] = codes[text]
        stems = np.concatenate([self.stems.astype(np.int32), remap[more.stems]])
        whole = {**self.whole, **{len(self) + row: text for row, text in more.whole.items()}}
        return CaseIds(_narrow(stems, len(texts)), np.concatenate([self.numbers, more.numbers]),
                       tuple(texts), whole)

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self.numbers)

    @property
    def nbytes(self) -> int:
        return int(self.stems.nbytes + self.numbers.nbytes)

    def take(self, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        """The ids of ``rows`` (positions or a boolean mask) as an object array of str."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64, copy=False)
        stems, numbers = self.stems[rows], self.numbers[rows]
        out = np.empty(len(rows), dtype=object)
        for code in np.unique(stems):
            picked = stems == code
            if code == _WHOLE:
                out[picked] = [self.whole[int(r)] for r in rows[picked]]
                continue
            prefix, width = self.stem_texts[int(code)]
            digits = pc.utf8_lpad(pc.cast(pa.array(numbers[picked]), pa.string()), width, "0")
            texts = pc.binary_join_element_wise(pa.scalar(prefix), digits, "")
            out[picked] = texts.to_numpy(zero_copy_only=False)
        return out

    def __getitem__(self, key: int | slice | np.ndarray) -> str | np.ndarray:
        if isinstance(key, (int, np.integer)):
            return str(self.take([int(key) % len(self) if key < 0 else int(key)])[0])
        if isinstance(key, slice):
            return self.take(np.arange(len(self))[key])
        return self.take(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.take(np.arange(len(self))).tolist())

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        return self.take(np.arange(len(self)))

    def position(self, case_id: str) -> int:
        """The first row holding ``case_id``, or -1."""
        hits = self.positions([case_id])
        return int(hits[0])

    def positions(self, case_ids: Sequence[str]) -> np.ndarray:
        """The first row of each id (-1 when absent), int64."""
        out = np.full(len(case_ids), -1, dtype=np.int64)
        codes = {text: code for code, text in enumerate(self.stem_texts)}
        wanted: dict[tuple[int, int], list[int]] = {}
        whole_rows = {text: row for row, text in sorted(self.whole.items(), reverse=True)}
        for i, case_id in enumerate(case_ids):
            text = str(case_id)
            match = _SPLIT_ONE.fullmatch(text)
            if match is None:
                out[i] = whole_rows.get(text, -1)
                continue
            code = codes.get((match.group(1), len(match.group(2))))
            if code is not None:
                wanted.setdefault((code, int(match.group(2))), []).append(i)
        if not wanted:
            return out
        numbers = np.fromiter((n for _, n in wanted), dtype=np.int64, count=len(wanted))
        candidates = np.flatnonzero(np.isin(self.numbers, numbers)) if len(wanted) > 1 else \
            np.flatnonzero(self.numbers == numbers[0])
        for row in candidates[::-1]:  # backwards: the first row wins
            targets = wanted.get((int(self.stems[row]), int(self.numbers[row])))
            if targets:
                out[targets] = row
        return out


def _narrow(stems: np.ndarray, count: int) -> np.ndarray:
    return stems.astype(np.int16 if count < np.iinfo(np.int16).max else np.int32)
