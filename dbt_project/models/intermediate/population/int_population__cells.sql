{#-
    The population denominators every rate uses, from the population feed (KnowDo population
    template): the current load of each geography and year, one row per cell.
-#}

{#- a table with an index, not a view: every rate joins it row by row, and the planner cannot
    estimate a view of aggregates (service-use models took minutes against the view) -#}
{{ config(
    materialized='table',
    indexes=[{'columns': ['geography_code', 'population_year', 'sex_code', 'age_band_code']}],
) }}

with

population as (

    select * from {{ ref('stg_templates_population__population') }}

),

load_batches as (

    select * from {{ ref('stg_ops__load_batches') }}

),

geographies as (

    select * from {{ ref('ref_geography') }}

),

-- ONS 2021 detailed ethnic groups (population contract 1.1.0): a set of their own beside the
-- high-level groups (`not_stated` is in both lists and is read as high-level)
detailed_ethnic_groups as (

    select group_code from {{ ref('ref_stratifier_groups') }}
    where stratifier = 'ethnicity_detailed'
    except
    select group_code from {{ ref('ref_stratifier_groups') }}
    where stratifier = 'ethnicity'

),

england_geographies as (

    select * from {{ ref('ref_england_geography') }}

),

current_cells as (

    -- a corrected resend wins for every geography and year it covers (the loader's supersession
    -- partition is submitter x place x year): the latest loaded batch per feed, place and year
    {{ current_batch_rows('population', ['geography_code', 'population_year']) }}

),

final as (

    select
        current_cells.geography_code,
        coalesce(
            geographies.geography_level,
            england_geographies.geography_level
        ) as geography_level,
        coalesce(
            geographies.country_code,
            -- England has no ISO 3166-1 code of its own: its places belong to the United Kingdom
            case when england_geographies.geography_code is not null then 'GBR' end
        ) as country_code,
        current_cells.population_year,
        case
            when current_cells.ethnicity_code in (select d.group_code from detailed_ethnic_groups as d)
                then 'ethnicity_detailed'
            when current_cells.ethnicity_code is not null then 'ethnicity'
            when current_cells.imd_decile_code is not null then 'imd_decile'
            else 'none'
        end as breakdown,
        coalesce(current_cells.ethnicity_code, current_cells.imd_decile_code) as breakdown_group_code,
        current_cells.sex_code,
        current_cells.age_band_code,
        sum(current_cells.population)::bigint as population
    from current_cells
    left join geographies
        on current_cells.geography_code = geographies.geography_code
    left join england_geographies
        on current_cells.geography_code = england_geographies.geography_code
    group by 1, 2, 3, 4, 5, 6, 7, 8

)

select * from final
