with

flows as (

    select * from {{ ref('int_funding__flows') }}

),

countries as (

    select * from {{ ref('ref_countries') }}

),

aggregated as (

    select
        source,
        flow_type,
        funder_id,
        recipient_id,
        country_code,
        area_of_need,
        flow_year as year,
        currency,
        is_implementation_research,
        bool_or(is_mental_health) as is_mental_health,
        -- one organisation can be named slightly differently from one record to the next
        min(funder_name) as funder_name,
        min(recipient_name) as recipient_name,
        sum(amount_original) as amount_original,
        -- a cell with any amount that could not be converted gets no USD total (never a partial one)
        case when bool_and(amount_usd is not null) then sum(amount_usd) end as amount_usd,
        case
            when bool_and(amount_usd_constant_2024 is not null) then sum(amount_usd_constant_2024)
        end as amount_usd_constant_2024,
        count(distinct source_record_id) as source_records,
        bool_or(is_equal_split) as has_equal_split
    from flows
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9

),

final as (

    select
        md5(concat_ws(
            '|',
            aggregated.source, aggregated.flow_type, aggregated.funder_id,
            coalesce(aggregated.recipient_id, ''), coalesce(aggregated.country_code, ''),
            aggregated.area_of_need, aggregated.year::text, aggregated.currency,
            aggregated.is_implementation_research::text
        ))::text as funding_flow_key,

        ----------  grain
        aggregated.source::text as source,
        aggregated.flow_type::text as flow_type,
        aggregated.funder_id::text as funder_id,
        aggregated.recipient_id::text as recipient_id,
        aggregated.country_code::text as country_code,
        aggregated.area_of_need::text as area_of_need,
        aggregated.year::integer as year,
        aggregated.currency::text as currency,
        aggregated.is_implementation_research::boolean as is_implementation_research,

        ----------  names
        aggregated.funder_name::text as funder_name,
        aggregated.recipient_name::text as recipient_name,
        countries.country_name::text as country_name,

        ----------  classification
        aggregated.is_mental_health::boolean as is_mental_health,

        ----------  amounts
        round(aggregated.amount_original, 2)::numeric(20, 2) as amount_original,
        round(aggregated.amount_usd, 2)::numeric(20, 2) as amount_usd,
        round(aggregated.amount_usd_constant_2024, 2)::numeric(20, 2) as amount_usd_constant_2024,

        ----------  provenance
        aggregated.source_records::integer as source_records,
        aggregated.has_equal_split::boolean as has_equal_split

    from aggregated
    left join countries
        on aggregated.country_code = countries.country_code

)

select * from final
