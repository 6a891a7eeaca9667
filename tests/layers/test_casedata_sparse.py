"""Mostly missing time columns are kept sparse and read back exactly as the dense column."""

import numpy as np

from layers.casedata import NULL, SPARSE_SHARE, SparseColumn, compact_times


def _column(n: int, share: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dense = np.full(n, NULL, dtype=np.int32)
    present = rng.random(n) < share
    dense[present] = rng.integers(27_000_000, 29_000_000, int(present.sum()), dtype=np.int32)
    return dense


def test_a_sparse_column_reads_back_as_the_dense_one_whole_and_by_rows():
    rng = np.random.default_rng(3)
    for share in (0.0, 0.03, 0.5, 1.0):
        dense = _column(5_000, share, seed=int(share * 100))
        sparse = SparseColumn.of(dense)
        assert np.array_equal(sparse.dense(), dense)
        rows = rng.integers(0, len(dense), 700)  # unsorted, with repeats
        assert np.array_equal(sparse.dense(rows), dense[rows])
        mask = rng.random(len(dense)) < 0.2
        assert np.array_equal(sparse.dense(mask), dense[mask])
        assert sparse.dense(rows).dtype == np.int32


def test_only_mostly_missing_columns_are_compacted():
    n = 10_000
    times = {"rare": _column(n, SPARSE_SHARE / 2, 1), "common": _column(n, 0.6, 2),
             "empty": np.full(n, NULL, dtype=np.int32)}
    kept = compact_times(times)
    assert isinstance(kept["rare"], SparseColumn) and isinstance(kept["empty"], SparseColumn)
    assert kept["common"] is times["common"]
    assert kept["rare"].nbytes < times["rare"].nbytes / 5
