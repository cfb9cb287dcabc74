{#-
    Did an implementation change outcomes where it went live, and for whom? One row per project x
    site x outcome x method x stratifier x group x effect (x event time, x cohort).

    dbt defines this table (its columns, types and contract) and builds it empty; its rows are the
    statistics of knowdo.impact, which the transform's impact step (knowdo.impact.marts) writes
    after dbt built fct_service_use and the registry, and before the quality gate audits it
    (statsmodels has no place in SQL). The `depends_on` lines below order it after its inputs.
    Methods and how to read every number: docs/impact-methods.md.
-#}
-- depends_on: {{ ref('fct_service_use') }}
-- depends_on: {{ ref('int_implementation__registry_current') }}
-- depends_on: {{ ref('ref_icb_arcs') }}

select
    null::text as project,
    null::text as intervention,
    null::text as country_code,
    null::text as arc_code,
    null::text as site_level,
    null::text as site_code,
    null::text as outcome,
    null::text as method,
    null::text as stratifier,
    null::text as group_name,
    null::text as reference_group,
    null::text as effect,
    null::integer as event_time,
    null::date as cohort_month,
    null::text as scale,
    null::double precision as estimate,
    null::double precision as lower_95,
    null::double precision as upper_95,
    null::double precision as p_value,
    null::integer as n,
    null::integer as n_pre,
    null::integer as n_post,
    null::text as family,
    null::double precision as dispersion,
    null::double precision as autocorrelation_p,
    null::boolean as newey_west,
    null::double precision as pretrend_p,
    null::text as verdict,
    null::text as status,
    null::text as caution
where false
