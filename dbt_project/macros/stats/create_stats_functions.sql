{#-
    Creates the confidence-interval functions of the `stats` schema (docs/methods.md):
    the marts call them and analysts may call them too (execute is granted to readers by the
    schema's default privileges). Run once per transform run, before the models, with
    `dbt run-operation create_stats_functions` (the transform DAG's create_stats_functions task).
    Every statement is idempotent. One file per function: macros/stats/<function>.sql, and the
    parts of stats.inequality_measures in macros/stats/inequality/.

    Formulas: docs/methods.md, following OHID's PHEindicatormethods
    (ukhsa-collaboration/PHEindicatormethods): wilson_lower/wilson_upper for proportions,
    byars_lower/byars_upper for counts of 10 or more and exact Poisson (chi-square) limits below 10,
    phe_dsr (Dobson) for directly standardised rates; the inequality summary measures follow WHO's
    HEAT / healthequal (WHOequity/healthequal), SII/RII the PHE closed-form regression.
-#}
{% macro create_stats_functions() -%}
    {%- set statements = [
        stats_z_value_sql(),
        stats_wilson_ci_sql(),
        stats_poisson_exact_limits_sql(),
        stats_byar_limits_sql(),
        stats_rate_ci_sql(),
        stats_dsr_ci_sql(),
        stats_inequality_missing_reason_sql(),
        stats_inequality_not_applicable_sql(),
        stats_inequality_setting_sql(),
        stats_inequality_pair_measures_sql(),
        stats_inequality_regression_measures_sql(),
        stats_inequality_attributable_measures_sql(),
        stats_inequality_dispersion_measures_sql(),
        stats_inequality_measures_sql(),
        disclosure_secondary_suppression_function_sql(),
    ] -%}
    {%- if execute -%}
        {%- for statement in statements -%}
            {%- do run_query(statement) -%}
        {%- endfor -%}
        {%- do run_query('commit') -%}
        {{ log('stats functions created or replaced', info=false) }}
    {%- endif -%}
{%- endmacro %}
