{#-
    England's published service use (MHSDS: the measures relevant to PCREF, by ethnicity) per NIHR
    ARC, with the ARC as a column: the row-level security key of ARC viewers in Superset, which
    fct_service_use (keyed by country) does not carry. ARC-level rows carry the ARC as their
    geography; ICB rows get their ARC from ref_icb_arcs. A count the publisher withheld ('*', a NULL
    count) is marked suppressed here too, so no reader can take it for a zero.
-#}

with

service_use as (

    select * from {{ ref('fct_service_use') }}

),

icb_arcs as (

    select * from {{ ref('ref_icb_arcs') }}

),

arc_rows as (

    select
        service_use.*,
        case
            when service_use.geography_level = 'arc' then service_use.geography_code
            else icb_arcs.arc_code
        end as arc_code
    from service_use
    left join icb_arcs
        on service_use.geography_code = icb_arcs.icb_code
    where service_use.geography_level in ('arc', 'icb')

),

final as (

    select

        ----------  key and grain
        service_use_key,
        period_start,
        period_type,

        ----------  access keys and geography
        country_code,
        arc_code,
        geography_code,
        geography_name,
        geography_level,

        ----------  what is measured
        indicator_code,
        indicator_name,
        stratifier,
        group_code,
        group_label,
        group_order,
        is_reference_group,

        ----------  the published estimate
        numerator,
        denominator,
        multiplier,
        value,
        lower_95,
        upper_95,
        ci_method,
        is_suppressed or numerator is null as is_suppressed,
        case
            when is_suppressed then suppression_reason
            when numerator is null then 'suppressed by the publisher'
        end as suppression_reason,

        ----------  comparison with the reference group (White)
        reference_group_code,
        rate_ratio,
        rate_ratio_lower_95,
        rate_ratio_upper_95,
        rate_difference,
        rate_difference_lower_95,
        rate_difference_upper_95

    from arc_rows
    where arc_code is not null

)

select * from final
