{#-
    A model's `schema` config names the schema literally (`+schema: marts_candidate` builds in
    `marts_candidate`, not dbt's default `<target schema>_marts_candidate`): the warehouse has a
    fixed set of schemas with their own grants (infra/sql/warehouse_init.sql). Models without a
    schema config fall back to the target schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
