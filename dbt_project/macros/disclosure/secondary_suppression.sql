{#-
    Secondary suppression (shared/EQUITY-METHODS.md "Disclosure control"; NHS Digital and
    OpenSAFELY practice). Below national level the groups of a stratifier add up to the place's
    `all` row, so when exactly one cell of that set {all, group 1, ..., group n} is suppressed,
    `all` minus the published groups gives it back (or the groups' sum gives back `all`). The
    smallest published group of the stratifier (by `size_columns`, then `tie_breaker_columns`) is
    then suppressed too, so every set has no suppressed cell or at least two.

    The `all` row itself is never suppressed secondarily: it is shared by every stratifier of the
    place, so suppressing it for one would unsettle the others. One pass is therefore exact:
    secondary suppression never changes the suppressed cells of another set.

    Returns a SELECT of `key_column` (one row per cell to suppress secondarily) for a CTE:

        secondary_suppressed as (
            {{ disclosure_secondary_suppressed_keys('published', 'cell_key', [...], ...) }}
        ),
-#}
{% macro disclosure_secondary_suppressed_keys(
    relation,
    key_column,
    place_columns,
    is_suppressed_column,
    size_columns,
    tie_breaker_columns=[],
    stratifier_column='stratifier',
    geography_level_column='geography_level',
    total_stratifier='all'
) -%}
{%- set stratum_columns = place_columns + [stratifier_column] -%}
    select distinct on (
        {%- for column in stratum_columns %}
        cell.{{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    )
        cell.{{ key_column }}
    from {{ relation }} as cell
    inner join (
        -- suppressed cells of each set: the stratifier's groups plus the place's `all` row
        select
            {%- for column in stratum_columns %}
            groups.{{ column }},
            {%- endfor %}
            count(*) filter (where groups.{{ is_suppressed_column }})
            + coalesce(max(case when total.{{ is_suppressed_column }} then 1 else 0 end), 0)
                as suppressed_cells
        from {{ relation }} as groups
        left join {{ relation }} as total
            on
                {%- for column in place_columns %}
                groups.{{ column }} = total.{{ column }} and
                {%- endfor %}
                total.{{ stratifier_column }} = '{{ total_stratifier }}'
        where
            groups.{{ geography_level_column }} <> 'national'
            and groups.{{ stratifier_column }} <> '{{ total_stratifier }}'
        group by
            {%- for column in stratum_columns %}
            groups.{{ column }}{{ "," if not loop.last }}
            {%- endfor %}
    ) as strata
        on
            {%- for column in stratum_columns %}
            cell.{{ column }} = strata.{{ column }}{{ " and" if not loop.last }}
            {%- endfor %}
    where strata.suppressed_cells = 1 and not cell.{{ is_suppressed_column }}
    order by
        {%- for column in stratum_columns %}
        cell.{{ column }},
        {%- endfor %}
        {%- for column in size_columns + tie_breaker_columns %}
        cell.{{ column }}{{ "," if not loop.last }}
        {%- endfor %}
{%- endmacro %}
