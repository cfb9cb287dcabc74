{#- The national rows of a DHIS2 service-use model, rolled up from its region rows: the country is
    the sum of its reporting regions, and the denominator is their population (NULL when any
    reporting region has none), so a region that did not report lowers neither numerator nor rate.
    `region_rows` is a CTE with period_start, indicator_code, geography_code (a region of
    `geographies`, whose parent_code is the country), the `group_columns`, the `count_column` and
    the `population_column`; the rows keep those column names, after geography_level
    ('national'), with `reporting_geographies` (the regions summed) last when asked for. -#}
{% macro dhis2_national_rows(
    region_rows,
    group_columns,
    count_column,
    population_column,
    reporting_geographies=false,
    geographies='geographies'
) -%}
    select
        {{ region_rows }}.period_start,
        {{ region_rows }}.indicator_code,
        {{ geographies }}.parent_code as geography_code,
        'national' as geography_level,
        {%- for column in group_columns %}
        {{ region_rows }}.{{ column }},
        {%- endfor %}
        sum({{ region_rows }}.{{ count_column }})::bigint as {{ count_column }},
        case
            when count({{ region_rows }}.{{ population_column }}) = count(*)
                then sum({{ region_rows }}.{{ population_column }})
        end::bigint as {{ population_column }}
        {%- if reporting_geographies %},
        count(*)::integer as reporting_geographies
        {%- endif %}
    from {{ region_rows }}
    inner join {{ geographies }}
        on {{ region_rows }}.geography_code = {{ geographies }}.geography_code
    group by 1, 2, 3{% for column in group_columns %}, {{ loop.index + 4 }}{% endfor %}
{%- endmacro %}
