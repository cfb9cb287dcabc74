"""The impact marts' pipeline step: evaluate the registry on this run's published counts.

Runs in the transform after dbt built the candidate marts and before the quality gate:

1. reads the implementation registry's current rows (intermediate.int_implementation__registry_
   current) and, for the outcome indicators it names, the monthly series of
   marts_candidate.fct_service_use as they will be published (counts after disclosure control:
   a suppressed cell is a missing month, never its hidden value);
2. runs knowdo.impact.evaluation over them;
3. writes the rows of marts_candidate.mart_implementation_impact and
   mart_implementation_counterfactual in one transaction: dbt defines and builds those two tables
   empty (columns, types, contracts, docs), this step fills them;
4. (knowdo.pipeline.impact_marts) runs their dbt data tests, and the quality gate then audits them
   with the other candidate marts.

Nothing here computes a statistic: that is knowdo.impact.
"""

from __future__ import annotations

import io
import logging
import math
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from knowdo.config import Settings
from knowdo.impact.evaluation import (
    COUNTERFACTUAL_COLUMNS,
    IMPACT_COLUMNS,
    evaluate,
    implementations_from_registry,
)

log = logging.getLogger(__name__)

REGISTRY_VIEW = ("intermediate", "int_implementation__registry_current")
SERIES_TABLE = ("marts_candidate", "fct_service_use")
ICB_ARCS = ("seeds", "ref_icb_arcs")  # the ARC of an England ICB (row-level security)
TARGET_SCHEMA = "marts_candidate"
IMPACT_TABLE = "mart_implementation_impact"
COUNTERFACTUAL_TABLE = "mart_implementation_counterfactual"
# knowdo.impact's names -> the marts' (the confidence level is in the name, as in fct_service_use)
RENAMES = {
    "lower": "lower_95",
    "upper": "upper_95",
    "counterfactual_lower": "counterfactual_lower_95",
    "counterfactual_upper": "counterfactual_upper_95",
}
INTEGER_COLUMNS = ("event_time", "n", "n_pre", "n_post")
DBT_SELECTOR = "path:models/marts/impact"


def _frame(conn: psycopg.Connection, query: sql.Composable, params: Any = None) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(query, params)
        columns = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=columns)


def _relation_exists(conn: psycopg.Connection, schema: str, name: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("select to_regclass(%s) is not null", (f'"{schema}"."{name}"',))
        return bool(cur.fetchone()[0])


def read_registry(conn: psycopg.Connection) -> pd.DataFrame:
    """The registry's current rows; empty when no registry was ever loaded."""
    if not _relation_exists(conn, *REGISTRY_VIEW):
        return pd.DataFrame()
    return _frame(conn, sql.SQL("select * from {}").format(sql.Identifier(*REGISTRY_VIEW)))


def read_series(conn: psycopg.Connection, indicators: list[str]) -> pd.DataFrame:
    """The monthly published series of these indicators, in knowdo.impact.evaluation's columns.
    A suppressed cell's count is NULL (its rounded value is never read)."""
    query = sql.SQL(
        """
        select
            s.indicator_code as outcome,
            s.geography_level as site_level,
            s.geography_code as site_code,
            s.country_code,
            case
                when s.geography_level = 'arc' then s.geography_code
                else icb_arcs.arc_code
            end as arc_code,
            s.stratifier,
            s.group_code as group_name,
            coalesce(s.is_reference_group, false) as is_reference,
            s.period_start as month,
            case when s.is_suppressed then null else s.numerator end::float8 as count,
            s.denominator::float8 as population
        from {} as s
        left join {} as icb_arcs
            on s.geography_level = 'icb' and icb_arcs.icb_code = s.geography_code
        where s.period_type = 'month' and s.indicator_code = any(%s)
        order by s.indicator_code, s.geography_level, s.geography_code, s.stratifier,
            s.group_code, s.period_start
        """
    ).format(sql.Identifier(*SERIES_TABLE), sql.Identifier(*ICB_ARCS))
    return _frame(conn, query, (indicators,))


def _copy(conn: psycopg.Connection, table: str, frame: pd.DataFrame):
    if not _relation_exists(conn, TARGET_SCHEMA, table):
        raise RuntimeError(
            f"{TARGET_SCHEMA}.{table} does not exist: dbt builds it (empty) before this step; "
            "run the transform's dbt build first"
        )
    target = sql.Identifier(TARGET_SCHEMA, table)
    frame = frame.rename(columns=RENAMES)
    columns = list(frame.columns)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("delete from {}").format(target))
        if frame.empty:
            return
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, header=False, na_rep="\\N")
        buffer.seek(0)
        statement = sql.SQL("copy {} ({}) from stdin with (format csv, null '\\N')").format(
            target, sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with cur.copy(statement) as copy:
            while chunk := buffer.read(1 << 16):
                copy.write(chunk)


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    """For COPY: infinities as NULL (NaN and None already are), whole-number columns as integers
    (NULL-able), dates as ISO text."""
    out = frame.copy()
    numeric = out.select_dtypes("number").columns
    out[numeric] = out[numeric].replace([math.inf, -math.inf], float("nan"))
    for column in INTEGER_COLUMNS:
        if column in out.columns:
            out[column] = pd.array(
                [None if pd.isna(v) else int(v) for v in out[column]], dtype="Int64"
            )
    return out


def refresh(settings: Settings | None = None, run_id: str | None = None) -> dict[str, int]:
    """Evaluate the registry on the candidate fct_service_use and write the impact marts' rows
    (in one transaction); the row counts written. The rows carry no run id: they are a function of
    the registry and the published counts only, so a rerun on the same data is identical (the
    gate's history records which run audited them); `run_id` is only logged.
    knowdo.pipeline.impact_marts then runs the marts' dbt tests."""
    from knowdo.db import connect

    settings = settings or Settings.from_env()
    with connect(settings.transformer_url) as conn:
        registry = read_registry(conn)
        if registry.empty:
            implementations = []
            series = pd.DataFrame()
        else:
            implementations = implementations_from_registry(registry)
            indicators = sorted({o for imp in implementations for o in imp.outcomes})
            series = read_series(conn, indicators)
        if implementations:
            impact, counterfactual = evaluate(implementations, series)
        else:
            impact = pd.DataFrame(columns=list(IMPACT_COLUMNS))
            counterfactual = pd.DataFrame(columns=list(COUNTERFACTUAL_COLUMNS))
        with conn.transaction():
            _copy(conn, IMPACT_TABLE, _clean(impact))
            _copy(conn, COUNTERFACTUAL_TABLE, _clean(counterfactual))
    counts = {IMPACT_TABLE: len(impact), COUNTERFACTUAL_TABLE: len(counterfactual)}
    log.info("impact marts (run %s): %s (%d implementations)", run_id, counts, len(implementations))
    return counts
