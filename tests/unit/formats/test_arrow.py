"""Shared pieces of the loader's vectorised paths: trimming, COPY encoding, the repeated-key
filter."""

import numpy as np
import pyarrow as pa

from knowdo.formats._arrow import KeyFilter, constant, copy_csv, key_hashes, stripped

KEYS = ("a", "b")


def test_cells_are_trimmed_exactly_as_python_strips_them():
    cells = [" x ", "\u00a0y\u3000", "\x1cz\x1f", "\t\n", "", "  ", None, "a b", "\u200bq"]
    assert stripped(pa.array(cells, pa.string())).to_pylist() == [
        (c.strip() or None) if c is not None else None for c in cells
    ]


def test_copy_csv_quotes_every_string_and_leaves_null_unquoted():
    table = pa.table(
        {
            "n": pa.array([1, None], pa.int64()),
            "s": pa.array(['say "hi"\nthere', ""], pa.string()),
            "c": constant("k", 2, pa.string()),
        }
    )
    assert bytes(copy_csv(table)) == b'1,"say ""hi""\nthere","k"\n,"","k"\n'


def keys_table(pairs):
    return pa.table(
        {
            "a": pa.array([p[0] for p in pairs], pa.string()),
            "b": pa.array([p[1] for p in pairs], pa.string()),
        }
    )


def test_distinct_keys_flag_nothing_and_repeats_are_always_caught():
    distinct = [(f"ou{i}", f"p{i % 120}") for i in range(200_000)]
    with KeyFilter(KEYS) as key_filter:
        key_filter.add(keys_table(distinct[:150_000]))
        key_filter.add(keys_table(distinct[150_000:]))
        assert key_filter.repeated_keys() == set() and not key_filter.overflowed
        # repeats: within one slice, across slices of one table, across tables, with NULLs
        key_filter.add(
            keys_table(
                [("x", None), ("x", None), ("ou5", "p5")]
                + [(f"new{i}", "n") for i in range(20_000)]
                + [("new3", "n")]
            )
        )
        assert key_filter.repeated_keys() == {("x", None), ("ou5", "p5"), ("new3", "n")}


class TinyKeyFilter(KeyFilter):
    WORDS_LOG2 = 4  # two blocks: nearly every key is a Bloom false positive


def test_bloom_false_positives_are_dropped_by_counting_the_spilled_hashes():
    pairs = [(f"k{i}", "p") for i in range(5000)]
    with TinyKeyFilter(KEYS) as key_filter:
        for start in range(0, len(pairs), 500):
            key_filter.add(keys_table(pairs[start : start + 500]))
        key_filter.add(keys_table([("k17", "p"), ("k4999", "p"), ("fresh", None)]))
        assert len(key_filter._candidates) > 4000  # flagged by the saturated filter
        assert key_filter.repeated_keys() == {("k17", "p"), ("k4999", "p")}


def test_null_is_not_an_empty_string_in_a_key():
    hashes = key_hashes(keys_table([("x", None), ("x", ""), ("x", None)]), KEYS)
    assert hashes[0] == hashes[2] != hashes[1]


def test_too_many_candidates_mean_checking_every_key():
    pairs = [(f"k{i}", "p") for i in range(50)]
    with KeyFilter(KEYS, max_candidates=10) as key_filter:
        key_filter.add(keys_table(pairs + pairs))
        assert key_filter.overflowed and key_filter.repeated_keys() is None


def test_hashes_spread_over_the_filter():
    hashes = key_hashes(keys_table([(f"ou{i}", "p") for i in range(10_000)]), KEYS)
    assert len(np.unique(hashes)) == 10_000
    assert 0.4 < np.mean((hashes >> np.uint64(63)).astype(float)) < 0.6
