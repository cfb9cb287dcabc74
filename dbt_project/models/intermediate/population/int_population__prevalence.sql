{#-
    Prevalence of common mental disorders per place x year x stratifier x group, from the
    prevalence feed (current load per feed, place and year): the basis of "need" in
    mart_know_do_gap. Countries report depression and anxiety separately: their sum is used (an
    upper bound: it counts people with both twice; GBD publishes no combined figure). England's
    ICBs report `any_common_mental_disorder`, used as it is. Sex estimates come from the rows with
    age band `all`, age-band estimates from the rows with sex `all`.
-#}

with

prevalence as (

    select * from {{ ref('stg_templates_population__prevalence') }}

),

load_batches as (

    select * from {{ ref('stg_ops__load_batches') }}

),

current_prevalence as (

    -- a corrected resend wins for every place and year it covers: the latest loaded batch per
    -- feed, place and year
    {{ current_batch_rows('prevalence', ['geography_code', 'prevalence_year']) }}

),

current_estimates as (

    select
        current_prevalence.*,
        case
            when current_prevalence.sex_code = 'all' and current_prevalence.age_band_code = 'all' then 'all'
            when current_prevalence.age_band_code = 'all' then 'sex'
            when current_prevalence.sex_code = 'all' then 'age_band'
        end as stratifier,
        case
            when current_prevalence.sex_code = 'all' and current_prevalence.age_band_code = 'all' then 'all'
            when current_prevalence.age_band_code = 'all' then current_prevalence.sex_code
            when current_prevalence.sex_code = 'all' then current_prevalence.age_band_code
        end as group_code
    from current_prevalence

),

combined as (

    -- one figure per place: any common mental disorder where the feed gives it, else
    -- depression + anxiety
    select
        geography_code,
        prevalence_year,
        stratifier,
        group_code,
        case
            when bool_or(condition_code = 'any_common_mental_disorder')
                then max(prevalence_percent) filter (where condition_code = 'any_common_mental_disorder')
            else sum(prevalence_percent) filter (where condition_code in ('depression', 'anxiety'))
        end as prevalence_percent,
        case
            when bool_or(condition_code = 'any_common_mental_disorder') then 'any_common_mental_disorder'
            else 'depression + anxiety'
        end as condition_basis
    from current_estimates
    where stratifier is not null
    group by 1, 2, 3, 4

),

final as (

    select * from combined
    where prevalence_percent is not null

)

select * from final
