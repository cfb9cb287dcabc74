{#-
    IATI transactions split into slices by recipient country and by DAC sector, in the
    transaction's currency, current USD and constant 2024 USD.

    Splitting (the IATI rule: an activity's percentages per dimension add up to 100): each slice
    is value x country share x sector share. Shares are the percentages divided by their sum, so
    percentages that add up to 99 or 101 neither create nor lose money; when any percentage of a
    dimension is missing (or all are zero) the dimension is split equally and the slice is
    flagged. A transaction with no recipient country (regional or global) keeps one slice with no
    country. Only sector vocabulary 1 (5-digit DAC CRS purpose codes) is read: a transaction
    without one keeps one slice with no sector (not mental health).

    Areas of need: 12340 (promotion of mental health and well-being) -> general; 12330 (control of
    harmful use of alcohol and drugs) -> comorbidities; 12382 (research for prevention and control
    of NCDs) -> general, and mental-health implementation research, when the activity also carries
    12340 or 12330; any other sector -> not_mental_health.
-#}

with

transactions as (

    select * from {{ ref('int_funding__iati_transactions') }}
    where transaction_value is not null

),

country_codes as (

    select * from {{ ref('int_funding__country_codes') }}

),

exchange_rates as (

    select * from {{ ref('int_funding__exchange_rates') }}

),

country_items as (

    select
        transactions.iati_identifier,
        transactions.transaction_number,
        country_list.country_item ->> 'code' as country_iso2,
        (country_list.country_item ->> 'percentage')::numeric as percentage
    from transactions
    cross join lateral jsonb_array_elements(transactions.recipient_countries) as country_list (country_item)

),

sector_items as (

    select
        transactions.iati_identifier,
        transactions.transaction_number,
        sector_list.sector_item ->> 'code' as sector_code,
        (sector_list.sector_item ->> 'percentage')::numeric as percentage
    from transactions
    cross join lateral jsonb_array_elements(transactions.sectors) as sector_list (sector_item)
    where coalesce(sector_list.sector_item ->> 'vocabulary', '1') = '1'

),

country_shares as (

    select
        iati_identifier,
        transaction_number,
        country_iso2,
        case
            when count(*) over per_transaction = count(percentage) over per_transaction
                and sum(percentage) over per_transaction > 0
                then percentage / sum(percentage) over per_transaction
            else 1.0 / count(*) over per_transaction
        end as country_share,
        -- (sqlfluff's postgres grammar reads `not (` as a call of a function `not`)
        not (  -- noqa: LT01, LT06
            count(*) over per_transaction = count(percentage) over per_transaction
            and sum(percentage) over per_transaction > 0
        ) as is_country_equal_split
    from country_items
    window per_transaction as (partition by iati_identifier, transaction_number)

),

sector_shares as (

    select
        iati_identifier,
        transaction_number,
        sector_code,
        case
            when count(*) over per_transaction = count(percentage) over per_transaction
                and sum(percentage) over per_transaction > 0
                then percentage / sum(percentage) over per_transaction
            else 1.0 / count(*) over per_transaction
        end as sector_share,
        -- (sqlfluff's postgres grammar reads `not (` as a call of a function `not`)
        not (  -- noqa: LT01, LT06
            count(*) over per_transaction = count(percentage) over per_transaction
            and sum(percentage) over per_transaction > 0
        ) as is_sector_equal_split,
        bool_or(sector_code in ('12340', '12330')) over per_transaction as has_mental_health_sector
    from sector_items
    window per_transaction as (partition by iati_identifier, transaction_number)

),

slices as (

    select
        transactions.*,
        country_shares.country_iso2,
        coalesce(country_shares.country_share, 1) as country_share,
        coalesce(country_shares.is_country_equal_split, false) as is_country_equal_split,
        sector_shares.sector_code,
        coalesce(sector_shares.sector_share, 1) as sector_share,
        coalesce(sector_shares.is_sector_equal_split, false) as is_sector_equal_split,
        coalesce(sector_shares.has_mental_health_sector, false) as has_mental_health_sector
    from transactions
    left join country_shares
        on transactions.iati_identifier = country_shares.iati_identifier
        and transactions.transaction_number = country_shares.transaction_number
    left join sector_shares
        on transactions.iati_identifier = sector_shares.iati_identifier
        and transactions.transaction_number = sector_shares.transaction_number

),

classified as (

    select
        slices.*,
        case
            when slices.sector_code = '12340' then 'general'
            when slices.sector_code = '12330' then 'comorbidities'
            when slices.sector_code = '12382' and slices.has_mental_health_sector then 'general'
            else 'not_mental_health'
        end as area_of_need,
        coalesce(slices.sector_code = '12382' and slices.has_mental_health_sector, false)
            as is_implementation_research,
        slices.transaction_value * slices.country_share * slices.sector_share as amount_original
    from slices

),

final as (

    select
        classified.iati_identifier,
        classified.transaction_number,
        classified.country_iso2,
        classified.sector_code,
        classified.feed_id,
        classified.batch_id,
        classified.flow_type,
        classified.flow_year,
        classified.transaction_date,
        classified.funder_id,
        classified.funder_name,
        classified.recipient_id,
        classified.recipient_name,
        country_codes.country_code,
        classified.area_of_need,
        classified.area_of_need <> 'not_mental_health' as is_mental_health,
        classified.is_implementation_research,
        classified.transaction_value,
        classified.country_share,
        classified.sector_share,
        classified.is_country_equal_split,
        classified.is_sector_equal_split,
        classified.currency,
        -- trim_scale: numeric division pads with zeros; the amounts are exact, only shorter
        trim_scale(classified.amount_original) as amount_original,
        trim_scale(classified.amount_original / exchange_rates.units_per_usd) as amount_usd,
        trim_scale(
            classified.amount_original / exchange_rates.units_per_usd
            * exchange_rates.constant_2024_factor
        ) as amount_usd_constant_2024
    from classified
    left join country_codes
        on classified.country_iso2 = country_codes.country_iso2
    left join exchange_rates
        on classified.currency = exchange_rates.currency_code
        and extract(year from classified.value_date)::integer = exchange_rates.year

)

select * from final
