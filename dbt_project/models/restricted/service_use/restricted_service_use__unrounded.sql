{#-
    Incremental: each run rebuilds only the months whose load state changed (new month, corrected
    resend, new population load; macros/incremental/service_use_periods.sql). Everything computed
    across groups here (the `all` row, age standardisation) stays within one month x geography x
    indicator, so rebuilding whole months is exact; `dbt run --full-refresh` rebuilds every month.
-#}

{{ config(**service_use_incremental_config()) }}

with

service_use as (

    select
        period_start,
        period_type,
        period_year,
        indicator_code,
        geography_code,
        geography_level,
        stratifier,
        group_code,
        numerator,
        denominator,
        reporting_geographies
    from {{ ref('int_service_use__dhis2_monthly') }}

    union all

    -- England: MHSDS measures relevant to PCREF by ethnic group, ICBs and ARCs (its first eleven
    -- columns are the DHIS2 model's; a suppressed MHSDS value arrives as a NULL numerator)
    select
        period_start,
        period_type,
        period_year,
        indicator_code,
        geography_code,
        geography_level,
        stratifier,
        group_code,
        numerator,
        denominator,
        reporting_geographies
    from {{ ref('int_service_use__mhsds_monthly') }}

),

geographies as (

    select
        geography_code,
        geography_name,
        country_code
    from {{ ref('ref_geography') }}

    union all

    -- England's places belong to the United Kingdom (no ISO 3166-1 code of their own)
    select
        geography_code,
        geography_name,
        'GBR' as country_code
    from {{ ref('ref_england_geography') }}

    union all

    select
        arc_code,
        arc_name,
        'GBR' as country_code
    from {{ ref('ref_arcs') }}

),

indicators as (

    select * from {{ ref('ref_indicators') }}

),

stratifier_groups as (

    select * from {{ ref('ref_stratifier_groups') }}

),

age_sex_cells as (

    select * from {{ ref('int_service_use__dhis2_age_sex_cells') }}
    where {{ is_service_use_period_to_build('period_start') }}

),

load_state as (

    select * from {{ ref('int_service_use__load_state') }}

),

-- the WHO World Standard Population 2000-2025 (international comparisons, docs/methods.md)
-- mapped onto DHIS2's four age bands by summing its five-year weights
standard_weights as (

    select
        case
            when age_from < 15 then '0-14'
            when age_from < 25 then '15-24'
            when age_from < 50 then '25-49'
            else '50+'
        end as age_band_code,
        sum(weight) as weight
    from {{ ref('ref_standard_populations') }}
    where standard_population = 'who_world_2000_2025'
    group by 1

),

standard_band_count as (

    select count(*) as band_count from standard_weights

),

-- one standardisation set per row to standardise: `all` (both sexes) and each sex
standardisation_cells as (

    select
        period_start,
        indicator_code,
        geography_code,
        'all' as stratifier,
        'all' as group_code,
        age_band_code,
        sum(event_count) as event_count,
        sum(population) as population,
        count(population) = count(*) as has_population,
        null::bigint as disclosed_event_count,
        false as is_disclosure_suppressed
    from age_sex_cells
    group by 1, 2, 3, 6

    union all

    select
        period_start,
        indicator_code,
        geography_code,
        'sex' as stratifier,
        sex_code as group_code,
        age_band_code,
        sum(event_count) as event_count,
        sum(population) as population,
        count(population) = count(*) as has_population,
        -- one age x sex cell per group: the count as disclosure control would publish it
        {{ disclosure_published_count('sum(event_count)', 'min(geography_level)') }} as disclosed_event_count,
        {{ disclosure_is_suppressed('sum(event_count)', 'min(geography_level)') }} as is_disclosure_suppressed
    from age_sex_cells
    group by 1, 2, 3, 5, 6

),

standardisation_sets as (

    select
        standardisation_cells.period_start,
        standardisation_cells.indicator_code,
        standardisation_cells.geography_code,
        standardisation_cells.stratifier,
        standardisation_cells.group_code,
        array_agg(standardisation_cells.event_count::numeric order by standardisation_cells.age_band_code)
            as events,
        array_agg(standardisation_cells.population::numeric order by standardisation_cells.age_band_code)
            as populations,
        array_agg(standard_weights.weight::numeric order by standardisation_cells.age_band_code) as weights,
        array_agg(
            standardisation_cells.disclosed_event_count::numeric order by standardisation_cells.age_band_code
        )
            as disclosed_events,
        bool_or(standardisation_cells.is_disclosure_suppressed) as has_disclosure_suppressed_cell
    from standardisation_cells
    inner join standard_weights
        on standardisation_cells.age_band_code = standard_weights.age_band_code
    group by 1, 2, 3, 4, 5
    -- stats.dsr_ci needs every band's population (> 0) and all four bands of the standard
    having
        bool_and(standardisation_cells.has_population and standardisation_cells.population > 0)
        and count(*) = (select standard_band_count.band_count from standard_band_count)

),

age_standardised as (

    -- stats.dsr_ci: PHEindicatormethods phe_dsr, Dobson CI, NULL below 10 events
    select
        standardisation_sets.period_start,
        standardisation_sets.indicator_code,
        standardisation_sets.geography_code,
        standardisation_sets.stratifier,
        standardisation_sets.group_code,
        dsr_95.value as age_standardised_rate,
        dsr_95.lower as age_standardised_lower_95,
        dsr_95.upper as age_standardised_upper_95,
        dsr_998.lower as age_standardised_lower_998,
        dsr_998.upper as age_standardised_upper_998,
        disclosed_95.value as disclosed_cells_rate,
        disclosed_95.lower as disclosed_cells_lower_95,
        disclosed_95.upper as disclosed_cells_upper_95
    from standardisation_sets
    inner join lateral stats.dsr_ci(
        standardisation_sets.events, standardisation_sets.populations, standardisation_sets.weights,
        {{ var('rate_multiplier') }}, 0.95
    ) as dsr_95 on true
    inner join lateral stats.dsr_ci(
        standardisation_sets.events, standardisation_sets.populations, standardisation_sets.weights,
        {{ var('rate_multiplier') }}, 0.998
    ) as dsr_998 on true
    -- The sex rows' rate as fct_service_use may publish it: from the age x sex cells after
    -- disclosure control (exact nationally; below national level rounded to 5, none under 5).
    -- Those cells are never published; a rate of their unrounded counts could be solved back for
    -- them (and through them for hidden age bands), so only a set whose every cell passes primary
    -- suppression gets one, computed from the rounded counts.
    left join lateral stats.dsr_ci(
        case
            when standardisation_sets.stratifier = 'sex'
                and not standardisation_sets.has_disclosure_suppressed_cell
                then standardisation_sets.disclosed_events
        end,
        standardisation_sets.populations, standardisation_sets.weights,
        {{ var('rate_multiplier') }}, 0.95
    ) as disclosed_95 on true

),

described as (

    select
        service_use.*,
        geographies.country_code,
        geographies.geography_name,
        indicators.indicator_name,
        stratifier_groups.group_label,
        stratifier_groups.group_order,
        stratifier_groups.is_reference as is_reference_group,
        age_standardised.age_standardised_rate,
        age_standardised.age_standardised_lower_95,
        age_standardised.age_standardised_upper_95,
        age_standardised.age_standardised_lower_998,
        age_standardised.age_standardised_upper_998,
        standard_weights.weight as age_standard_weight,
        age_standardised.disclosed_cells_rate as disclosed_cells_age_standardised_rate,
        age_standardised.disclosed_cells_lower_95 as disclosed_cells_age_standardised_lower_95,
        age_standardised.disclosed_cells_upper_95 as disclosed_cells_age_standardised_upper_95,
        load_state.source_batch_id,
        load_state.source_batch_count
    from service_use
    inner join geographies
        on service_use.geography_code = geographies.geography_code
    inner join indicators
        on service_use.indicator_code = indicators.indicator_code
    inner join stratifier_groups
        on service_use.stratifier = stratifier_groups.stratifier
        and service_use.group_code = stratifier_groups.group_code
    left join age_standardised
        on service_use.period_start = age_standardised.period_start
        and service_use.indicator_code = age_standardised.indicator_code
        and service_use.geography_code = age_standardised.geography_code
        and service_use.stratifier = age_standardised.stratifier
        and service_use.group_code = age_standardised.group_code
    -- the band's standard weight on age-band rows: fct_service_use standardises the `all` row from
    -- the published age-band rows
    left join standard_weights
        on service_use.stratifier = 'age_band'
        and service_use.group_code = standard_weights.age_band_code
    left join load_state
        on service_use.period_start = load_state.period_start
    where {{ is_service_use_period_to_build('service_use.period_start') }}

),

with_rates as (

    -- stats.rate_ci: PHEindicatormethods phe_rate (Byar >= 10 events, exact Poisson below)
    select
        described.*,
        {{ var('rate_multiplier') }} as multiplier,
        -- trailing zeros of numeric division carry no information
        trim_scale(ci_95.value) as value,
        trim_scale(ci_95.lower) as lower_95,
        trim_scale(ci_95.upper) as upper_95,
        trim_scale(ci_998.lower) as lower_998,
        trim_scale(ci_998.upper) as upper_998
    from described
    inner join lateral stats.rate_ci(
        described.numerator, nullif(described.denominator, 0), {{ var('rate_multiplier') }}, 0.95
    ) as ci_95 on true
    inner join lateral stats.rate_ci(
        described.numerator, nullif(described.denominator, 0), {{ var('rate_multiplier') }}, 0.998
    ) as ci_998 on true

),

final as (

    select

        ----------  key and grain
        md5(concat_ws(
            '|',
            period_start, geography_code, indicator_code, stratifier, group_code
        )) as service_use_key,
        period_start,
        period_type,

        ----------  geography
        country_code,
        geography_code,
        geography_name,
        geography_level,
        reporting_geographies,

        ----------  indicator and group
        indicator_code,
        indicator_name,
        stratifier,
        group_code,
        group_label,
        group_order,
        is_reference_group,

        ----------  measures (unrounded)
        numerator,
        denominator,
        multiplier::integer as multiplier,
        value,
        lower_95,
        upper_95,
        lower_998,
        upper_998,
        case
            when value is null then null
            when numerator >= 10 then 'byar'
            else 'exact_poisson'
        end as ci_method,

        ----------  age-standardised rate (WHO world standard, Dobson CI; `all` and `sex` only)
        trim_scale(round(age_standardised_rate, 4)) as age_standardised_rate,
        trim_scale(round(age_standardised_lower_95, 4)) as age_standardised_lower_95,
        trim_scale(round(age_standardised_upper_95, 4)) as age_standardised_upper_95,
        trim_scale(round(age_standardised_lower_998, 4)) as age_standardised_lower_998,
        trim_scale(round(age_standardised_upper_998, 4)) as age_standardised_upper_998,

        ----------  inputs of the published age-standardised rates (fct_service_use)
        age_standard_weight,
        disclosed_cells_age_standardised_rate,
        disclosed_cells_age_standardised_lower_95,
        disclosed_cells_age_standardised_upper_95,

        ----------  lineage: the load state the month was built from (incremental rebuilds)
        source_batch_id,
        source_batch_count

    from with_rates

)

select * from final
