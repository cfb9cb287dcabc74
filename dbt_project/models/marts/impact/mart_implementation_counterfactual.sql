{#-
    Observed against counterfactual: one row per month x project x site x outcome x method x
    stratifier x group, for the interrupted time series (and the controlled ones) of
    mart_implementation_impact: the observed published count, the model's fit, and what the
    pre-go-live course predicts without the implementation, with its 95% interval.

    Built empty by dbt (columns, types, contract); the transform's impact step
    (knowdo.impact.marts) writes its rows before the quality gate, as for
    mart_implementation_impact.
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
    null::date as month,
    null::date as go_live_month,
    null::boolean as after_go_live,
    null::double precision as observed,
    null::double precision as fitted,
    null::double precision as counterfactual,
    null::double precision as counterfactual_lower_95,
    null::double precision as counterfactual_upper_95
where false
