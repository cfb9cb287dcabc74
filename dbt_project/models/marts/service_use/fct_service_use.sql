{#-
    Incremental: each run rebuilds only the months whose load state changed (new month, corrected
    resend, new population load; macros/incremental/service_use_periods.sql). Disclosure control,
    secondary suppression and reference-group comparisons stay within one month x geography x
    indicator, so rebuilding whole months is exact; `dbt run --full-refresh` rebuilds every month.
    The publish step copies this candidate into `marts` (it is never moved).
-#}

{{ config(**service_use_incremental_config()) }}

-- the incremental filter reads the load state: depends_on: {{ ref('int_service_use__load_state') }}

with

service_use as (

    select * from {{ ref('service_use_unrounded') }}
    where {{ is_service_use_period_to_build('period_start') }}

),

-- disclosure control first: the count as it will be published (NHS Digital primary suppression
-- and rounding, macros/disclosure)
published_counts as (

    select
        service_use.*,
        {{ disclosure_published_count('numerator', 'geography_level') }} as published_numerator,
        {{ disclosure_is_suppressed('numerator', 'geography_level') }}
            -- a count the publisher withheld (MHSDS '*': under 5) arrives as NULL: suppressed, never zero
            or (numerator is null and geography_level <> 'national') as is_primary_suppressed
    from service_use

),

-- Secondary suppression (macros/disclosure/secondary_suppression.sql): below national level, when
-- exactly one cell of a stratifier's groups plus the place-month's `all` row is suppressed, the
-- `all` row minus its published siblings (or the siblings' sum) would give it back, so the next
-- smallest group of that stratifier is suppressed too (ties: the first in group order).
secondary_suppressed as (

    {{ disclosure_secondary_suppressed_keys(
        relation='published_counts',
        key_column='service_use_key',
        place_columns=['period_start', 'geography_code', 'indicator_code'],
        is_suppressed_column='is_primary_suppressed',
        size_columns=['numerator'],
        tie_breaker_columns=['group_order', 'group_code'],
    ) }}

),

suppressed as (

    select
        published_counts.*,
        published_counts.is_primary_suppressed
        or secondary_suppressed.service_use_key is not null as is_suppressed,
        case
            when published_counts.is_primary_suppressed
                then 'count below {{ var("disclosure_min_count") }}'
            when secondary_suppressed.service_use_key is not null
                then 'secondary suppression (another group of the stratifier is suppressed)'
        end as suppression_reason
    from published_counts
    left join secondary_suppressed
        on published_counts.service_use_key = secondary_suppressed.service_use_key

),

-- Rates and intervals are computed from the published count, so value x denominator gives back
-- only what the rounded count already says (OpenSAFELY practice); nationally the published count
-- is the exact count, so national rates are exact.
with_rates as (

    select
        suppressed.*,
        case when suppressed.is_suppressed then null else suppressed.published_numerator end
            as shown_numerator,
        ci_95.value as published_value,
        ci_95.lower as published_lower_95,
        ci_95.upper as published_upper_95,
        ci_998.lower as published_lower_998,
        ci_998.upper as published_upper_998
    from suppressed
    left join lateral stats.rate_ci(
        case when suppressed.is_suppressed then null else suppressed.published_numerator end,
        nullif(suppressed.denominator, 0),
        {{ var('rate_multiplier') }}, 0.95
    ) as ci_95 on true
    left join lateral stats.rate_ci(
        case when suppressed.is_suppressed then null else suppressed.published_numerator end,
        nullif(suppressed.denominator, 0),
        {{ var('rate_multiplier') }}, 0.998
    ) as ci_998 on true

),

-- Comparison with the stratifier's reference group (Female; 25-49), from the published figures:
-- rate ratio with its CI on the log scale, ln RR +/- z sqrt(1/O1 + 1/O2) (Poisson counts; as
-- PHEindicatormethods and WHO HEAT compute the CI of a ratio), and rate difference with the
-- MOVER interval built from the two rates' own CIs (Zou & Donner 2008; Newcombe 1998):
-- RD - sqrt((r1 - l1)^2 + (u2 - r2)^2), RD + sqrt((u1 - r1)^2 + (r2 - l2)^2).
compared as (

    select
        with_rates.*,
        reference.group_code as reference_group_code,
        reference.published_value as reference_value,
        reference.shown_numerator as reference_numerator,
        reference.published_lower_95 as reference_lower_95,
        reference.published_upper_95 as reference_upper_95
    from with_rates
    left join with_rates as reference
        on
            with_rates.period_start = reference.period_start
            and with_rates.geography_code = reference.geography_code
            and with_rates.indicator_code = reference.indicator_code
            and with_rates.stratifier = reference.stratifier
            and reference.is_reference_group

),

with_comparisons as (

    select
        compared.*,
        case
            when compared.reference_value > 0 and compared.published_value is not null
                then compared.published_value / compared.reference_value
        end as rate_ratio,
        case
            when compared.shown_numerator > 0 and compared.reference_numerator > 0
                and compared.group_code <> compared.reference_group_code
                then sqrt(1.0 / compared.shown_numerator + 1.0 / compared.reference_numerator)
        end as log_rate_ratio_se,
        compared.published_value - compared.reference_value as rate_difference,
        case
            when compared.group_code <> compared.reference_group_code
                then compared.published_value - compared.reference_value - sqrt(
                    (compared.published_value - compared.published_lower_95) ^ 2
                    + (compared.reference_upper_95 - compared.reference_value) ^ 2
                )
        end as rate_difference_lower,
        case
            when compared.group_code <> compared.reference_group_code
                then compared.published_value - compared.reference_value + sqrt(
                    (compared.published_upper_95 - compared.published_value) ^ 2
                    + (compared.reference_value - compared.reference_lower_95) ^ 2
                )
        end as rate_difference_upper
    from compared

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
        shown_numerator as numerator,
        denominator,
        multiplier,
        trim_scale(round(published_value, 4)) as value,
        trim_scale(round(published_lower_95, 4)) as lower_95,
        trim_scale(round(published_upper_95, 4)) as upper_95,
        trim_scale(round(published_lower_998, 4)) as lower_998,
        trim_scale(round(published_upper_998, 4)) as upper_998,
        case
            when published_value is null then null
            when shown_numerator >= 10 then 'byar'
            else 'exact_poisson'
        end as ci_method,

        ----------  disclosure control
        is_suppressed,
        suppression_reason,

        ----------  comparison with the reference group (NULL for `all` and when either is suppressed)
        reference_group_code,
        trim_scale(round(rate_ratio, 6)) as rate_ratio,
        case when log_rate_ratio_se is not null then trim_scale(round(
            exp(ln(rate_ratio) - stats.z_value(0.95) * log_rate_ratio_se), 6
        )) end as rate_ratio_lower_95,
        case when log_rate_ratio_se is not null then trim_scale(round(
            exp(ln(rate_ratio) + stats.z_value(0.95) * log_rate_ratio_se), 6
        )) end as rate_ratio_upper_95,
        trim_scale(round(rate_difference, 4)) as rate_difference,
        trim_scale(round(rate_difference_lower, 4)) as rate_difference_lower_95,
        trim_scale(round(rate_difference_upper, 4)) as rate_difference_upper_95,

        ----------  age-standardised rate (WHO world standard population; `all` and `sex` only)
        case
            when stratifier in ('all', 'sex') and not is_suppressed then 'who_world_2000_2025'
        end as standard_population,
        case when not is_suppressed then trim_scale(round(age_standardised_rate, 4)) end
            as age_standardised_rate,
        case when not is_suppressed then trim_scale(round(age_standardised_lower_95, 4)) end
            as age_standardised_lower_95,
        case when not is_suppressed then trim_scale(round(age_standardised_upper_95, 4)) end
            as age_standardised_upper_95,

        ----------  lineage: the load state the month was built from (incremental rebuilds)
        source_batch_id,
        source_batch_count

    from with_comparisons

)

select * from final
