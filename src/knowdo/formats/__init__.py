"""Feed formats: each turns one file into raw rows (or rejections) for one raw table.

A parser is a generator of `Row` and `Rejection` objects; it raises `FileRejected` when the file as
a whole cannot be read as its declared format. Parsers stream: memory stays flat in the file's size.

The shared types are in `knowdo.formats.base` (re-exported here). `FORMATS`, the registry of every
format by name, is built on first use, not at import: importing this package (as every DAG file
does through the pipeline) imports no parser and reads no contract file.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from functools import cache

from knowdo.formats.base import (
    DuplicateKeys,
    FastPathUnavailable,
    FileRejected,
    FormatSpec,
    OutOfScope,
    ParseContext,
    ParseFn,
    Rejection,
    Row,
    SniffFn,
    TableChunk,
    TablesFn,
)

__all__ = [
    "FORMATS",
    "DuplicateKeys",
    "FastPathUnavailable",
    "FileRejected",
    "FormatSpec",
    "OutOfScope",
    "ParseContext",
    "ParseFn",
    "Rejection",
    "Row",
    "SniffFn",
    "TableChunk",
    "TablesFn",
]


@cache
def _registry() -> dict[str, FormatSpec]:
    """Every public module of this package that defines FORMAT_SPECS contributes its formats.

    Private modules (`_csv`, `_arrow`, ...) are helpers imported by the formats that use them:
    skipping them keeps pyarrow out of `knowdo check` and the DAGs, which never load a file."""
    specs: dict[str, FormatSpec] = {}
    public = (
        m for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_") and m.name != "base"
    )
    for module_info in sorted(public, key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for spec in getattr(module, "FORMAT_SPECS", ()):
            if spec.name in specs:
                raise RuntimeError(f"format {spec.name} defined twice")
            specs[spec.name] = _bounded(spec)
    return specs


def _bounded(spec: FormatSpec) -> FormatSpec:
    """issue 13: every format's row parser runs within the bounds (formats/_bounds.py)."""
    from knowdo.formats._bounds import bounded_parse

    return dataclasses.replace(
        spec, parse=bounded_parse(spec.parse, spec.columns, json=spec.name.endswith("-json"))
    )


class _Formats(Mapping[str, FormatSpec]):
    """{format name: FormatSpec}, built the first time it is read."""

    def __getitem__(self, name: str) -> FormatSpec:
        return _registry()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(_registry())

    def __len__(self) -> int:
        return len(_registry())

    def __repr__(self) -> str:
        return f"FORMATS({', '.join(sorted(self))})"


FORMATS: Mapping[str, FormatSpec] = _Formats()
