{#- Incremental service-use models rebuild whole months. Everything computed across groups (the
    `all` row, comparisons with the reference group, secondary suppression, age standardisation)
    stays within one month x geography x indicator, so replacing every row of the changed months
    gives exactly what a full refresh gives.

    A month is stale when its load state (int_service_use__load_state: the latest batch and the
    number of batches behind it) differs from the key stored on the model's rows; a model's rows of
    one month always carry one key, because a month is only ever replaced whole. -#}

{% macro service_use_stale_periods(relation=none) -%}
    {%- set built = relation if relation is not none else this -%}
    select period_load_state.period_start
    from {{ ref('int_service_use__load_state') }} as period_load_state
    {#- built before the load keys existed (a warehouse from an earlier version): every month is
        stale, so the run rebuilds them all and on_schema_change='append_new_columns' adds the key
        columns; no manual --full-refresh is needed to upgrade -#}
    {%- if service_use_has_load_keys(built) %}
    where not exists (
        select 1
        from {{ built }} as built
        where
            built.period_start = period_load_state.period_start
            and built.source_batch_id = period_load_state.source_batch_id
            and built.source_batch_count = period_load_state.source_batch_count
    )
    {%- endif %}
{%- endmacro %}


{#- True when `relation` (a table built earlier) carries the load-state key columns. -#}
{% macro service_use_has_load_keys(relation) -%}
    {%- if not execute -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set names = adapter.get_columns_in_relation(relation) | map(attribute='name') | list -%}
    {{ return('source_batch_id' in names and 'source_batch_count' in names) }}
{%- endmacro %}


{#- Pre-hook: delete the stale months before the model's rows are built (same transaction), so a
    month whose new load yields no rows at all (every value deleted) is emptied too, and so is a
    month no load covers any more (its batches deleted by hand); delete+insert on period_start
    alone would only replace the months that still have rows. -#}
{% macro delete_stale_service_use_periods() -%}
    {%- if is_incremental() and service_use_has_load_keys(this) -%}
    delete from {{ this }} as built
    where
        built.period_start in ({{ service_use_stale_periods(this) }})
        or not exists (
            select 1
            from {{ ref('int_service_use__load_state') }} as load_state
            where load_state.period_start = built.period_start
        )
    {%- endif -%}
{%- endmacro %}


{#- SQL condition: `column` is a month to build (every month on a full refresh). -#}
{% macro is_service_use_period_to_build(column) -%}
    {%- if is_incremental() -%}
    {{ column }} in ({{ service_use_stale_periods(this) }})
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}


{#- SQL condition on a raw-table staging model (columns period_start, batch_id): the row belongs
    to a month to build, and to a loaded batch of `raw_table` covering one of those months, so
    the raw table is read through its batch_id index rather than scanned whole. -#}
{% macro service_use_raw_rows_to_build(raw_table) -%}
    {%- if is_incremental() -%}
    {#- `= any(array(subquery))`, not `in (subquery)`: the array is computed first (an InitPlan),
        so the planner reads the raw table through its batch_id index instead of guessing the
        batches' size and scanning the whole table -#}
    period_start = any(array({{ service_use_stale_periods(this) }}))
    and batch_id = any(array(
        select batches.batch_id
        from {{ ref('stg_ops__load_batches') }} as batches
        where
            batches.batch_status = 'loaded'
            and batches.raw_table = '{{ raw_table }}'
            and exists (
                select 1
                from ({{ service_use_stale_periods(this) }}) as stale
                where stale.period_start between
                    date_trunc('month', batches.first_period_start) and batches.last_period_start
            )
    ))
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}


{#- The config every incremental service-use model shares: whole months replaced (delete+insert
    on period_start, after the pre-hook above emptied the stale ones), the load key indexed for
    the staleness check, new columns added to an older build. In a model:
    `{{ config(**service_use_incremental_config()) }}`; `pre_hooks` run after the delete. -#}
{% macro service_use_incremental_config(pre_hooks=[]) -%}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'delete+insert',
        'unique_key': 'period_start',
        'on_schema_change': 'append_new_columns',
        'indexes': [{'columns': ['period_start', 'source_batch_id', 'source_batch_count']}],
        'pre_hook': ['{{ delete_stale_service_use_periods() }}'] + pre_hooks,
    }) }}
{%- endmacro %}
