{#-
    What one unit of a currency is worth in US dollars in a year, now and in constant 2024 prices:
    amount_usd = amount / units_per_usd; amount_usd_constant_2024 = amount_usd x constant_2024_factor.
-#}

with

exchange_rates as (

    select * from {{ ref('ref_exchange_rates') }}

),

deflators as (

    select * from {{ ref('ref_deflators') }}

),

base_year as (

    select deflator_index as base_index
    from deflators
    where year = 2024

),

final as (

    select
        exchange_rates.currency_code,
        exchange_rates.year,
        exchange_rates.units_per_usd,
        -- a year without a deflator gets no constant-price amount rather than a wrong one
        trim_scale(base_year.base_index / deflators.deflator_index) as constant_2024_factor
    from exchange_rates
    cross join base_year
    left join deflators
        on exchange_rates.year = deflators.year

)

select * from final
