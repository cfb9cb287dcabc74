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

current_batches as (

    -- the loader's supersession partition: organisation x country x region x month
    select
        service_use.feed_id,
        service_use.organisation_id,
        service_use.geography_code,
        service_use.period_start,
        max(service_use.batch_id) as batch_id
    from {{ ref('stg_templates_ngo__service_use') }} as service_use
    inner join load_batches
        on service_use.batch_id = load_batches.batch_id
    where load_batches.batch_status = 'loaded'
    group by 1, 2, 3, 4

),

final as (

    select
        service_use.period_start,
        service_use.country_code,
        service_use.geography_code,
        service_use.intervention_code,
        service_use.stratifier,
        service_use.group_code,
        count(distinct service_use.organisation_id)::integer as organisations,
        sum(service_use.people_reached)::bigint as people_reached,
        sum(service_use.sessions_delivered)::bigint as sessions_delivered,
        -- a suppressed count in any organisation's row leaves the sum unknown
        bool_or(service_use.people_reached is null) as people_reached_suppressed
    from service_use
    inner join current_batches
        on
            service_use.batch_id = current_batches.batch_id
            and service_use.feed_id = current_batches.feed_id
            and service_use.organisation_id = current_batches.organisation_id
            and service_use.geography_code = current_batches.geography_code
            and service_use.period_start = current_batches.period_start
    group by 1, 2, 3, 4, 5, 6

)

select * from final
