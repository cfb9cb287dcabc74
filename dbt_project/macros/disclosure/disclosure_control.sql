{#-
    Statistical disclosure control of published counts of people (NHS Digital practice for the
    Mental Health Services Data Set, made to hold against differencing):

    - national totals are published unrounded;
    - below national level, a count under `disclosure_min_count` (5) is suppressed (primary
      suppression): the count and everything computed from it become NULL, with a flag and a
      reason, never zero;
    - every other count below national level is rounded to the nearest `disclosure_rounding_base`
      (5);
    - secondary suppression (secondary_suppression.sql) then hides more cells until no additive
      relation the mart publishes (groups -> `all`, regions -> country, ICBs -> ARC, months ->
      year) gives a hidden count back or bounds it more tightly than the threshold;
    - every statistic a mart publishes (rates and limits, age-standardised rates, ratios and
      differences, inequality measures, `all` rows, parents, annual figures) is computed from the
      PUBLISHED cells (suppressed and rounded), or is NULL when any of its input cells is
      suppressed. A rate times its denominator then gives back the rounded count and nothing more;
      a statistic of unrounded counts could be solved back for them (OpenSAFELY practice; NHS
      Digital computes rates from unrounded counts, which leaks).

    A suppressed row says why with one reason, whether its own count was small or it hides a
    partner's (disclosure_suppression_label): saying which cell is the small one would bound it to
    [0, 4] and its partner to 5 or more, and those bounds with an exact total can pin both.

    Each macro takes SQL expressions (column names) and returns a SQL expression, so a mart applies
    the same rule to every count it publishes.
-#}

{#- the one reason KnowDo gives for a count it suppresses (primary or secondary) -#}
{% macro disclosure_suppression_label() -%}
    disclosure control
{%- endmacro %}

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

