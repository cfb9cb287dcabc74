{#-
    Comparison of every group with its stratifier's reference group (ref_stratifier_groups'
    is_reference: Female, 25-49, White, IMD decile 1, ...), as the marts publish it.
-#}

{#- SELECT (for a CTE) of every row of `rows` with its reference group's figures beside it: the
    columns reference_group_code and reference_<name> for each `<name>: <column>` of
    `reference_columns`. The reference group is the row of the same `partition_by` x stratifier with
    is_reference_group; a row without one gets NULLs. -#}
{% macro reference_group_rows(rows, partition_by, reference_columns) -%}
    select
        {{ rows }}.*,
        reference.group_code as reference_group_code
        {%- for name, column in reference_columns.items() %},
        reference.{{ column }} as reference_{{ name }}
        {%- endfor %}
    from {{ rows }}
    left join {{ rows }} as reference
        on
            {%- for column in partition_by %}
            {{ rows }}.{{ column }} = reference.{{ column }}
            and
            {%- endfor %} {{ rows }}.stratifier = reference.stratifier
            and reference.is_reference_group
{%- endmacro %}

{#- The MOVER interval of a difference of two estimates (estimate minus reference) from their own
    confidence limits (Zou & Donner 2008; Newcombe 1998):
    D - sqrt((e - l_e)^2 + (u_r - r)^2), D + sqrt((u_e - e)^2 + (r - l_r)^2), D = e - r.
    Each macro takes SQL expressions and returns one. -#}
{% macro mover_difference_lower(estimate, estimate_lower, reference, reference_upper) -%}
    {{ estimate }} - {{ reference }} - sqrt(
        ({{ estimate }} - {{ estimate_lower }}) ^ 2
        + ({{ reference_upper }} - {{ reference }}) ^ 2
    )
{%- endmacro %}

{% macro mover_difference_upper(estimate, estimate_upper, reference, reference_lower) -%}
    {{ estimate }} - {{ reference }} + sqrt(
        ({{ estimate_upper }} - {{ estimate }}) ^ 2
        + ({{ reference }} - {{ reference_lower }}) ^ 2
    )
{%- endmacro %}
