"""Shared pieces of the loader's vectorised (pyarrow) paths: cells trimmed as Python trims them,
blocks encoded for PostgreSQL's COPY, and a fixed-size filter that proves a file has no
repeated key.

Imported only by the loader's fast paths, so `knowdo check` and the DAGs never load pyarrow.
"""

from __future__ import annotations

import tempfile
from typing import Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

# Exactly the characters Python's str.strip() removes (arrow's own "whitespace" differs in a few
# control characters), so a trimmed cell here equals `cell.strip()` in the row parsers.
PYTHON_WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
_NULL_STRING = pa.scalar(None, pa.string())


def stripped(cells: pa.Array) -> pa.Array:
    """`cell.strip() or None` for a whole column."""
    trimmed = pc.utf8_trim(cells, characters=PYTHON_WHITESPACE)
    return pc.if_else(pc.equal(pc.binary_length(trimmed), 0), _NULL_STRING, trimmed)


def constant(value, length: int, type_: pa.DataType) -> pa.Array:
    """A column holding one value `length` times, without building `length` Python objects."""
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(length, np.int32)), pa.array([value], type_)
    )


# "needed" quotes every string (arrow cannot tell which need it without looking) and no number,
# date or boolean: fewer bytes for the server to parse than "all_valid", same meaning.
_CSV_OPTIONS = pv.WriteOptions(include_header=False, quoting_style="needed", batch_size=65536)


def copy_csv(table: pa.Table) -> memoryview:
    """The table as COPY ... (format csv) input: every string quoted, NULL an unquoted empty
    field, so PostgreSQL tells NULL from an empty string exactly as the row loader sends them.
    (A view of arrow's buffer: psycopg sends it without copying it into a bytes object.)"""
    sink = pa.BufferOutputStream()
    pv.write_csv(table, sink, _CSV_OPTIONS)
    return memoryview(sink.getvalue())


# --- repeated keys -------------------------------------------------------------------------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_NULL_HASH = np.uint64(0x5BD1E9955BD1E995)  # what a NULL key cell contributes


def _mixed(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every output bit depends on every input bit."""
    h = h ^ (h >> np.uint64(30))
    h = h * _MIX1
    h = h ^ (h >> np.uint64(27))
    h = h * _MIX2
    return h ^ (h >> np.uint64(31))


def key_hashes(table: pa.Table, columns: tuple[str, ...]) -> np.ndarray:
    """A 64-bit hash per row of the key `columns` (NULL-safe: NULL equals NULL, as in SQL
    `partition by`). Each column's distinct values are hashed once in Python and spread back."""
    combined = np.zeros(table.num_rows, np.uint64)
    for name in columns:
        encoded = pc.dictionary_encode(table.column(name).combine_chunks())
        distinct = encoded.dictionary.to_pylist()
        hashes = np.empty(len(distinct) + 1, np.uint64)
        hashes[:-1] = np.array([hash(v) for v in distinct], np.int64).view(np.uint64)
        hashes[-1] = _NULL_HASH
        indices = encoded.indices.fill_null(len(distinct)).to_numpy(zero_copy_only=False)
        combined = _mixed(combined * _GOLDEN + hashes[indices])
    return combined


class KeyFilter:
    """Finds the keys that may repeat within one file, in fixed memory, never missing a repeat.

    1. A word-blocked Bloom filter (64 MB; 6 bits per key, all in one 64-bit word, so one memory
       read and one write per key) proves a key was NOT seen before. A flagged row is a
       *candidate*: a true repeat, or a false positive (about none in a file of 1M distinct keys,
       ~1,000 in one of 10M: cheap, see 2).
    2. Every row's 64-bit key hash is spilled to a temporary file (8 bytes a row, on disk, not in
       memory); `repeated_keys` counts each candidate's hash over the whole file: a hash seen once
       was a false positive and is dropped, so a clean file leaves no key for the exact SQL check.
    A key kept may still be a 64-bit hash collision: the SQL check on its rows decides exactly.
    Past `max_candidates` the filter gives up (`repeated_keys` is None: check every key).
    """

    WORDS_LOG2 = 23  # 2**23 uint64 words = 2**29 bits = 64 MB
    BITS_PER_KEY = 6
    SLICE = 16384  # rows tested, then set, together

    def __init__(self, columns: tuple[str, ...], max_candidates: int = 100_000) -> None:
        self.columns = columns
        self.max_candidates = max_candidates
        self.overflowed = False
        self._candidates: dict[int, set[tuple]] = {}  # hash -> the keys flagged with it
        self._words = np.zeros(1 << self.WORDS_LOG2, np.uint64)
        self._word_shift = np.uint64(64 - self.WORDS_LOG2)
        # closed by __exit__ (the filter is a context manager); deleted by the OS when closed
        self._spill = tempfile.TemporaryFile(prefix="knowdo-keys-")  # noqa: SIM115

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self._spill.close()

    def add(self, table: pa.Table) -> None:
        """Add every row's key; keep the keys that may have been seen before (also within
        this table) as candidates."""
        if table.num_rows == 0:
            return
        hashes = key_hashes(table, self.columns)
        self._spill.write(hashes.tobytes())
        flagged = np.zeros(hashes.size, bool)
        for start in range(0, hashes.size, self.SLICE):
            part = hashes[start : start + self.SLICE]
            seen = self._test_and_set(part)
            # a key twice within one slice: the second test ran before the first one's bits were set
            ordered = np.sort(part)
            twice = ordered[1:][ordered[1:] == ordered[:-1]]
            if twice.size:
                seen |= np.isin(part, twice)
            flagged[start : start + self.SLICE] = seen
        if flagged.any() and not self.overflowed:
            rows = table.select(list(self.columns)).filter(pa.array(flagged))
            keys = zip(*(rows.column(c).to_pylist() for c in self.columns))
            for digest, key in zip(hashes[flagged].tolist(), keys):
                self._candidates.setdefault(digest, set()).add(key)
            if len(self._candidates) > self.max_candidates:
                self.overflowed, self._candidates = True, {}

    def repeated_keys(self) -> set[tuple] | None:
        """The candidate keys whose hash occurs more than once in the file; None: check all."""
        if self.overflowed:
            return None
        if not self._candidates:
            return set()
        wanted = np.array(sorted(self._candidates), np.uint64)
        counts = np.zeros(wanted.size, np.int64)
        # a table over the top 20 bits picks the few hashes worth a binary search
        prefix = np.uint64(44)
        maybe = np.zeros(1 << 20, bool)
        maybe[(wanted >> prefix).astype(np.intp)] = True
        self._spill.seek(0)
        while block := self._spill.read(8 << 20):
            hashes = np.frombuffer(block, np.uint64)
            hashes = hashes[maybe[(hashes >> prefix).astype(np.intp)]]
            at = np.minimum(np.searchsorted(wanted, hashes), wanted.size - 1)
            found = wanted[at] == hashes
            np.add.at(counts, at[found], 1)
        return {
            key
            for digest, count in zip(wanted.tolist(), counts.tolist())
            if count > 1
            for key in self._candidates[digest]
        }

    def _test_and_set(self, hashes: np.ndarray) -> np.ndarray:
        """Each key owns BITS_PER_KEY bits of one 64-bit word: one read and one write per key."""
        word = (hashes >> self._word_shift).astype(np.intp)
        spread = hashes * _GOLDEN
        spread ^= spread >> np.uint64(32)
        mask = np.zeros(hashes.size, np.uint64)
        for j in range(self.BITS_PER_KEY):
            mask |= np.uint64(1) << ((spread >> np.uint64(6 * j)) & np.uint64(63))
        seen = (self._words[word] & mask) == mask
        np.bitwise_or.at(self._words, word, mask)  # .at: two keys of one slice may share a word
        return seen
