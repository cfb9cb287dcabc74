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

    select * from {{ ref('restricted_service_use__unrounded') }}
    where {{ is_service_use_period_to_build('period_start') }}

),

-- disclosure control first: the count as it will be published (NHS Digital primary suppression
-- and rounding, macros/disclosure)
published_counts as (

    select
        service_use.*,
        {{ disclosure_published_count('numerator', 'geography_level') }} as published_numerator,
        -- a count the publisher withheld (MHSDS '*': under 5) arrives as NULL: suppressed, never zero
        (
            {{ disclosure_is_suppressed('numerator', 'geography_level') }}
            or (service_use.numerator is null and service_use.geography_level <> 'national')
        ) as is_primary_suppressed
    from service_use

),

geographies as (

    -- the parent of every place whose counts add up to it: a country's regions (ref_geography),
    -- an ARC's ICBs (ref_icb_arcs)
    select
        geography_code,
        parent_code
    from {{ ref('ref_geography') }}
    where parent_code is not null

    union all

    select
        icb_code,
        arc_code
    from {{ ref('ref_icb_arcs') }}

),

-- Secondary suppression (macros/disclosure/secondary_suppression.sql) over every additive
-- relation this mart publishes, as sets of cells (one cell = one row's count):
--   - a place-month's `all` row and the groups of one stratifier (all = sum of the groups);
--   - a parent place and its children, per month x indicator x group (a country's national row =
--     the sum of its reporting regions, an ARC = the sum of its ICBs).
-- restricted.secondary_suppression repeats until no set has exactly one suppressed cell or suppressed
-- cells summing to under 5, suppressing the smallest published count of each such set; national
-- cells only when nothing else will do. Every set stays within one month, so rebuilding whole
-- months (incremental) is exact. (The mart publishes months only: no year = sum of months.)
memberships as (

    {{ disclosure_stratifier_set_memberships(
        'published_counts', ['period_start', 'geography_code', 'indicator_code'],
        cell_id='cell.service_use_key',
        is_suppressed='cell.is_primary_suppressed',
        cell_size='cell.numerator',
        priority="case when cell.geography_level = 'national' then 1 else 0 end",
        order_key="concat_ws('|', lpad(cell.group_order::text, 4, '0'), cell.group_code)",
        set_id_prefix='stratifier',
        below_national_only=false
    ) }}

    union all

    select
        concat_ws(
            '|', 'geography', cell.period_start, cell.indicator_code, cell.stratifier,
            cell.group_code, coalesce(geographies.parent_code, cell.geography_code)
        ) as set_id,
        cell.service_use_key,
        cell.is_primary_suppressed,
        cell.numerator,
        case when cell.geography_level = 'national' then 1 else 0 end as priority,
        cell.geography_code
    from published_counts as cell
    left join geographies
        on cell.geography_code = geographies.geography_code
    -- a parent (national, ARC) or a child: every row of a place that has a parent or children
    where
        geographies.parent_code is not null
        or cell.geography_code in (select parents.parent_code from geographies as parents)

),

secondary_suppressed as (

    {{ disclosure_secondary_suppressed_cells('memberships') }}

),

-- One reason for every suppression by KnowDo, primary or secondary: telling which hidden cell is
-- the small one would tell an attacker that it lies in [0, 4] and that its partner is at least 5,
-- and with an exact national count those two bounds can pin both (a region under 5 and its
-- secondary partner of 5 add up to a national figure minus published regions known within +/-2.5:
-- the small one is then at most 2). Only the publisher's own suppression ('*' in the file it
-- published, a NULL count) keeps its own reason: anyone can read it there.
suppressed as (

    select
        published_counts.*,
        published_counts.is_primary_suppressed
        or {{ disclosure_is_secondary_suppressed(['published_counts.service_use_key']) }}
            as is_suppressed,
        case
            when published_counts.numerator is null
                and published_counts.geography_level <> 'national'
                then 'suppressed by the publisher'
            when published_counts.is_primary_suppressed
                or {{ disclosure_is_secondary_suppressed(['published_counts.service_use_key']) }}
                then '{{ disclosure_suppression_label() }}'
        end as suppression_reason
    from published_counts

),

-- Age-standardised rates from PUBLISHED cells only (a rate from unrounded band counts can be
-- solved back for the bands it hides: four bands, one rate and two limits to 4 decimals leave one
-- integer solution). The `all` row is standardised from the place-month's published age-band rows
-- (rounded below national level) and withheld when any band is suppressed; a sex row from its age
-- x sex cells after disclosure control (restricted_service_use__unrounded), withheld when the row or any age
-- band of the place-month is suppressed.
age_band_sets as (

    select
        period_start,
        geography_code,
        indicator_code,
        bool_or(is_suppressed) as has_suppressed_band,
        array_agg(published_numerator::numeric order by group_code) as events,
        array_agg(denominator::numeric order by group_code) as populations,
        array_agg(age_standard_weight::numeric order by group_code) as weights,
        bool_and(coalesce(denominator, 0) > 0 and age_standard_weight is not null) as is_complete
    from suppressed
    where stratifier = 'age_band'
    group by 1, 2, 3

),

all_standardised as (

    select
        age_band_sets.period_start,
        age_band_sets.geography_code,
        age_band_sets.indicator_code,
        dsr_95.value,
        dsr_95.lower,
        dsr_95.upper
    from (
        select * from age_band_sets
        where is_complete and not has_suppressed_band
    ) as age_band_sets
    cross join lateral stats.dsr_ci(
        age_band_sets.events, age_band_sets.populations, age_band_sets.weights,
        {{ var('rate_multiplier') }}, 0.95
    ) as dsr_95

),

standardised as (

    select
        suppressed.*,
        case
            when suppressed.is_suppressed then null
            when suppressed.stratifier = 'all' then all_standardised.value
            when suppressed.stratifier = 'sex' and not coalesce(age_band_sets.has_suppressed_band, false)
                then suppressed.disclosed_cells_age_standardised_rate
        end as published_age_standardised_rate,
        case
            when suppressed.is_suppressed then null
            when suppressed.stratifier = 'all' then all_standardised.lower
            when suppressed.stratifier = 'sex' and not coalesce(age_band_sets.has_suppressed_band, false)
                then suppressed.disclosed_cells_age_standardised_lower_95
        end as published_age_standardised_lower_95,
        case
            when suppressed.is_suppressed then null
            when suppressed.stratifier = 'all' then all_standardised.upper
            when suppressed.stratifier = 'sex' and not coalesce(age_band_sets.has_suppressed_band, false)
                then suppressed.disclosed_cells_age_standardised_upper_95
        end as published_age_standardised_upper_95
    from suppressed
    left join age_band_sets
        on suppressed.period_start = age_band_sets.period_start
        and suppressed.geography_code = age_band_sets.geography_code
        and suppressed.indicator_code = age_band_sets.indicator_code
    left join all_standardised
        on suppressed.period_start = all_standardised.period_start
        and suppressed.geography_code = all_standardised.geography_code
        and suppressed.indicator_code = all_standardised.indicator_code

),

-- Rates and intervals are computed from the published count, so value x denominator gives back
-- only what the rounded count already says (OpenSAFELY practice); nationally the published count
-- is the exact count, so national rates are exact.
with_rates as (

    select
        standardised.*,
        case when standardised.is_suppressed then null else standardised.published_numerator end
            as shown_numerator,
        ci_95.value as published_value,
        ci_95.lower as published_lower_95,
        ci_95.upper as published_upper_95,
        ci_998.lower as published_lower_998,
        ci_998.upper as published_upper_998
    from standardised
    left join lateral stats.rate_ci(
        case when standardised.is_suppressed then null else standardised.published_numerator end,
        nullif(standardised.denominator, 0),
        {{ var('rate_multiplier') }}, 0.95
    ) as ci_95 on true
    left join lateral stats.rate_ci(
        case when standardised.is_suppressed then null else standardised.published_numerator end,
        nullif(standardised.denominator, 0),
        {{ var('rate_multiplier') }}, 0.998
    ) as ci_998 on true

),

-- Comparison with the stratifier's reference group (Female; 25-49), from the published figures:
-- rate ratio with its CI on the log scale, ln RR +/- z sqrt(1/O1 + 1/O2) (Poisson counts; as
-- PHEindicatormethods and WHO HEAT compute the CI of a ratio), and rate difference with the
-- MOVER interval built from the two rates' own CIs (Zou & Donner 2008; Newcombe 1998):
-- RD - sqrt((r1 - l1)^2 + (u2 - r2)^2), RD + sqrt((u1 - r1)^2 + (r2 - l2)^2).
compared as (

    {{ reference_group_rows(
        'with_rates', ['period_start', 'geography_code', 'indicator_code'],
        {
            'value': 'published_value',
            'numerator': 'shown_numerator',
            'lower_95': 'published_lower_95',
            'upper_95': 'published_upper_95',
        }
    ) }}

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
                then {{ mover_difference_lower(
                    'compared.published_value', 'compared.published_lower_95',
                    'compared.reference_value', 'compared.reference_upper_95'
                ) }}
        end as rate_difference_lower,
        case
            when compared.group_code <> compared.reference_group_code
                then {{ mover_difference_upper(
                    'compared.published_value', 'compared.published_upper_95',
                    'compared.reference_value', 'compared.reference_lower_95'
                ) }}
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
        case
            when log_rate_ratio_se is not null
                then trim_scale(round(exp(ln(rate_ratio) - stats.z_value(0.95) * log_rate_ratio_se), 6))
        end as rate_ratio_lower_95,
        case
            when log_rate_ratio_se is not null
                then trim_scale(round(exp(ln(rate_ratio) + stats.z_value(0.95) * log_rate_ratio_se), 6))
        end as rate_ratio_upper_95,
        trim_scale(round(rate_difference, 4)) as rate_difference,
        trim_scale(round(rate_difference_lower, 4)) as rate_difference_lower_95,
        trim_scale(round(rate_difference_upper, 4)) as rate_difference_upper_95,

        ----------  age-standardised rate (WHO world standard population; `all` and `sex` only)
        case
            when stratifier in ('all', 'sex') and not is_suppressed then 'who_world_2000_2025'
        end as standard_population,
        trim_scale(round(published_age_standardised_rate, 4)) as age_standardised_rate,
        trim_scale(round(published_age_standardised_lower_95, 4)) as age_standardised_lower_95,
        trim_scale(round(published_age_standardised_upper_95, 4)) as age_standardised_upper_95,

        ----------  lineage: the load state the month was built from (incremental rebuilds)
        source_batch_id,
        source_batch_count

    from with_comparisons

)

select * from final
