{#- One row per measure of `measures`, each NULL with `reason`: the rows of the measures that do
    not apply to a set of subgroups. A part of stats.inequality_measures. -#}
{% macro stats_inequality_not_applicable_sql() %}
create or replace function stats.inequality_not_applicable(measures text[], reason text)
returns table (
    measure text,
    value numeric,
    lower numeric,
    upper numeric,
    group_1 integer,
    group_2 integer,
    method text,
    not_applicable_reason text
)
language plpgsql
immutable
parallel safe
as $fn$
begin
    foreach measure in array measures loop
        not_applicable_reason := reason;
        return next;
    end loop;
end;
$fn$;

comment on function stats.inequality_not_applicable(text[], text) is
    'Part of stats.inequality_measures: one row per measure, every value NULL, with the reason.';
{% endmacro %}
