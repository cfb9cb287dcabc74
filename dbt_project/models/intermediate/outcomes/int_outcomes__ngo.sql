{#-
    NGO outcome measures (KnowDo outcomes template) per month x country x intervention x
    instrument x stratifier x group: the current load of each submitter, country and month,
    summed over organisations (means weighted by the people assessed).
-#}

with

outcomes as (

    select * from {{ ref('stg_templates_ngo__outcomes') }}

),

load_batches as (

    select * from {{ ref('stg_ops__load_batches') }}

),

current_outcomes as (

    -- the loader's supersession partition is organisation x country x month
    {{ current_batch_rows('outcomes', ['organisation_id', 'country_code', 'period_start']) }}

),

final as (

    select
        period_start,
        (period_start + interval '1 month - 1 day')::date as period_end,
        'month' as period_type,
        country_code,
        intervention_code,
        instrument,
        stratifier,
        group_code,
        count(distinct organisation_id)::integer as organisations,
        sum(people_assessed)::bigint as people_assessed,
        sum(mean_score_before * people_assessed) / nullif(sum(people_assessed), 0)
            as mean_score_before,
        sum(mean_score_after * people_assessed) / nullif(sum(people_assessed), 0)
            as mean_score_after,
        sum(people_reliably_improved)::bigint as people_reliably_improved,
        sum(people_recovered)::bigint as people_recovered,
        -- a suppressed count in any organisation's row leaves the sum unknown
        bool_or(people_assessed is null) as assessed_suppressed,
        bool_or(people_reliably_improved is null) as improved_suppressed,
        bool_or(people_recovered is null) as recovered_suppressed
    from current_outcomes
    group by 1, 2, 3, 4, 5, 6, 7, 8

)

select * from final
