{#-
    Ministry mental-health budgets (KnowDo ministry-budget template) by country x fiscal year x
    area of need x amount type (allocated | spent), summed over budget lines, in the local
    currency and USD. The fiscal year is taken as the calendar year for the exchange rate.
-#}

with

budget_lines as (

    select * from {{ ref('stg_templates__ministry_budget') }}

),

load_batches as (

    select * from {{ ref('stg_ops__load_batches') }}

),

countries as (

    select * from {{ ref('ref_countries') }}

),

exchange_rates as (

    select * from {{ ref('int_funding__exchange_rates') }}

),

current_lines as (

    -- a corrected resend wins for every country and year it covers (the loader's supersession
    -- partition): the latest loaded batch per feed, country and fiscal year
    {{ current_batch_rows('budget_lines', ['country_code', 'fiscal_year']) }}

),

summed as (

    select
        country_code,
        fiscal_year,
        area_of_need,
        amount_type,
        currency,
        count(*) as budget_lines,
        sum(amount) as amount_original
    from current_lines
    group by 1, 2, 3, 4, 5

),

final as (

    select
        summed.country_code,
        countries.country_name,
        summed.fiscal_year as flow_year,
        summed.area_of_need,
        summed.amount_type,
        'domestic_' || summed.amount_type as flow_type,
        -- the template names no organisation: the government of the country is the funder
        'KD-GOV-' || summed.country_code as funder_id,
        'Government of ' || coalesce(countries.country_name, summed.country_code) as funder_name,
        summed.budget_lines,
        summed.currency,
        summed.amount_original,
        -- trim_scale: numeric division pads with zeros; the amounts are exact, only shorter
        trim_scale(summed.amount_original / exchange_rates.units_per_usd) as amount_usd,
        trim_scale(
            summed.amount_original / exchange_rates.units_per_usd
            * exchange_rates.constant_2024_factor
        ) as amount_usd_constant_2024
    from summed
    left join countries
        on summed.country_code = countries.country_code
    left join exchange_rates
        on summed.currency = exchange_rates.currency_code
        and summed.fiscal_year = exchange_rates.year

)

select * from final
