{#-
    Every funding flow KnowDo knows, at the finest level each source gives (an IATI transaction
    slice, a 360Giving grant x beneficiary country, a ministry's budget by area of need), in one
    shape: the input of the funding marts.
-#}

with

iati_flows as (

    select * from {{ ref('int_funding__iati_flows') }}

),

grant_flows as (

    select * from {{ ref('int_funding__threesixtygiving_flows') }}

),

domestic_budgets as (

    select * from {{ ref('int_funding__domestic_budgets') }}

),

unioned as (

    select
        'iati' as source,
        iati_identifier || '#' || transaction_number as source_record_id,
        coalesce(country_iso2, '') || '/' || coalesce(sector_code, '') as split_id,
        flow_type,
        funder_id,
        funder_name,
        recipient_id,
        recipient_name,
        country_code,
        area_of_need,
        flow_year,
        currency,
        is_mental_health,
        is_implementation_research,
        is_country_equal_split or is_sector_equal_split as is_equal_split,
        amount_original,
        amount_usd,
        amount_usd_constant_2024
    from iati_flows

    union all

    select
        '360giving' as source,
        grant_id as source_record_id,
        coalesce(country_iso2, '') as split_id,
        flow_type,
        funder_id,
        funder_name,
        recipient_id,
        recipient_name,
        country_code,
        area_of_need,
        flow_year,
        currency,
        is_mental_health,
        is_implementation_research,
        is_country_equal_split as is_equal_split,
        amount_original,
        amount_usd,
        amount_usd_constant_2024
    from grant_flows

    union all

    select
        'ministry_budget' as source,
        (
            country_code || ':' || flow_year || ':' || area_of_need || ':' || amount_type
            || ':' || currency
        ) as source_record_id,
        '' as split_id,
        flow_type,
        funder_id,
        funder_name,
        null as recipient_id,
        null as recipient_name,
        country_code,
        area_of_need,
        flow_year,
        currency,
        -- the template is the ministry's mental-health budget: every line is mental health
        true as is_mental_health,
        false as is_implementation_research,
        false as is_equal_split,
        amount_original,
        amount_usd,
        amount_usd_constant_2024
    from domestic_budgets

)

select * from unioned
