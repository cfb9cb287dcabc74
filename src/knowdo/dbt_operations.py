"""dbt operations run once per transform run, before the models (issue 14).

The statistics and disclosure functions (`stats.*`, `restricted.secondary_suppression`, from
dbt_project/macros/stats/) are created here with one `dbt run-operation create_stats_functions`,
not in an `on-run-start` hook: a hook runs in every dbt invocation, and with one dbt process per
model (cosmos' local mode, retries of single models) several `CREATE OR REPLACE FUNCTION`s on the
same function could run at once, which PostgreSQL may refuse ("tuple concurrently updated").

dbt lives in its own environment (its pins conflict with Airflow's), so it runs as a subprocess.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from knowdo.config import Settings

STATS_FUNCTIONS_MACRO = "create_stats_functions"
# The transform DAG's cosmos tasks run dbt with `--profile knowdo --target local`; dbt keeps its
# partial parse only while these flags stay the same (they are part of its state check), so the
# operation before them passes the same ones: otherwise every dbt of a run parses the whole project
# again ("Unable to do partial parsing because config vars, config profile, or config target have
# changed"; ~15 s of CPU each). infra/local/stack.sh's `dbt parse` passes them too.
DAG_PROFILE_FLAGS = ["--profile", "knowdo", "--target", "local"]


class DbtOperationFailed(RuntimeError):
    """A dbt command failed; the message names the command and ends with dbt's own output."""


def run_dbt(
    args: list[str],
    settings: Settings | None = None,
    timeout: int = 600,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `dbt <args>` on the project (profiles from the project dir); raise if it fails."""
    settings = settings or Settings.from_env()
    command = [str(settings.dbt_executable), *args, "--project-dir", str(settings.dbt_project_dir)]
    run_env = dict(os.environ if env is None else env)
    run_env.setdefault("DBT_PROFILES_DIR", str(settings.dbt_project_dir))
    if not settings.dbt_executable.exists():
        raise DbtOperationFailed(
            f"dbt is not installed at {settings.dbt_executable} (KNOWDO_DBT_EXECUTABLE; "
            "`make setup` creates it)"
        )
    result = subprocess.run(
        command,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=settings.dbt_project_dir,
        env=run_env,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-30:])
        raise DbtOperationFailed(
            f"`dbt {' '.join(args)}` failed (exit {result.returncode}) in "
            f"{settings.dbt_project_dir}:\n{tail}"
        )
    return result


def create_stats_functions(
    settings: Settings | None = None, env: dict[str, str] | None = None
) -> None:
    """Create or replace the warehouse's statistics functions (one dbt run-operation)."""
    run_dbt(["run-operation", STATS_FUNCTIONS_MACRO, *DAG_PROFILE_FLAGS], settings, env=env)


# --- the manifest the transform DAG renders its tasks from (issue 14 item 9) ----------------------
def render_manifest_path(settings: Settings) -> Path:
    """dbt's manifest for rendering the DAG (`dbt parse` by infra/local/stack.sh before Airflow
    starts); a manifest older than any file of the dbt project is not used (`dbt ls` at parse)."""
    return settings.local_dir / "dbt" / "render" / "manifest.json"


PROJECT_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".md", ".py"}


def manifest_is_current(manifest: Path, project_dir: Path) -> bool:
    """True when `manifest` exists and no file of the dbt project changed after it was written."""
    try:
        built = manifest.stat().st_mtime
    except FileNotFoundError:
        return False
    for path in project_dir.rglob("*"):
        if path.suffix not in PROJECT_SUFFIXES or path.name.startswith("."):
            continue
        if path.parts[len(project_dir.parts)] in ("target", "logs", "dbt_packages"):
            continue
        if path.stat().st_mtime > built:
            return False
    return True
