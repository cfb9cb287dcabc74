with

service_use as (

    select * from {{ ref('service_use_unrounded') }}

),

-- disclosure control first: the count as it will be published
published_counts as (

    select
        service_use.*,
        {{ disclosure_published_count('numerator', 'geography_level') }} as published_numerator,
        {{ disclosure_is_suppressed('numerator', 'geography_level') }} as is_suppressed,
        {{ disclosure_suppression_reason('numerator', 'geography_level') }} as suppression_reason
    from service_use

),

-- Rates and intervals are computed from the published count, so value x denominator gives back
-- only what the rounded count already says (OpenSAFELY practice); nationally the published count
-- is the exact count, so national rates are exact.
with_rates as (

    select
        published_counts.*,
        ci_95.value as published_value,
        ci_95.lower as published_lower_95,
        ci_95.upper as published_upper_95,
        ci_998.lower as published_lower_998,
        ci_998.upper as published_upper_998
    from published_counts
    cross join lateral stats.rate_ci(
        published_counts.published_numerator, nullif(published_counts.denominator, 0),
        {{ var('rate_multiplier') }}, 0.95
    ) as ci_95
    cross join lateral stats.rate_ci(
        published_counts.published_numerator, nullif(published_counts.denominator, 0),
        {{ var('rate_multiplier') }}, 0.998
    ) as ci_998

),

final as (

    select

        ----------  key and grain
        service_use_key,
        period_start,
        period_type,

        ----------  geography
        country_code,
        geography_code,
        geography_name,
        geography_level,

        ----------  indicator and group
        indicator_code,
        indicator_name,
        stratifier,
        group_code,
        group_label,
        group_order,
        is_reference_group,

        ----------  measures after disclosure control (rates from the published count)
        published_numerator as numerator,
        denominator,
        multiplier,
        {{ disclosure_masked('trim_scale(round(published_value, 4))', 'numerator', 'geography_level') }} as value,
        {{ disclosure_masked('trim_scale(round(published_lower_95, 4))', 'numerator', 'geography_level') }} as lower_95,
        {{ disclosure_masked('trim_scale(round(published_upper_95, 4))', 'numerator', 'geography_level') }} as upper_95,
        {{ disclosure_masked('trim_scale(round(published_lower_998, 4))', 'numerator', 'geography_level') }} as lower_998,
        {{ disclosure_masked('trim_scale(round(published_upper_998, 4))', 'numerator', 'geography_level') }} as upper_998,
        case
            when is_suppressed or published_value is null then null
            when published_numerator >= 10 then 'byar'
            else 'exact_poisson'
        end as ci_method,

        ----------  disclosure control
        is_suppressed,
        suppression_reason

    from with_rates

)

select * from final
