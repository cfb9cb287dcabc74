{#-
    The implementation registry as it stands: a registry is sent whole, so each feed's newest
    loaded batch is its current registry (a superseded or failed batch never counts). Read by the
    transform's impact step (knowdo.impact.marts), which evaluates every implementation in it.
-#}

with

registry as (

    select * from {{ ref('stg_templates_implementation__registry') }}

),

load_batches as (

    select * from {{ ref('stg_ops__load_batches') }}

),

current_registry as (

    {{ current_batch_rows('registry', []) }}

)

select
    batch_id,
    feed_id,
    project_code,
    project_name,
    intervention_code,
    country_code,
    site_level,
    site_code,
    pilot_date,
    go_live_date,
    scale_up_date,
    de_implementation_date,
    comparison_sites,
    indicator_code,
    stratifier
from current_registry
