{#- D and R, the difference and ratio of the two subgroups WHO HEAT (healthequal d, r) compares:
    for an ordered dimension the most advantaged (last) vs the most disadvantaged (first) group of a
    favourable indicator (reversed for an adverse one); for a non-ordered one the reference vs the
    worst group (favourable; worst vs reference when adverse), or the highest vs the lowest when
    there is no reference. `standard_errors` NULL: no CIs. A part of stats.inequality_measures. -#}
{% macro stats_inequality_pair_measures_sql() %}
create or replace function stats.inequality_pair_measures(
    estimates numeric[],
    standard_errors numeric[],
    is_ordered boolean,
    i_reference integer,
    is_favourable boolean,
    i_max integer,
    i_min integer,
    z numeric
)
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
declare
    n integer := array_length(estimates, 1);
    i_high integer;
    i_low integer;
    se numeric;
begin
    if is_ordered then
        i_high := case when is_favourable then n else 1 end;
        i_low := case when is_favourable then 1 else n end;
    elsif i_reference is not null then
        i_high := case when is_favourable then i_reference else i_max end;
        i_low := case when is_favourable then i_min else i_reference end;
    else
        i_high := i_max;
        i_low := i_min;
    end if;
    group_1 := i_high;
    group_2 := i_low;

    measure := 'd';
    value := estimates[i_high] - estimates[i_low];
    method := 'HEAT: y1 - y2; CI y1 - y2 -/+ z sqrt(se1^2 + se2^2)';
    if standard_errors is not null then
        se := sqrt(standard_errors[i_high] ^ 2 + standard_errors[i_low] ^ 2);
        lower := value - z * se;
        upper := value + z * se;
    end if;
    return next;

    measure := 'r';
    lower := null;
    upper := null;
    method := 'HEAT: y1 / y2; CI exp(ln R -/+ z sqrt(se1^2/y1^2 + se2^2/y2^2))';
    if estimates[i_low] = 0 then
        value := null;
        not_applicable_reason := 'the estimate of group 2 is 0';
    else
        value := estimates[i_high] / estimates[i_low];
        if standard_errors is not null and estimates[i_high] > 0 and estimates[i_low] > 0 then
            se := sqrt(standard_errors[i_high] ^ 2 / estimates[i_high] ^ 2
                + standard_errors[i_low] ^ 2 / estimates[i_low] ^ 2);
            lower := exp(ln(value) - z * se);
            upper := exp(ln(value) + z * se);
        end if;
    end if;
    return next;
end;
$fn$;

comment on function stats.inequality_pair_measures(
    numeric[], numeric[], boolean, integer, boolean, integer, integer, numeric
) is
    'Part of stats.inequality_measures: D (difference) and R (ratio) of the two subgroups WHO HEAT '
    'compares, with analytic CIs when standard errors are given.';
{% endmacro %}
