"""Guard: the dbt project parses (YAML, Jinja, refs, contracts) without a database."""


def test_dbt_parse_succeeds(run_dbt):
    result = run_dbt("parse")
    assert result.returncode == 0, result.stdout + result.stderr
