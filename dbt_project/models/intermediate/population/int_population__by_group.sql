{#-
    Population by geography x year x equity stratifier x group: the denominators of the published
    rates. Plain cells give `all`, `sex` and `age_band`; England's ICB cells come as sets that
    each add up to the whole population (by ONS 2021 high-level ethnic group, by detailed ethnic
    group, by IMD decile), so `all`, `sex` and `age_band` of an ICB are taken from the high-level
    ethnicity set alone (never from two sets, which would count everyone twice).
-#}

{#- a table with an index, not a view: every rate joins it row by row, and the planner cannot
    estimate a view of aggregates (service-use models took minutes against the view) -#}
{{ config(
    materialized='table',
    indexes=[{'columns': ['geography_code', 'population_year', 'stratifier', 'group_code']}],
) }}

with

cells as (

    select * from {{ ref('int_population__cells') }}

),

whole_population_cells as (

    -- one set per geography that covers everyone once
    select *
    from cells
    where
        breakdown = 'none'
        or (
            breakdown = 'ethnicity'
            and not exists (
                select 1
                from cells as plain
                where
                    plain.breakdown = 'none'
                    and plain.geography_code = cells.geography_code
                    and plain.population_year = cells.population_year
            )
        )

),

by_group as (

    select
        geography_code,
        population_year,
        'all' as stratifier,
        'all' as group_code,
        sum(population) as population
    from whole_population_cells
    group by 1, 2

    union all

    select
        geography_code,
        population_year,
        'sex' as stratifier,
        sex_code as group_code,
        sum(population) as population
    from whole_population_cells
    group by 1, 2, 4

    union all

    select
        geography_code,
        population_year,
        'age_band' as stratifier,
        age_band_code as group_code,
        sum(population) as population
    from whole_population_cells
    group by 1, 2, 4

    union all

    select
        geography_code,
        population_year,
        breakdown as stratifier,
        breakdown_group_code as group_code,
        sum(population) as population
    from cells
    where breakdown in ('ethnicity', 'ethnicity_detailed', 'imd_decile')
    group by 1, 2, 3, 4

),

geographies as (

    select distinct
        geography_code,
        geography_level,
        country_code
    from cells

),

final as (

    select
        by_group.geography_code,
        geography.geography_level,
        geography.country_code,
        by_group.population_year,
        by_group.stratifier,
        by_group.group_code,
        by_group.population::bigint as population
    from by_group
    inner join geographies as geography
        on by_group.geography_code = geography.geography_code

)

select * from final
