with

service_use as (

    select * from {{ ref('int_service_use__dhis2_monthly') }}

),

geographies as (

    select * from {{ ref('ref_geography') }}

),

indicators as (

    select * from {{ ref('ref_indicators') }}

),

stratifier_groups as (

    select * from {{ ref('ref_stratifier_groups') }}

),

described as (

    select
        service_use.*,
        geographies.country_code,
        geographies.geography_name,
        indicators.indicator_name,
        stratifier_groups.group_label,
        stratifier_groups.group_order,
        stratifier_groups.is_reference as is_reference_group
    from service_use
    inner join geographies
        on service_use.geography_code = geographies.geography_code
    inner join indicators
        on service_use.indicator_code = indicators.indicator_code
    inner join stratifier_groups
        on service_use.stratifier = stratifier_groups.stratifier
        and service_use.group_code = stratifier_groups.group_code

),

with_rates as (

    -- stats.rate_ci: PHEindicatormethods phe_rate (Byar >= 10 events, exact Poisson below)
    select
        described.*,
        {{ var('rate_multiplier') }} as multiplier,
        -- trailing zeros of numeric division carry no information
        trim_scale(ci_95.value) as value,
        trim_scale(ci_95.lower) as lower_95,
        trim_scale(ci_95.upper) as upper_95,
        trim_scale(ci_998.lower) as lower_998,
        trim_scale(ci_998.upper) as upper_998
    from described
    cross join lateral stats.rate_ci(
        described.numerator, nullif(described.denominator, 0), {{ var('rate_multiplier') }}, 0.95
    ) as ci_95
    cross join lateral stats.rate_ci(
        described.numerator, nullif(described.denominator, 0), {{ var('rate_multiplier') }}, 0.998
    ) as ci_998

),

final as (

    select

        ----------  key and grain
        md5(concat_ws('|',
            period_start, geography_code, indicator_code, stratifier, group_code
        )) as service_use_key,
        period_start,
        period_type,

        ----------  geography
        country_code,
        geography_code,
        geography_name,
        geography_level,
        reporting_geographies,

        ----------  indicator and group
        indicator_code,
        indicator_name,
        stratifier,
        group_code,
        group_label,
        group_order,
        is_reference_group,

        ----------  measures (unrounded)
        numerator,
        denominator,
        multiplier::integer as multiplier,
        value,
        lower_95,
        upper_95,
        lower_998,
        upper_998,
        case
            when value is null then null
            when numerator >= 10 then 'byar'
            else 'exact_poisson'
        end as ci_method

    from with_rates

)

select * from final
