"""The quality gate: GX Core checkpoints decide what is published (write-audit-publish).

Suites live as code in GX's own JSON format, discovered from the folder:

- expectations/suites/raw/<table>.json    audit the current rows of raw.<table> (rows of batches
                                          still loaded; failed and superseded batches stay for
                                          audit)
- expectations/suites/marts/<table>.json  audit marts_candidate.<table> before it may be published
- expectations/conventions.json           house rules added to every candidate mart by its columns
                                          (populations > 0, shares within 0..100, row count within a
                                          tolerance of the published version)

A candidate mart without a suite of its own is still audited by the conventions (and the result says
so). Expectations may use GX suite parameters computed at run time (`{"$PARAMETER":
"published_row_count * 0.5"}`); when a parameter has no value (nothing published yet) the
expectation is skipped and the outcome says why, never silently passed.

The warehouse credentials reach GX only through `${KNOWDO_GX_WAREHOUSE_URL}` substitution.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from knowdo.config import Settings

log = logging.getLogger(__name__)
DATASOURCE = "knowdo_warehouse"
EXAMPLE_ROWS = 5
LAYERS = ("raw", "marts")
RAW_SCHEMA = "raw"
PUBLISHED_SCHEMA = "marts"
# Rows of batches still current: failed loads never reached raw, superseded ones stay for audit
# only.
DEFAULT_CURRENT_ROWS = (
    "select t.* from {schema}.{table} t"
    " where t.batch_id in (select batch_id from ops.load_batches where status = 'loaded')"
)
# Raw rows are named by where they came from, so a failure says which feed and batch to look at.
RAW_ROW_KEYS = ["feed_id", "batch_id", "row_number"]
_PARAMETER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_$]*")
_FUNCTIONS = {"trunc", "round", "abs", "now"}


class GateError(RuntimeError):
    """The gate could not run at all (not a failed expectation); the message says why."""


@dataclass
class ExpectationFailure:
    expectation: str
    column: str | None
    description: str
    unexpected_count: int | None
    examples: list[Any] = field(default_factory=list)
    # raw rows only: the feeds and load batches the unexpected rows came from ("feed batch 12")
    batches: list[str] = field(default_factory=list)

    def line(self) -> str:
        where = f" on {self.column}" if self.column else ""
        n = f" ({self.unexpected_count} rows)" if self.unexpected_count is not None else ""
        origin = f" in {', '.join(self.batches)}" if self.batches else ""
        ex = f"; e.g. {self.examples[:EXAMPLE_ROWS]}" if self.examples else ""
        return f"{self.expectation}{where}{n}{origin}: {self.description}{ex}"


@dataclass
class SuiteOutcome:
    suite: str
    table: str
    success: bool
    evaluated: int
    failures: list[ExpectationFailure]
    layer: str = "marts"
    schema: str = "marts_candidate"
    notes: list[str] = field(default_factory=list)
    fingerprint: str | None = None

    @property
    def qualified_table(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass
class GateResult:
    schema: str
    outcomes: list[SuiteOutcome]
    data_docs: str | None

    @property
    def success(self) -> bool:
        return bool(self.outcomes) and all(o.success for o in self.outcomes)

    @property
    def failed_expectations(self) -> list[str]:
        return sorted({f.expectation for o in self.outcomes for f in o.failures})

    def mart_tables(self) -> list[str]:
        return [o.table for o in self.outcomes if o.layer == "marts"]

    def summary(self) -> str:
        lines = []
        if not self.outcomes:
            lines.append("no suites and no candidate marts found: nothing was audited")
        for o in self.outcomes:
            status = "passed" if o.success else "FAILED"
            lines.append(
                f"{o.qualified_table}: suite {o.suite} {status} "
                f"({o.evaluated - len(o.failures)}/{o.evaluated} expectations met)"
            )
            lines += [f"  - {f.line()}" for f in o.failures]
            lines += [f"  note: {n}" for n in o.notes]
        if self.data_docs:
            lines.append(f"Data Docs: {self.data_docs}")
        return "\n".join(lines)


@dataclass
class Suite:
    """One suite file (or a conventions-only suite for a candidate mart that has none)."""

    name: str
    layer: str
    table: str
    spec: dict
    path: Path | None = None


# --- discovery ---------------------------------------------------------------------------------


def suite_files(settings: Settings) -> list[Path]:
    root = settings.gx_dir / "suites"
    return sorted(p for layer in LAYERS for p in (root / layer).glob("*.json"))


def load_suites(settings: Settings) -> list[Suite]:
    suites = []
    names: dict[str, Path] = {}
    for path in suite_files(settings):
        layer = path.parent.name
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise GateError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        name = spec.get("name") or path.stem
        if name in names:
            raise GateError(f"{path}: suite name '{name}' is already used by {names[name]}")
        names[name] = path
        spec["name"] = name
        table = (spec.get("meta") or {}).get("table", path.stem)
        suites.append(Suite(name, layer, table, spec, path))
    return suites


def load_conventions(settings: Settings) -> list[dict]:
    path = settings.gx_dir / "conventions.json"
    if not path.exists():
        return []
    return json.loads(path.read_text(encoding="utf-8")).get("rules", [])


def convention_expectations(
    rules: list[dict], columns: list[str], skip: tuple[str, ...] | list[str] = ()
) -> list[dict]:
    """The house rules that apply to a table with these columns, minus the ones the mart's suite
    opts out of by id (`meta.skip_conventions`) (pure: no database)."""
    out = []
    for rule in rules:
        if rule.get("id") in skip:
            continue
        template = rule["expectation"]
        if rule.get("every_table"):
            out.append(copy.deepcopy(template))
            continue
        pattern = re.compile(rule["column_matches"])
        for column in columns:
            if pattern.search(column):
                exp = copy.deepcopy(template)
                exp.setdefault("kwargs", {})["column"] = column
                out.append(exp)
    return out


def merge_expectations(own: list[dict], extra: list[dict]) -> list[dict]:
    """Suite expectations plus extra ones not already there (same type and arguments)."""
    seen = {(e["type"], json.dumps(e.get("kwargs", {}), sort_keys=True)) for e in own}
    merged = list(own)
    for e in extra:
        key = (e["type"], json.dumps(e.get("kwargs", {}), sort_keys=True))
        if key not in seen:
            seen.add(key)
            merged.append(e)
    return merged


def parameter_names(expectation: dict) -> set[str]:
    """Names of the suite parameters an expectation's arguments use."""
    names: set[str] = set()
    for value in (expectation.get("kwargs") or {}).values():
        if isinstance(value, dict) and "$PARAMETER" in value:
            names |= {
                n
                for n in _PARAMETER_NAME.findall(str(value["$PARAMETER"]))
                if n.lower() not in _FUNCTIONS
            }
    return names


def resolve_parameters(
    expectations: list[dict], parameters: dict[str, Any], reasons: dict[str, str]
) -> tuple[list[dict], list[str]]:
    """Keep the expectations whose parameters all have a value; say why each other one is
    skipped."""
    kept, notes = [], []
    for e in expectations:
        missing = sorted(n for n in parameter_names(e) if parameters.get(n) is None)
        if missing:
            why = "; ".join(reasons.get(n, f"no value for {n}") for n in missing)
            notes.append(f"skipped {e['type']}: {why}")
        else:
            kept.append(e)
    return kept, notes


# --- running -----------------------------------------------------------------------------------


DOCS_SITE = "knowdo"


def _context(settings: Settings):
    import logging

    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX logs two INFO lines per expectation argument it fills in (~2,000 lines a gate run) and
    # draws a progress bar per suite on stderr: the task log keeps the suites' outcomes instead
    logging.getLogger("great_expectations.expectations.expectation").setLevel(logging.WARNING)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    docs = settings.gx_docs_dir
    docs.mkdir(parents=True, exist_ok=True)
    ctx.add_data_docs_site(
        site_name=DOCS_SITE,
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return ctx


def batches_of(rows: list[Any], limit: int = 10) -> list[str]:
    """Which feeds and load batches a list of unexpected raw rows came from (pure): rows are dicts
    with feed_id and batch_id (GX's unexpected index list, or an unexpected-rows query's rows)."""
    seen: dict[tuple[str, Any], int] = {}
    for row in rows:
        if isinstance(row, dict) and row.get("feed_id") is not None and "batch_id" in row:
            key = (str(row["feed_id"]), row["batch_id"])
            seen[key] = seen.get(key, 0) + 1
    named = [
        f"{feed} batch {batch}" if batch is not None else feed
        for feed, batch in sorted(seen, key=lambda k: (k[0], str(k[1])))
    ]
    return named[:limit] + ([f"and {len(named) - limit} more"] if len(named) > limit else [])


def _failure(result) -> ExpectationFailure:
    cfg = result.expectation_config
    kwargs = cfg.kwargs or {}
    res = result.result or {}
    rows = res.get("unexpected_index_list") or res.get("details", {}).get("unexpected_rows") or []
    examples = (
        res.get("partial_unexpected_index_list")
        or res.get("partial_unexpected_list")
        or res.get("details", {}).get("unexpected_rows")
        or []
    )
    count = res.get("unexpected_count")
    if count is None and cfg.type == "unexpected_rows_expectation":
        count = res.get("observed_value")  # that expectation reports its row count here
    if not examples and "observed_value" in res:
        examples = [f"observed {res['observed_value']}"]
    description = (
        getattr(cfg, "description", None)
        or kwargs.get("description")
        or (cfg.meta or {}).get("why")
        or cfg.type.replace("_", " ")
    )
    errors = [
        v.get("exception_message")
        for v in (result.exception_info or {}).values()
        if isinstance(v, dict) and v.get("raised_exception")
    ]
    if errors:  # an expectation that could not be evaluated fails the gate and says why
        description = f"{description} — could not be evaluated: {errors[0].splitlines()[0]}"
    return ExpectationFailure(
        expectation=cfg.type,
        column=kwargs.get("column")
        or (
            ",".join(kwargs["column_list"])
            if "column_list" in kwargs
            else f"{kwargs['column_A']},{kwargs['column_B']}"
            if "column_A" in kwargs
            else None
        ),
        description=str(description),
        unexpected_count=count if isinstance(count, int) else None,
        examples=[_jsonable(e) for e in examples[:EXAMPLE_ROWS]],
        batches=batches_of(rows if isinstance(rows, list) else []),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)


def fingerprint(conn, schema: str, table: str) -> str:
    """Row count and an order-independent hash of every row: changes when any value changes."""
    from psycopg import sql

    count, digest = conn.execute(
        sql.SQL(
            "select count(*), coalesce(sum(hashtextextended(t::text, 0)::numeric), 0) from {} t"
        ).format(sql.Identifier(schema, table))
    ).fetchone()
    return f"{count}:{digest}"


def _tables(conn, schema: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = %s"
            " and table_type = 'BASE TABLE' and table_name not like '%%\\_\\_%%' order by 1",
            (schema,),
        )
    ]


def _columns(conn, schema: str, table: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "select column_name from information_schema.columns where table_schema = %s"
            " and table_name = %s order by ordinal_position",
            (schema, table),
        )
    ]


def _published_row_count(conn, table: str) -> int | None:
    from psycopg import sql

    if (
        conn.execute("select to_regclass(%s)", (f"{PUBLISHED_SCHEMA}.{table}",)).fetchone()[0]
        is None
    ):
        return None
    count = conn.execute(
        sql.SQL("select count(*) from {}").format(sql.Identifier(PUBLISHED_SCHEMA, table))
    ).fetchone()[0]
    return count or None


@dataclass
class Planned:
    suite: Suite
    runnable: bool
    parameters: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def plan(
    settings: Settings, schema: str = "marts_candidate", layers: tuple[str, ...] = LAYERS
) -> list[Planned]:
    """What the gate will validate: each suite, whether its table exists, its run-time
    parameters."""
    from knowdo.db import connect

    suites = [s for s in load_suites(settings) if s.layer in layers]
    rules = load_conventions(settings)
    planned = []
    with connect(settings.transformer_url) as conn:
        candidates = _tables(conn, schema) if "marts" in layers else []
        with_suite = {s.table for s in suites if s.layer == "marts"}
        for table in candidates:
            if table not in with_suite:
                suites.append(
                    Suite(
                        f"conventions__{table}",
                        "marts",
                        table,
                        {"name": f"conventions__{table}", "expectations": []},
                    )
                )
        for suite in suites:
            if suite.layer == "raw":
                exists = (
                    conn.execute(
                        "select to_regclass(%s)", (f"{RAW_SCHEMA}.{suite.table}",)
                    ).fetchone()[0]
                    is not None
                )
                planned.append(
                    Planned(
                        suite,
                        exists,
                        notes=[]
                        if exists
                        else [f"{RAW_SCHEMA}.{suite.table} does not exist yet: suite not run"],
                    )
                )
                continue
            if suite.table not in candidates:
                planned.append(
                    Planned(
                        suite,
                        False,
                        notes=[
                            (
                                f"{schema}.{suite.table} was not built: suite not run,"
                                " table not published"
                            )
                        ],
                    )
                )
                continue
            notes = (
                []
                if suite.path
                else [
                    (
                        "no suite of its own in expectations/suites/marts/: only the house"
                        f" conventions were checked (write {suite.table}.json)"
                    )
                ]
            )
            skip = (suite.spec.get("meta") or {}).get("skip_conventions", [])
            extra = convention_expectations(rules, _columns(conn, schema, suite.table), skip)
            if skip:
                notes.append(f"house conventions skipped by this suite: {', '.join(skip)}")
            suite.spec["expectations"] = merge_expectations(
                suite.spec.get("expectations", []), extra
            )
            planned.append(
                Planned(
                    suite,
                    True,
                    {"published_row_count": _published_row_count(conn, suite.table)},
                    notes,
                )
            )
    return planned


def run_gate(
    schema: str = "marts_candidate",
    settings: Settings | None = None,
    layers: tuple[str, ...] = LAYERS,
) -> GateResult:
    """Validate the raw suites and every candidate mart in `schema`; build Data Docs; say what
    failed.

    A suite whose table is missing is reported, not run: a raw table no feed has filled yet passes
    with a note; a mart suite whose candidate was not built fails (nothing half-built is published).
    `layers=("raw",)` audits the raw tables only (the raw rows as loaded, no marts needed).

    Every raw suite blocks publishing like a mart suite: a raw row that breaks its feed's contract
    got past the loader (a parser bug, a schema change, a hand edit), and marts built on it can be
    wrong in ways their own suites do not see (a missing region-month reads as a lower rate). The
    marts keep their last good version and the failure names the feed, batch and example rows.
    """
    import great_expectations as gx
    from great_expectations.core.expectation_suite import ExpectationSuite

    from knowdo.db import connect

    settings = settings or Settings.from_env()
    ctx = _context(settings)
    source = ctx.data_sources.add_postgres(
        DATASOURCE, connection_string="${KNOWDO_GX_WAREHOUSE_URL}"
    )
    outcomes: list[SuiteOutcome] = []
    for planned in plan(settings, schema, layers):
        suite, parameters, notes = planned.suite, planned.parameters, planned.notes
        table_schema = RAW_SCHEMA if suite.layer == "raw" else schema
        if not planned.runnable:
            # an unfilled raw table is no reason to withhold marts; an unbuilt mart is
            outcomes.append(
                SuiteOutcome(
                    suite.name,
                    suite.table,
                    suite.layer == "raw",
                    0,
                    [],
                    suite.layer,
                    table_schema,
                    notes,
                )
            )
            continue
        reasons = {
            "published_row_count": (
                f"nothing published yet in {PUBLISHED_SCHEMA}.{suite.table} (first publication):"
                " row count not compared with a previous version"
            )
        }
        expectations, skipped = resolve_parameters(
            suite.spec.get("expectations", []), parameters, reasons
        )
        spec = {k: v for k, v in suite.spec.items() if k in ("name", "meta", "notes")}
        gx_suite = ctx.suites.add(ExpectationSuite(**spec, expectations=expectations))
        asset_name = f"{table_schema}.{suite.table}"
        if suite.layer == "raw":
            query = (suite.spec.get("meta") or {}).get("current_rows", DEFAULT_CURRENT_ROWS)
            asset = source.add_query_asset(
                name=asset_name, query=query.format(schema=RAW_SCHEMA, table=suite.table)
            )
        else:
            asset = source.add_table_asset(
                name=asset_name, table_name=suite.table, schema_name=table_schema
            )
        batch_def = asset.add_batch_definition_whole_table("whole table")
        vd = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=asset_name, data=batch_def, suite=gx_suite)
        )
        checkpoint = ctx.checkpoints.add(
            gx.Checkpoint(
                name=f"gate_{table_schema}_{suite.table}",
                validation_definitions=[vd],
                # Data Docs once for the whole gate, below: an UpdateDataDocsAction per suite
                # rebuilt the index and recompiled GX's templates each time (half the gate's time)
                actions=[],
                result_format={
                    "result_format": "COMPLETE",
                    "partial_unexpected_count": EXAMPLE_ROWS,
                    **(
                        {"unexpected_index_column_names": RAW_ROW_KEYS}
                        if suite.layer == "raw"
                        else {}
                    ),
                },
            )
        )
        res = checkpoint.run(
            expectation_parameters={k: v for k, v in parameters.items() if v is not None}
        )
        for validation in res.run_results.values():
            failures = [_failure(r) for r in validation.results if not r.success]
            outcomes.append(
                SuiteOutcome(
                    suite.name,
                    suite.table,
                    validation.success,
                    len(validation.results),
                    failures,
                    suite.layer,
                    table_schema,
                    notes + skipped,
                )
            )
    if any(o.evaluated for o in outcomes):
        ctx.build_data_docs(site_names=[DOCS_SITE])
    # the fingerprint of what was audited: publish refuses a candidate that changed since
    with connect(settings.transformer_url) as conn:
        for o in outcomes:
            if o.layer == "marts" and o.evaluated:
                o.fingerprint = fingerprint(conn, o.schema, o.table)
    index = settings.gx_docs_dir / "index.html"
    return GateResult(schema, outcomes, str(index) if index.exists() else None)


# --- recording ---------------------------------------------------------------------------------


def record_gate(
    result: GateResult, run_id: str, published: bool, settings: Settings | None = None
) -> None:
    """Store the outcome in ops.quality_gate_runs for the data-health dashboard (idempotent per
    run)."""
    from knowdo.db import connect

    settings = settings or Settings.from_env()
    with connect(settings.transformer_url) as conn, conn.transaction():
        for o in result.outcomes:
            conn.execute(
                "insert into ops.quality_gate_runs (run_id, suite_name, success, evaluated, failed,"
                " failures, published, layer, table_name, fingerprint, notes, data_docs)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " on conflict (run_id, suite_name) do update set checked_at = now(),"
                " success = excluded.success, evaluated = excluded.evaluated,"
                " failed = excluded.failed, failures = excluded.failures,"
                " published = excluded.published, layer = excluded.layer,"
                " table_name = excluded.table_name, fingerprint = excluded.fingerprint,"
                " notes = excluded.notes, data_docs = excluded.data_docs",
                (
                    run_id,
                    o.suite,
                    o.success,
                    o.evaluated,
                    len(o.failures),
                    json.dumps([asdict(f) for f in o.failures], default=str),
                    published,
                    o.layer,
                    o.qualified_table,
                    o.fingerprint,
                    json.dumps(o.notes),
                    result.data_docs,
                ),
            )


def mark_published(run_id: str, settings: Settings | None = None) -> None:
    from knowdo.db import connect

    settings = settings or Settings.from_env()
    with connect(settings.transformer_url) as conn, conn.transaction():
        conn.execute(
            "update ops.quality_gate_runs set published = true where run_id = %s", (run_id,)
        )
