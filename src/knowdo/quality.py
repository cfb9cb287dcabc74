"""The quality gate: GX Core checkpoints on the candidate marts (write-audit-publish).

Suites live as code in expectations/suites/<table>.json (GX's own suite format). The warehouse
credentials reach GX only through `${KNOWDO_GX_WAREHOUSE_URL}` substitution, never in a file.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowdo.config import Settings

log = logging.getLogger(__name__)
DATASOURCE = "knowdo_warehouse"
EXAMPLE_ROWS = 5


@dataclass
class ExpectationFailure:
    expectation: str
    column: str | None
    description: str
    unexpected_count: int | None
    examples: list[Any] = field(default_factory=list)

    def line(self) -> str:
        where = f" on {self.column}" if self.column else ""
        n = f" ({self.unexpected_count} rows)" if self.unexpected_count is not None else ""
        ex = f"; e.g. {self.examples[:EXAMPLE_ROWS]}" if self.examples else ""
        return f"{self.expectation}{where}{n}: {self.description}{ex}"


@dataclass
class SuiteOutcome:
    suite: str
    table: str
    success: bool
    evaluated: int
    failures: list[ExpectationFailure]


@dataclass
class GateResult:
    schema: str
    outcomes: list[SuiteOutcome]
    data_docs: str | None

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    def summary(self) -> str:
        lines = []
        for o in self.outcomes:
            status = "passed" if o.success else "FAILED"
            lines.append(f"{self.schema}.{o.table}: suite {o.suite} {status} "
                         f"({o.evaluated - len(o.failures)}/{o.evaluated} expectations met)")
            lines += [f"  - {f.line()}" for f in o.failures]
        if self.data_docs:
            lines.append(f"Data Docs: {self.data_docs}")
        return "\n".join(lines)


def suite_files(settings: Settings) -> list[Path]:
    return sorted((settings.gx_dir / "suites").glob("*.json"))


def _context(settings: Settings):
    import great_expectations as gx

    ctx = gx.get_context(mode="ephemeral")
    docs = settings.gx_docs_dir
    docs.mkdir(parents=True, exist_ok=True)
    ctx.add_data_docs_site(
        site_name="knowdo",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return ctx


def _failure(result) -> ExpectationFailure:
    cfg = result.expectation_config
    kwargs = cfg.kwargs or {}
    res = result.result or {}
    examples = res.get("partial_unexpected_list") or res.get("details", {}).get("unexpected_rows") or []
    if not examples and "observed_value" in res:
        examples = [f"observed {res['observed_value']}"]
    description = (getattr(cfg, "description", None) or kwargs.get("description")
                   or (cfg.meta or {}).get("why") or cfg.type.replace("_", " "))
    errors = [v.get("exception_message") for v in (result.exception_info or {}).values()
              if isinstance(v, dict) and v.get("raised_exception")]
    if errors:  # an expectation that could not be evaluated fails the gate and says why
        description = f"{description} — could not be evaluated: {errors[0].splitlines()[0]}"
    return ExpectationFailure(
        expectation=cfg.type,
        column=kwargs.get("column") or (
            ",".join(kwargs["column_list"]) if "column_list" in kwargs else
            f"{kwargs['column_A']},{kwargs['column_B']}" if "column_A" in kwargs else None),
        description=str(description),
        unexpected_count=res.get("unexpected_count"),
        examples=[_jsonable(e) for e in examples[:EXAMPLE_ROWS]],
    )


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)


def run_gate(schema: str = "marts_candidate", settings: Settings | None = None, run_id: str = "manual") -> GateResult:
    """Validate every suite's table in `schema`; build Data Docs; return what failed and why."""
    import great_expectations as gx
    from great_expectations.core.expectation_suite import ExpectationSuite

    settings = settings or Settings.from_env()
    ctx = _context(settings)
    source = ctx.data_sources.add_postgres(DATASOURCE, connection_string="${KNOWDO_GX_WAREHOUSE_URL}")
    outcomes: list[SuiteOutcome] = []
    for path in suite_files(settings):
        spec = json.loads(path.read_text(encoding="utf-8"))
        table = spec.get("meta", {}).get("table", spec["name"])
        suite = ctx.suites.add(ExpectationSuite(**spec))
        asset = source.add_table_asset(name=f"{schema}.{table}", table_name=table, schema_name=schema)
        batch_def = asset.add_batch_definition_whole_table("whole table")
        vd = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=f"{schema}.{table}", data=batch_def, suite=suite)
        )
        checkpoint = ctx.checkpoints.add(gx.Checkpoint(
            name=f"gate_{schema}_{table}", validation_definitions=[vd],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="docs")],
            result_format={"result_format": "COMPLETE", "partial_unexpected_count": EXAMPLE_ROWS},
        ))
        res = checkpoint.run(run_id=None)
        for validation in res.run_results.values():
            failures = [_failure(r) for r in validation.results if not r.success]
            outcomes.append(SuiteOutcome(spec["name"], table, validation.success,
                                         len(validation.results), failures))
    index = settings.gx_docs_dir / "index.html"
    return GateResult(schema, outcomes, str(index) if index.exists() else None)


def record_gate(result: GateResult, run_id: str, published: bool, settings: Settings | None = None) -> None:
    """Store the outcome in ops.quality_gate_runs for the data-health dashboard (idempotent per run)."""
    from knowdo.db import connect

    settings = settings or Settings.from_env()
    with connect(settings.transformer_url) as conn, conn.transaction():
        for o in result.outcomes:
            conn.execute(
                "insert into ops.quality_gate_runs (run_id, suite_name, success, evaluated, failed, failures, published)"
                " values (%s, %s, %s, %s, %s, %s, %s) on conflict (run_id, suite_name) do update set"
                " checked_at = now(), success = excluded.success, evaluated = excluded.evaluated,"
                " failed = excluded.failed, failures = excluded.failures, published = excluded.published",
                (run_id, o.suite, o.success, o.evaluated, len(o.failures),
                 json.dumps([f.__dict__ for f in o.failures], default=str), published),
            )


def mark_published(run_id: str, settings: Settings | None = None) -> None:
    from knowdo.db import connect

    settings = settings or Settings.from_env()
    with connect(settings.transformer_url) as conn, conn.transaction():
        conn.execute("update ops.quality_gate_runs set published = true where run_id = %s", (run_id,))
