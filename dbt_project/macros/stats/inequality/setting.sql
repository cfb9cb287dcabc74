{#- What every inequality measure of a set of subgroups starts from: the population shares p_j, the
    cumulative-rank midpoints X_j (ordered dimensions), the setting average mu = sum p_j y_j, the
    positions of the highest and lowest estimates (the first of ties) and whether an estimate is
    0. A part of stats.inequality_measures (its arguments are checked there). -#}
{% macro stats_inequality_setting_sql() %}
create or replace function stats.inequality_setting(
    estimates numeric[],
    populations numeric[],
    out share numeric[],
    out rank_midpoint numeric[],
    out mu numeric,
    out i_max integer,
    out i_min integer,
    out has_zero boolean
)
language plpgsql
immutable
strict
parallel safe
as $fn$
declare
    n integer := coalesce(array_length(estimates, 1), 0);
    total_population numeric := 0;
    cumulative numeric := 0;
begin
    for i in 1..n loop
        total_population := total_population + greatest(populations[i], 0);
    end loop;
    share := array_fill(0::numeric, array[n]);
    rank_midpoint := array_fill(0::numeric, array[n]);
    mu := 0;
    i_max := 1;
    i_min := 1;
    has_zero := false;
    for i in 1..n loop
        share[i] := populations[i] / total_population;
        rank_midpoint[i] := cumulative + share[i] / 2;
        cumulative := cumulative + share[i];
        mu := mu + share[i] * estimates[i];
        if estimates[i] > estimates[i_max] then i_max := i; end if;
        if estimates[i] < estimates[i_min] then i_min := i; end if;
        if estimates[i] = 0 then has_zero := true; end if;
    end loop;
end;
$fn$;

comment on function stats.inequality_setting(numeric[], numeric[]) is
    'Part of stats.inequality_measures: population shares, cumulative-rank midpoints, the setting '
    'average mu, the positions of the highest and lowest estimates and whether any estimate is 0.';
{% endmacro %}
