{#-
    NGO service use (KnowDo service-use template) per month x region x intervention x stratifier
    x group: the current load of each submitter, region and month, summed over organisations.
-#}

with

service_use as (

    select * from {{ ref('stg_templates_ngo__service_use') }}

),

load_batches as (

    select * from {{ ref('stg_ops__load_batches') }}

),

current_service_use as (

    -- the loader's supersession partition: organisation x country x region x month
    {{ current_batch_rows('service_use', ['organisation_id', 'geography_code', 'period_start']) }}

),

final as (

    select
        period_start,
        country_code,
        geography_code,
        intervention_code,
        stratifier,
        group_code,
        count(distinct organisation_id)::integer as organisations,
        sum(people_reached)::bigint as people_reached,
        sum(sessions_delivered)::bigint as sessions_delivered,
        -- a suppressed count in any organisation's row leaves the sum unknown
        bool_or(people_reached is null) as people_reached_suppressed
    from current_service_use
    group by 1, 2, 3, 4, 5, 6

)

select * from final
