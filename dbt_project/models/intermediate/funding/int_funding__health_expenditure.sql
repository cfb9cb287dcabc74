{#-
    Government health expenditure in current USD by country and year, from WHO's Global Health
    Expenditure Database (GHED, published through the GHO):
      government health expenditure = GHED_CHE_pc_US_SHA2011 (current health expenditure per
      capita, US$) x national population x GHED_GGHE-DCHE_SHA2011 (domestic general government
      health expenditure, % of current health expenditure) / 100.
    The population is the population feed's national row (geography code = ISO3), all sexes and
    ages. Any missing input leaves the expenditure NULL (never zero).
-#}

with

gho_values as (

    select * from {{ ref('stg_who_gho__values') }}

),

load_batches as (

    select * from {{ ref('stg_ops__load_batches') }}

),

population as (

    select * from {{ ref('int_population__by_group') }}

),

countries as (

    select * from {{ ref('ref_countries') }}

),

ghed_facts as (

    -- the newest loaded value of each indicator, country and year; national totals only (no
    -- disaggregation), values WHO published as a number
    select distinct on (gho_values.indicator_code, gho_values.country_code, gho_values.period_year)
        gho_values.indicator_code,
        gho_values.country_code,
        gho_values.period_year,
        gho_values.value_numeric
    from gho_values
    inner join load_batches
        on gho_values.batch_id = load_batches.batch_id
    where
        load_batches.batch_status = 'loaded'
        and gho_values.indicator_code in ('GHED_CHE_pc_US_SHA2011', 'GHED_GGHE-DCHE_SHA2011')
        and gho_values.country_code is not null
        and gho_values.dim1_type is null
        and not gho_values.is_suppressed
        and gho_values.value_numeric is not null
    order by
        gho_values.indicator_code asc, gho_values.country_code asc, gho_values.period_year asc,
        gho_values.batch_id desc, gho_values.source_row_number desc

),

pivoted as (

    select
        country_code,
        period_year as year,
        max(value_numeric) filter (where indicator_code = 'GHED_CHE_pc_US_SHA2011')
            as che_per_capita_usd,
        max(value_numeric) filter (where indicator_code = 'GHED_GGHE-DCHE_SHA2011')
            as gghe_d_percent_of_che
    from ghed_facts
    group by 1, 2

),

national_population as (

    select
        population.geography_code as country_code,
        population.population_year as year,
        population.population
    from population
    inner join countries
        on population.geography_code = countries.country_code
    where population.stratifier = 'all' and population.group_code = 'all'

),

final as (

    select
        pivoted.country_code,
        pivoted.year,
        pivoted.che_per_capita_usd,
        pivoted.gghe_d_percent_of_che,
        national_population.population,
        trim_scale(
            pivoted.che_per_capita_usd * national_population.population
            * pivoted.gghe_d_percent_of_che / 100
        ) as government_health_expenditure_usd
    from pivoted
    left join national_population
        on pivoted.country_code = national_population.country_code
        and pivoted.year = national_population.year

)

select * from final
