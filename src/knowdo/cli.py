"""The `knowdo` command: check, ingest and list feeds; migrate the loader schema; make sample data;
and the platform's operations (the main job, the quality gate and publish, the watchdog, Superset
assets and access, row-level security SQL, the stack's stray processes): one command for all."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from knowdo.config import Settings

err = Console(stderr=True)
# piped output (CI logs, `| less`) gets wide lines instead of rich's 80-column default
out = Console(width=None if sys.stdout.isatty() else 200)
MAX_ERRORS = 100


def _fail(message: str, code: int = 2) -> None:
    """One line on stderr (never a traceback), then exit with `code`."""
    one_line = " ".join(str(message).split())
    print(f"knowdo: {one_line}", file=sys.stderr)
    sys.exit(code)


# commands that read files or the registry: the format registry (with the template formats built
# from their contracts) is built first, so a broken contract file is one clear line
_NEEDS_FORMATS = ("check", "ingest", "feeds")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """KnowDo: feeds in, equity-stratified marts out."""
    if ctx.invoked_subcommand not in _NEEDS_FORMATS:
        return
    from knowdo.contracts import ContractError
    from knowdo.formats import FORMATS

    try:
        len(FORMATS)
    except ContractError as exc:
        _fail(str(exc))


@main.group()
def db() -> None:
    """The loader's tables in the warehouse (schemas raw and ops)."""


@db.command("migrate")
def db_migrate() -> None:
    """Create or update the ops and raw tables (idempotent)."""
    from knowdo.db import connect, migrate

    try:
        with connect() as conn:
            applied = migrate(conn)
    except Exception as exc:  # noqa: BLE001 - one clear line, never a traceback
        _fail(f"cannot migrate the warehouse: {exc}".strip())
    out.print(
        f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "")
    )


def _load_feeds(settings: Settings):
    from knowdo.registry import RegistryError, load_registry

    try:
        return load_registry(settings.feeds_file)
    except RegistryError as exc:
        _fail(str(exc))


@main.command()
def feeds() -> None:
    """List the feed registry with each feed's last load."""
    from knowdo.db import connect

    settings = Settings.from_env()
    registry = _load_feeds(settings)
    last: dict[str, tuple] = {}
    try:
        with connect() as conn:
            for row in conn.execute(
                "select distinct on (feed_id) feed_id, file_name, status, rows_loaded,"
                " rows_rejected, finished_at from ops.load_batches order by feed_id, batch_id desc"
            ):
                last[row[0]] = row[1:]
    except Exception as exc:  # noqa: BLE001
        err.print(f"[yellow]warehouse not reachable, showing the registry only:[/yellow] {exc}")
    table = Table(
        "feed",
        "publisher",
        "kind",
        "domain",
        "format",
        "last file",
        "status",
        "loaded",
        "rejected",
        "at",
    )
    for feed in registry.values():
        file_name, status, loaded, rejected, at = last.get(
            feed.id, ("-", "never loaded", "", "", "")
        )
        table.add_row(
            feed.id,
            feed.publisher_name,
            feed.publisher_kind,
            feed.domain,
            feed.format,
            file_name,
            status,
            str(loaded),
            str(rejected),
            str(at or ""),
        )
    out.print(table)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--feed", "feed_id", required=True, help="Feed id from the registry.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def ingest(file: Path, feed_id: str, as_json: bool) -> None:
    """Land and load one FILE for the feed ID. Exit 0 loaded, 1 rows rejected, 2 file failed."""
    from knowdo.db import connect
    from knowdo.loading import ingest_file

    settings = Settings.from_env()
    registry = _load_feeds(settings)
    if feed_id not in registry:
        _fail(f"unknown feed '{feed_id}' (known: {', '.join(sorted(registry))})")
    if not file.is_file():
        _fail(f"{file}: no such file")
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=as_json,
    ) as progress:
        task = progress.add_task(f"loading {file.name}", total=None)
        try:
            with connect() as conn:
                result = ingest_file(
                    conn,
                    registry[feed_id],
                    file,
                    settings.landing_dir,
                    on_progress=lambda n: progress.update(
                        task, description=f"loading {file.name}: {n:,} rows"
                    ),
                )
        except Exception as exc:  # noqa: BLE001
            _fail(f"{file}: could not be ingested: {exc}")
    payload = {
        "file": str(file),
        "feed": feed_id,
        "sha256": result.sha256,
        "batch_id": result.batch_id,
        "status": result.status,
        "already_loaded": result.already_loaded,
        "rows_read": result.rows_read,
        "rows_loaded": result.rows_loaded,
        "rows_rejected": result.rows_rejected,
        "rows_out_of_scope": result.rows_out_of_scope,
        "error": result.error,
        "superseded_batches": list(result.superseded),
    }
    if as_json:
        print(json.dumps(payload))
    else:
        again = " (already received: nothing to do)" if result.already_loaded else ""
        outside = (
            f", {result.rows_out_of_scope:,} out of the feed's scope"
            if result.rows_out_of_scope
            else ""
        )
        out.print(
            f"{file.name}: batch {result.batch_id} {result.status}{again}: "
            f"{result.rows_loaded:,} rows loaded, {result.rows_rejected:,} rejected{outside}"
        )
        if result.error:
            err.print(f"[red]{file.name}: {result.error}[/red]")
        if result.rows_rejected:
            out.print(
                f"see why: select * from ops.rejected_rows where batch_id = {result.batch_id};"
            )
        if result.rows_out_of_scope:
            out.print(
                "ids outside the mapping: select * from ops.out_of_scope_ids"
                f" where batch_id = {result.batch_id} order by row_count desc;"
            )
    if result.status == "failed":
        sys.exit(2)
    sys.exit(1 if result.rows_rejected else 0)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--format", "fmt", help="Format name; detected from the content when omitted.")
@click.option(
    "--feed",
    "feed_id",
    help="Check against this feed's mapping (default: the first "
    "feed of the format; for DHIS2 files, no mapping: structure and ids only).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def check(file: Path, fmt: str | None, feed_id: str | None, as_json: bool) -> None:
    """Parse and validate FILE without loading it.
    Exit 0 all valid, 1 rows rejected, 2 unreadable."""
    from knowdo.checking import MAPPED_FORMATS, check_file, detect_format
    from knowdo.formats import FORMATS, FileRejected

    if not file.is_file():
        _fail(f"{file}: no such file")
    try:
        fmt = fmt or detect_format(file)
    except FileRejected as exc:
        _fail(f"{file}: {exc}")
    if fmt not in FORMATS:
        _fail(f"unknown format '{fmt}' (known: {', '.join(sorted(FORMATS))})")
    settings = Settings.from_env()
    ctx = None
    if settings.feeds_file.exists():
        from knowdo.registry import load_registry

        feeds_ = load_registry(settings.feeds_file)
        if feed_id and feed_id not in feeds_:
            _fail(f"unknown feed '{feed_id}' (known: {', '.join(sorted(feeds_))})")
        if feed_id:
            chosen = feeds_.get(feed_id)
        elif fmt in MAPPED_FORMATS:  # a ministry's file: no feed's mapping is assumed
            chosen = None
        else:
            chosen = next((f for f in feeds_.values() if f.format == fmt), None)
        ctx = chosen.parse_context(file_name=file.name) if chosen else None
    if ctx is None:
        from knowdo.formats import ParseContext

        ctx = ParseContext(file_name=file.name)
    from knowdo.isolation import run_isolated

    if FORMATS[fmt].load_tables:  # issue 13, speed: check runs the vectorised path; its libraries
        from knowdo.formats._check_tables import preload  # load before the child forks

        preload()
    try:  # issue 13: in a child process under the memory ceiling (knowdo.isolation)
        report = run_isolated(check_file, file, fmt, ctx, MAX_ERRORS, limits=ctx.limits)
    except FileRejected as exc:
        _fail(f"{file}: cannot be read as {fmt}: {exc}")
    except (OSError, ValueError, UnicodeError) as exc:  # one clear line, never a traceback
        _fail(f"{file}: cannot be read as {fmt}: {exc}")
    if as_json:
        print(json.dumps(report))
    else:
        outside = f", {report['rows_out_of_scope']:,} out of scope" if "coverage" in report else ""
        out.print(
            f"{file.name} ({fmt}): {report['rows_read']:,} rows read,"
            f" {report['rows_valid']:,} valid, {report['rows_rejected']:,} rejected{outside}"
        )
        for e in report["errors"]:
            where = f"{e['field']}={e['value']!r}: " if e["field"] else ""
            print(f"  row {e['row']}: {where}{e['reason']}")
        if coverage := report.get("coverage"):
            _print_coverage(coverage)
    sys.exit(1 if report["rows_rejected"] else 0)


def _print_coverage(coverage: dict) -> None:
    if coverage["feed"] is None:
        print(
            "  no feed mapping: structure checked (ids, periods, values); every well-formed row"
            " is out of scope. Pass --feed ID to check against a feed's mapping."
        )
    else:
        print(
            f"  mapping of feed {coverage['feed']}: {coverage['rows_in_scope']:,} rows in scope,"
            f" {coverage['rows_out_of_scope']:,} out of scope"
        )
    shown = coverage["unmapped_ids"][:20]
    if shown:
        print("  ids outside the mapping (rows):")
    for entry in shown:
        print(f"    {entry['kind']} {entry['id']}: {entry['rows']:,}")
    if len(coverage["unmapped_ids"]) > len(shown):
        print(f"    ... {len(coverage['unmapped_ids']) - len(shown)} more (see --json)")


@main.command()
@click.option("--seed", default=42, show_default=True, help="Random seed (same seed, same files).")
@click.option("--scale", default=1.0, show_default=True, help="Size multiplier.")
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Output folder."
)
def synth(seed: int, scale: float, out_dir: Path) -> None:
    """Write deterministic sample feeds in the real formats."""
    from knowdo.synth import write_sample_feeds

    written = write_sample_feeds(out_dir, seed=seed, scale=scale)
    for path in written:
        out.print(f"wrote {path}")


# --- operations: each runs its module's own `main(argv)`, which parses the rest of the line -------
_PASS_THROUGH = {
    "context_settings": {"ignore_unknown_options": True, "help_option_names": []},
    "add_help_option": False,
}


def _run(module_main, args: tuple[str, ...]) -> None:
    code = module_main(list(args))
    sys.exit(code or 0)


@main.command("main-job", **_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def main_job(args: tuple[str, ...]) -> None:
    """Run the main job through the scheduler: ingest, transform, gate, publish, dashboards
    (make up)."""
    from knowdo import mainjob

    _run(mainjob.main, args)


@main.command("gate-and-publish", **_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def gate_and_publish(args: tuple[str, ...]) -> None:
    """--run-id ID: the transform DAG's quality gate and publish, for a warehouse built
    outside Airflow."""
    from knowdo import pipeline

    _run(pipeline.main, args)


@main.command(**_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def watchdog(args: tuple[str, ...]) -> None:
    """Watch PostgreSQL and the DAG runs; alert on an outage or a stalled run
    (supervised by the stack)."""
    from knowdo import watchdog as module

    _run(module.main, args)


@main.command(**_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def superset(args: tuple[str, ...]) -> None:
    """import|wait: import superset/assets into the running Superset, or wait until it answers."""
    from knowdo import superset_api

    _run(superset_api.main, args)


@main.command("superset-access", **_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def superset_access(args: tuple[str, ...]) -> None:
    """apply [--demo-users]: apply superset/access.yml (roles, row-level security) to Superset."""
    from knowdo import superset_access as module

    _run(module.main, args)


@main.command("row-security", **_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def row_security(args: tuple[str, ...]) -> None:
    """sql: print the warehouse's row-level security setup SQL (from superset/access.yml)."""
    from knowdo import row_security as module

    _run(module.main, args)


@main.command(**_PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def stack(args: tuple[str, ...]) -> None:
    """strays|kill-strays: the local stack's processes left outside its supervisor."""
    from knowdo import stack_processes

    _run(stack_processes.main, args)


# --- issue 15: implementation impact (`knowdo evaluate its|did`); the logic is in knowdo.impact ---
from knowdo.impact.cli import evaluate

main.add_command(evaluate)
# --- end issue 15 ---
