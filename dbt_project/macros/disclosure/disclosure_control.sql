{#-
    Statistical disclosure control of published counts, following NHS Digital practice for the
    Mental Health Services Data Set (shared/EQUITY-METHODS.md "Disclosure control"):

    - national totals are published unrounded;
    - below national level, a count under `disclosure_min_count` (5) is suppressed: the count, the
      rate and every confidence limit become NULL, with a flag and a reason (never zero);
    - every other count below national level is rounded to the nearest `disclosure_rounding_base`
      (5). Marts compute rates and confidence limits from the published (rounded) count, so a
      published rate times its denominator reveals nothing the rounded count does not (OpenSAFELY
      practice; NHS Digital computes them from the unrounded count, which would let the exact count
      be recovered from rate x denominator).

    Each macro takes SQL expressions (column names) and returns a SQL expression, so a mart applies
    the same rule to every count it publishes.
-#}

{#- true when the count must not be published -#}
{% macro disclosure_is_suppressed(count_column, geography_level_column) -%}
    coalesce(
        {{ geography_level_column }} <> 'national'
        and {{ count_column }} < {{ var('disclosure_min_count') }},
        false
    )
{%- endmacro %}

{#- the count as published: unrounded nationally, NULL when suppressed, else rounded -#}
{% macro disclosure_published_count(count_column, geography_level_column) -%}
    (case
        when {{ geography_level_column }} = 'national' then {{ count_column }}
        when {{ count_column }} < {{ var('disclosure_min_count') }} then null
        else round({{ count_column }}::numeric / {{ var('disclosure_rounding_base') }})
            * {{ var('disclosure_rounding_base') }}
    end)::bigint
{%- endmacro %}

{#- any statistic derived from the count: NULL when the count is suppressed -#}
{% macro disclosure_masked(expression, count_column, geography_level_column) -%}
    case
        when {{ disclosure_is_suppressed(count_column, geography_level_column) }} then null
        else {{ expression }}
    end
{%- endmacro %}

{#- why a row is suppressed (NULL when it is not) -#}
{% macro disclosure_suppression_reason(count_column, geography_level_column) -%}
    case
        when {{ disclosure_is_suppressed(count_column, geography_level_column) }}
            then 'count below {{ var("disclosure_min_count") }}'
    end
{%- endmacro %}
