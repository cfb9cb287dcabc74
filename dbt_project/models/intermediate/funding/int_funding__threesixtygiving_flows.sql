{#-
    360Giving grants as funding flows: one flow per grant and beneficiary country (a grant to
    several countries is split equally between them and flagged; a grant with none keeps one
    flow with no country), in the award year, converted from the grant's currency to USD.

    Area of need: the code of a classification whose vocabulary names the area of need, when it
    is one of the MHIN areas (ref_mhin_areas_of_need); otherwise `general` when the grant is about
    mental health, `not_mental_health` when not. A grant is about mental health when it has such
    a classification or its title, description or programme mentions mental health, psychological
    or psychiatric care, depression, anxiety, suicide or self-harm, or talking therapies. It is
    implementation research when its title or programme title says "implementation research" or
    "implementation science" (and it is about mental health).
-#}

with

grants as (

    select * from {{ ref('stg_threesixtygiving__grants') }}

),

load_batches as (

    select * from {{ ref('stg_ops__load_batches') }}

),

country_codes as (

    select * from {{ ref('int_funding__country_codes') }}

),

areas_of_need as (

    select * from {{ ref('ref_mhin_areas_of_need') }}

),

exchange_rates as (

    select * from {{ ref('int_funding__exchange_rates') }}

),

current_grants as (

    -- a grants file is the funder's current picture of the grants in it: the newest loaded
    -- version of each grant counts
    select distinct on (grants.grant_id) grants.*
    from grants
    inner join load_batches
        on grants.batch_id = load_batches.batch_id
    where load_batches.batch_status = 'loaded'
    order by grants.grant_id asc, grants.batch_id desc

),

classified_areas as (

    select distinct on (current_grants.grant_id)
        current_grants.grant_id,
        areas_of_need.area_of_need_code
    from current_grants
    inner join lateral jsonb_array_elements(
        case
            when jsonb_typeof(current_grants.classifications) = 'array'
                then current_grants.classifications
            else '[]'::jsonb
        end
    ) with ordinality as classification_list (classification, position) on true
    inner join areas_of_need
        on classification_list.classification ->> 'code' = areas_of_need.area_of_need_code
    where classification_list.classification ->> 'vocabulary' ilike '%area of need%'
    order by current_grants.grant_id, classification_list.position

),

described as (

    select
        current_grants.*,
        classified_areas.area_of_need_code as classified_area,
        (
            classified_areas.area_of_need_code is not null
            or concat_ws(
                ' ', current_grants.grant_title, current_grants.grant_description,
                current_grants.grant_programme_title
            ) ~* '(mental|psycholog|psychiatr|depressi|anxiety|suicid|self-harm|talking therap)'
        ) as is_mental_health,
        (
            concat_ws(' ', current_grants.grant_title, current_grants.grant_programme_title)
            ~* 'implementation (research|science)'
        ) as mentions_implementation_research
    from current_grants
    left join classified_areas
        on current_grants.grant_id = classified_areas.grant_id

),

beneficiaries as (

    select
        described.grant_id,
        beneficiary_list.country_iso2,
        count(*) over (partition by described.grant_id) as beneficiary_countries
    from described
    cross join lateral unnest(described.beneficiary_country_codes) as beneficiary_list (country_iso2)

),

final as (

    select
        described.grant_id,
        beneficiaries.country_iso2,
        described.feed_id,
        described.batch_id,
        'grant' as flow_type,
        extract(year from described.award_date)::integer as flow_year,
        described.award_date,
        described.funding_org_id as funder_id,
        described.funding_org_name as funder_name,
        described.recipient_org_id as recipient_id,
        described.recipient_org_name as recipient_name,
        country_codes.country_code,
        case
            when described.classified_area is not null then described.classified_area
            when described.is_mental_health then 'general'
            else 'not_mental_health'
        end as area_of_need,
        described.is_mental_health,
        described.is_mental_health and described.mentions_implementation_research
            as is_implementation_research,
        coalesce(beneficiaries.beneficiary_countries > 1, false) as is_country_equal_split,
        described.currency,
        -- trim_scale: numeric division pads with zeros; the amounts are exact, only shorter
        trim_scale(described.amount_awarded / coalesce(beneficiaries.beneficiary_countries, 1))
            as amount_original,
        trim_scale(
            described.amount_awarded / coalesce(beneficiaries.beneficiary_countries, 1)
            / exchange_rates.units_per_usd
        ) as amount_usd,
        trim_scale(
            described.amount_awarded / coalesce(beneficiaries.beneficiary_countries, 1)
            / exchange_rates.units_per_usd * exchange_rates.constant_2024_factor
        ) as amount_usd_constant_2024
    from described
    left join beneficiaries
        on described.grant_id = beneficiaries.grant_id
    left join country_codes
        on beneficiaries.country_iso2 = country_codes.country_iso2
    left join exchange_rates
        on described.currency = exchange_rates.currency_code
        and extract(year from described.award_date)::integer = exchange_rates.year

)

select * from final
