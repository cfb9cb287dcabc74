{#-
    The know-do gap: how many people need care (prevalence x population) against how many an
    intervention reached, per intervention x place x year x group. Need is estimated only for
    interventions for common mental disorders (area of need `talking_therapies`); for the others
    (the ARCs' parent-led CBT and Alcohol Assertive Outreach) reach is set against the population
    as a rate per 100,000 instead.
-#}

with

ngo_service_use as (

    select * from {{ ref('int_service_use__ngo_monthly') }}

),

talking_therapies as (

    select * from {{ ref('int_outcomes__talking_therapies') }}

),

population as (

    select * from {{ ref('int_population__by_group') }}

),

prevalence as (

    select * from {{ ref('int_population__prevalence') }}

),

geographies as (

    select * from {{ ref('ref_geography') }}

),

england_geographies as (

    select * from {{ ref('ref_england_geography') }}

),

interventions as (

    select * from {{ ref('ref_interventions') }}

),

stratifier_groups as (

    select * from {{ ref('ref_stratifier_groups') }}

),

-- NGO programmes and the ARCs' programmes (same template): people reached per place and
-- calendar year, the sum of the monthly counts (a person seen in several months counts in each:
-- an upper bound of distinct people)
ngo_reached as (

    select
        ngo_service_use.intervention_code,
        ngo_service_use.country_code,
        ngo_service_use.geography_code,
        -- the template's geography_code is a region (ISO 3166-2) or, in England, an ICB (ODS)
        coalesce(england_geographies.geography_level, 'region') as geography_level,
        extract(year from ngo_service_use.period_start)::integer as year,
        ngo_service_use.stratifier,
        ngo_service_use.group_code,
        sum(ngo_service_use.people_reached) as reached,
        bool_or(ngo_service_use.people_reached_suppressed) as reached_withheld,
        'people reached per month, summed over the year (service-use template)' as reached_basis
    from ngo_service_use
    left join england_geographies
        on ngo_service_use.geography_code = england_geographies.geography_code
        and ngo_service_use.country_code = 'GBR'
    group by 1, 2, 3, 4, 5, 6, 7
    -- only complete years: a part-year would understate reach
    having count(distinct ngo_service_use.period_start) = 12

),

-- NHS Talking Therapies: people entering treatment in the financial year (its first calendar
-- year gives the population and prevalence year)
talking_therapies_reached as (

    select
        intervention_code,
        country_code,
        geography_code,
        geography_level,
        extract(year from period_start)::integer as year,
        stratifier,
        group_code,
        accessing_services as reached,
        accessing_suppressed as reached_withheld,
        'people accessing services in the financial year (NHS Talking Therapies)' as reached_basis
    from talking_therapies

),

reached as (

    select * from ngo_reached
    union all
    select * from talking_therapies_reached

),

with_need as (

    select
        reached.*,
        population.population,
        -- the feed's prevalence is of common mental disorders: it measures the need of
        -- interventions for them only
        case
            when interventions.area_of_need_code = 'talking_therapies'
                then coalesce(prevalence.prevalence_percent, place_prevalence.prevalence_percent)
        end as prevalence_percent,
        case
            when (interventions.area_of_need_code is distinct from 'talking_therapies') then null
            when prevalence.prevalence_percent is not null then prevalence.condition_basis
            -- no estimate for the group (ethnicity, IMD): the place's overall prevalence applies
            when place_prevalence.prevalence_percent is not null
                then place_prevalence.condition_basis || ' (whole population estimate)'
        end as condition_basis
    from reached
    left join interventions
        on reached.intervention_code = interventions.intervention_code
    left join geographies
        on reached.geography_code = geographies.geography_code
    left join population
        on reached.geography_code = population.geography_code
        and reached.year = population.population_year
        and reached.stratifier = population.stratifier
        and reached.group_code = population.group_code
    -- prevalence of the place itself (ICB), else of its country, for the group's sex / age band
    left join prevalence
        on prevalence.geography_code = coalesce(
            case when geographies.geography_level = 'region' then geographies.country_code end,
            reached.geography_code
        )
        and reached.year = prevalence.prevalence_year
        and reached.stratifier = prevalence.stratifier
        and reached.group_code = prevalence.group_code
    left join prevalence as place_prevalence
        on place_prevalence.geography_code = coalesce(
            case when geographies.geography_level = 'region' then geographies.country_code end,
            reached.geography_code
        )
        and reached.year = place_prevalence.prevalence_year
        and place_prevalence.stratifier = 'all'

),

-- NHS Digital primary suppression and rounding (macros/disclosure); NHS England's own '*' cells
-- stay suppressed
disclosed as (

    select
        with_need.*,
        md5(concat_ws(
            '|',
            with_need.intervention_code, with_need.geography_code, with_need.year,
            with_need.stratifier, with_need.group_code
        )) as know_do_gap_key,
        stratifier_groups.group_label,
        stratifier_groups.group_order,
        round(with_need.population * with_need.prevalence_percent / 100)::bigint as need,
        {{ disclosure_published_count('reached', 'geography_level') }} as published_reached,
        coalesce(with_need.reached_withheld, false)
        or {{ disclosure_is_suppressed('reached', 'geography_level') }} as is_primary_suppressed,
        case
            when with_need.reached_withheld then 'suppressed by the publisher'
            when {{ disclosure_is_suppressed('reached', 'geography_level') }}
                then '{{ disclosure_suppression_label() }}'
        end as primary_suppression_reason
    from with_need
    left join stratifier_groups
        on with_need.stratifier = stratifier_groups.stratifier
        and with_need.group_code = stratifier_groups.group_code

),

-- Secondary suppression (macros/disclosure/secondary_suppression.sql): in every set of an
-- intervention x place x year's `all` row and one stratifier's groups (all = sum of the groups),
-- suppression repeats until no set has exactly one suppressed cell or suppressed cells summing to
-- under 5, each time hiding the group with the smallest count. Sizes and order are those of
-- fct_outcomes' access_rate (the same Talking Therapies counts), so the two marts suppress the
-- same cells. The NGO programmes' monthly counts behind a year are not published anywhere, and no
-- parent place is published, so the stratifier sets are the only additive relations here.
memberships as (

    {{ disclosure_stratifier_set_memberships(
        'disclosed', ['intervention_code', 'geography_code', 'year'],
        cell_id='cell.know_do_gap_key',
        is_suppressed='cell.is_primary_suppressed',
        cell_size='cell.reached'
    ) }}

),

secondary_suppressed as (

    {{ disclosure_secondary_suppressed_cells('memberships') }}

),

suppressed as (

    select
        disclosed.*,
        coalesce(
            disclosed.primary_suppression_reason,
            case
                when {{ disclosure_is_secondary_suppressed(['disclosed.know_do_gap_key']) }}
                    then '{{ disclosure_suppression_label() }}'
            end
        ) as suppression_reason
    from disclosed

),

measured as (

    select
        suppressed.*,
        case
            when suppressed.suppression_reason is null and suppressed.need > 0
                then 100.0 * suppressed.published_reached / suppressed.need
        end as coverage,
        coverage_ci.lower as coverage_lower,
        coverage_ci.upper as coverage_upper,
        reach_rate.value as reach_rate,
        reach_rate.lower as reach_rate_lower,
        reach_rate.upper as reach_rate_upper
    from suppressed
    -- Wilson score interval (PHEindicatormethods wilson) of reached out of need; undefined when
    -- more people were reached than the estimated need (coverage is then shown without a CI)
    left join lateral stats.wilson_ci(
        case
            when suppressed.suppression_reason is null and suppressed.published_reached <= suppressed.need
                then suppressed.published_reached
        end,
        nullif(suppressed.need, 0),
        0.95
    ) as coverage_ci on true
    -- people reached per 100,000 population of the group, from the published count (stats.rate_ci:
    -- PHEindicatormethods phe_rate, Byar's method from 10 people, exact Poisson below)
    left join lateral stats.rate_ci(
        case when suppressed.suppression_reason is null then suppressed.published_reached end,
        nullif(suppressed.population, 0),
        {{ var('rate_multiplier') }},
        0.95
    ) as reach_rate on true

),

final as (

    select

        ----------  key and grain
        measured.know_do_gap_key,
        measured.year,
        measured.intervention_code,

        ----------  access keys (row-level security) and place
        measured.country_code,
        icb_arcs.arc_code,
        measured.geography_code,
        measured.geography_level,

        ----------  group
        measured.stratifier,
        measured.group_code,
        measured.group_label,
        measured.group_order,

        ----------  need
        measured.population::bigint as population,
        trim_scale(measured.prevalence_percent) as prevalence_percent,
        measured.condition_basis,
        measured.need,

        ----------  reached, coverage and gap (after disclosure control)
        case when measured.suppression_reason is null then measured.published_reached end::bigint
            as reached,
        measured.reached_basis,
        trim_scale(round(measured.coverage, 4)) as coverage_percent,
        trim_scale(round(100 * measured.coverage_lower, 4)) as coverage_lower_95,
        trim_scale(round(100 * measured.coverage_upper, 4)) as coverage_upper_95,
        case
            when measured.suppression_reason is null then measured.need - measured.published_reached
        end::bigint as gap,
        trim_scale(round(measured.reach_rate, 4)) as reached_per_100k,
        trim_scale(round(measured.reach_rate_lower, 4)) as reached_per_100k_lower_95,
        trim_scale(round(measured.reach_rate_upper, 4)) as reached_per_100k_upper_95,
        measured.suppression_reason is not null as is_suppressed,
        measured.suppression_reason

    from measured
    left join {{ ref('ref_icb_arcs') }} as icb_arcs
        on measured.geography_code = icb_arcs.icb_code

)

select * from final
