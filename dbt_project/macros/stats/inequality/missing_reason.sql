{#- Why no inequality measure of a set of subgroups can be published (NULL when they can): fewer
    than 2 groups, or a group without an estimate or a positive population. A part of
    stats.inequality_measures. -#}
{% macro stats_inequality_missing_reason_sql() %}
create or replace function stats.inequality_missing_reason(
    estimates numeric[],
    populations numeric[]
)
returns text
language plpgsql
immutable
parallel safe
as $fn$
begin
    if coalesce(array_length(estimates, 1), 0) < 2 then
        return 'needs at least 2 groups';
    elsif array_position(estimates, null) is not null then
        return 'a group has no published estimate (suppressed or without population)';
    elsif array_position(populations, null) is not null
        or exists (select 1 from unnest(populations) as population where population <= 0) then
        return 'a group has no population';
    end if;
    return null;
end;
$fn$;

comment on function stats.inequality_missing_reason(numeric[], numeric[]) is
    'Part of stats.inequality_measures: why no measure of the subgroups can be published (fewer '
    'than 2 groups, a NULL estimate, a NULL or non-positive population), or NULL.';
{% endmacro %}
