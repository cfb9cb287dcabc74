{#-
    NHS Talking Therapies (annual measures, England ICBs) in KnowDo's terms: one row per
    financial year x ICB x stratifier x group, with the counts the outcome measures use, the ARC the
    ICB belongs to and the ICB's adult population of the group from the population feed.
-#}

with

measures as (

    select * from {{ ref('stg_nhs__talking_therapies_measures') }}

),

load_batches as (

    select * from {{ ref('stg_ops__load_batches') }}

),

icb_arcs as (

    select * from {{ ref('ref_icb_arcs') }}

),

england_geographies as (

    select * from {{ ref('ref_england_geography') }}

),

population as (

    select * from {{ ref('int_population__by_group') }}
    where geography_level = 'icb'

),

current_measures as (

    -- a corrected resend wins for the reporting period it covers: the latest loaded batch per feed
    -- and period
    select *
    from (
        {{ current_batch_rows('measures', ['reporting_period_start'], null_safe=['reporting_period_start']) }}
    ) as current_rows
    where org_level = 'ICB' and file_layout = 'annual'

),

mapped as (

    -- NHS labels -> KnowDo stratifier groups (ref_stratifier_groups): the five ONS 2021 high-level
    -- ethnic groups, IMD deciles '01'..'10' -> '1'..'10' (1 = most deprived)
    select
        current_measures.*,
        case current_measures.breakdown
            when 'Total' then 'all'
            when 'Ethnicity' then 'ethnicity'
            when 'IMD Decile' then 'imd_decile'
        end as stratifier,
        case
            when current_measures.breakdown = 'Total' then 'all'
            when current_measures.breakdown = 'Ethnicity'
                then
                    case
                        when current_measures.breakdown_group ilike 'white%' then 'white'
                        when current_measures.breakdown_group ilike 'asian%' then 'asian'
                        when current_measures.breakdown_group ilike 'black%' then 'black'
                        when current_measures.breakdown_group ilike 'mixed%' then 'mixed'
                        when current_measures.breakdown_group ilike 'other%' then 'other'
                        else 'not_stated'
                    end
            when current_measures.breakdown = 'IMD Decile'
                then ltrim(current_measures.breakdown_group, '0')
        end as group_code
    from current_measures

),

pivoted as (

    -- suppressed cells stay NULL (never zero); bool_or keeps which ones were suppressed
    select
        reporting_period_start,
        reporting_period_end,
        org_code as geography_code,
        stratifier,
        group_code,
        sum(measure_value) filter (where measure_code = 'Count_ReferralsReceived') as referrals,
        sum(measure_value) filter (where measure_code = 'Count_AccessingServices') as accessing_services,
        sum(measure_value) filter (where measure_code = 'Count_FinishedCourseTreatment')
            as finished_treatment,
        sum(measure_value) filter (where measure_code = 'Count_AtCaseness') as at_caseness,
        sum(measure_value) filter (where measure_code = 'Count_Improvement') as reliably_improved,
        sum(measure_value) filter (where measure_code = 'Count_Recovery') as recovered,
        sum(measure_value) filter (where measure_code = 'Count_ReliableRecovery') as reliably_recovered,
        bool_or(is_suppressed) filter (where measure_code = 'Count_AccessingServices')
            as accessing_suppressed,
        bool_or(is_suppressed) filter (where measure_code = 'Count_FinishedCourseTreatment')
            as finished_suppressed,
        bool_or(is_suppressed) filter (where measure_code = 'Count_AtCaseness') as caseness_suppressed,
        bool_or(is_suppressed) filter (where measure_code = 'Count_Improvement') as improved_suppressed,
        bool_or(is_suppressed) filter (where measure_code = 'Count_Recovery') as recovered_suppressed,
        bool_or(is_suppressed) filter (where measure_code = 'Count_ReliableRecovery')
            as reliably_recovered_suppressed
    from mapped
    where stratifier is not null
    group by 1, 2, 3, 4, 5

),

final as (

    select
        pivoted.reporting_period_start as period_start,
        pivoted.reporting_period_end as period_end,
        'financial_year' as period_type,
        'GBR' as country_code,
        icb_arcs.arc_code,
        pivoted.geography_code,
        england_geographies.geography_name,
        'icb' as geography_level,
        'talking_therapies' as intervention_code,
        pivoted.stratifier,
        pivoted.group_code,
        pivoted.referrals::bigint as referrals,
        pivoted.accessing_services::bigint as accessing_services,
        pivoted.finished_treatment::bigint as finished_treatment,
        pivoted.at_caseness::bigint as at_caseness,
        pivoted.reliably_improved::bigint as reliably_improved,
        pivoted.recovered::bigint as recovered,
        pivoted.reliably_recovered::bigint as reliably_recovered,
        coalesce(pivoted.accessing_suppressed, false) as accessing_suppressed,
        coalesce(pivoted.finished_suppressed, false) as finished_suppressed,
        coalesce(pivoted.caseness_suppressed, false) as caseness_suppressed,
        coalesce(pivoted.improved_suppressed, false) as improved_suppressed,
        coalesce(pivoted.recovered_suppressed, false) as recovered_suppressed,
        coalesce(pivoted.reliably_recovered_suppressed, false) as reliably_recovered_suppressed,
        -- the financial year's population is the mid-year estimate of the year it starts in
        population.population
    from pivoted
    left join icb_arcs
        on pivoted.geography_code = icb_arcs.icb_code
    left join england_geographies
        on pivoted.geography_code = england_geographies.geography_code
    left join population
        on pivoted.geography_code = population.geography_code
        and extract(year from pivoted.reporting_period_start)::integer = population.population_year
        and pivoted.stratifier = population.stratifier
        and pivoted.group_code = population.group_code

)

select * from final
