{#- The rows of `rows` (a CTE with the loader's batch_id and feed_id) that belong to the latest
    loaded batch of their supersession partition: a corrected resend wins for every partition it
    covers, and a superseded or failed batch never counts. `partition_by` names the columns of the
    loader's partition besides feed_id; those in `null_safe` may be NULL and still match. -#}
{% macro current_batch_rows(rows, partition_by, load_batches='load_batches', null_safe=[]) -%}
    select {{ rows }}.*
    from {{ rows }}
    inner join (
        select
            {{ rows }}.feed_id,
            {%- for column in partition_by %}
            {{ rows }}.{{ column }},
            {%- endfor %}
            max({{ rows }}.batch_id) as batch_id
        from {{ rows }}
        inner join {{ load_batches }}
            on {{ rows }}.batch_id = {{ load_batches }}.batch_id
        where {{ load_batches }}.batch_status = 'loaded'
        group by {% for i in range(partition_by | length + 1) %}{{ i + 1 }}{{ ", " if not loop.last }}{% endfor %}
    ) as current_batches
        on
            {{ rows }}.batch_id = current_batches.batch_id
            and {{ rows }}.feed_id = current_batches.feed_id
            {%- for column in partition_by %}
            and {{ rows }}.{{ column }} {{ "is not distinct from" if column in null_safe else "=" }} current_batches.{{ column }}
            {%- endfor %}
{%- endmacro %}
