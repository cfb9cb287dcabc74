{#- Directly standardised rate with Dobson's confidence interval, over arrays so one call takes a
    whole standardisation set (e.g. array_agg(events order by age_from)). -#}
{% macro stats_dsr_ci_sql() %}
create or replace function stats.dsr_ci(
    events numeric[],
    populations numeric[],
    standard_weights numeric[],
    multiplier numeric default 100000,
    confidence numeric default 0.95,
    out value numeric,
    out lower numeric,
    out upper numeric,
    out total_events numeric
)
language plpgsql
immutable
strict
parallel safe
as $fn$
declare
    group_count integer := coalesce(array_length(events, 1), 0);
    weight_total numeric := 0;
    weighted_rates numeric := 0;
    variance_sum numeric := 0;
    event_count numeric;
    dsr numeric;
    dsr_variance numeric;
    limits record;
begin
    perform stats.z_value(confidence);
    if group_count = 0
        or coalesce(array_length(populations, 1), 0) <> group_count
        or coalesce(array_length(standard_weights, 1), 0) <> group_count then
        raise exception 'stats.dsr_ci: events, populations and standard_weights need the same '
            'non-zero length (got %, %, %)', group_count, array_length(populations, 1),
            array_length(standard_weights, 1) using errcode = '22023';
    end if;
    total_events := 0;
    for i in 1..group_count loop
        -- a missing count is no events, as in phe_dsr (na.zero); a missing population is an error
        event_count := coalesce(events[i], 0);
        if event_count < 0 or populations[i] is null or populations[i] <= 0
            or standard_weights[i] is null or standard_weights[i] < 0 then
            raise exception 'stats.dsr_ci: need events >= 0, populations > 0 and weights >= 0 '
                '(group %: %, %, %)', i, events[i], populations[i], standard_weights[i]
                using errcode = '22023';
        end if;
        total_events := total_events + event_count;
        weight_total := weight_total + standard_weights[i];
        weighted_rates := weighted_rates + event_count * standard_weights[i] / populations[i];
        variance_sum := variance_sum + event_count * (standard_weights[i] / populations[i]) ^ 2;
    end loop;
    if weight_total = 0 then
        raise exception 'stats.dsr_ci: the standard weights sum to zero' using errcode = '22023';
    end if;
    -- Fingertips does not publish a DSR from fewer than 10 events: value and limits stay NULL
    if total_events < 10 then
        return;
    end if;
    dsr := weighted_rates / weight_total;
    dsr_variance := variance_sum / weight_total ^ 2;
    select byar.lower, byar.upper into limits
    from stats.byar_limits(total_events, confidence) as byar;
    value := dsr * multiplier;
    lower := (dsr + sqrt(dsr_variance / total_events) * (limits.lower - total_events)) * multiplier;
    upper := (dsr + sqrt(dsr_variance / total_events) * (limits.upper - total_events)) * multiplier;
end;
$fn$;

comment on function stats.dsr_ci(numeric[], numeric[], numeric[], numeric, numeric) is
    'Directly standardised rate with Dobson''s confidence interval, as (value, lower, upper, '
    'total_events). Follows PHEindicatormethods phe_dsr / calculate_dsr: DSR = sum(x_i w_i / n_i) '
    '/ sum(w_i) x multiplier; var = sum(x_i (w_i/n_i)^2) / sum(w_i)^2; limits = DSR + sqrt(var/O) '
    '(O_L|U - O) with O = sum(x_i) and Byar''s limits O_L, O_U (Dobson et al., Stat Med 1991). '
    'The arrays hold one element per standardisation band, in the same band order (events NULL '
    'count as 0). value, lower and upper are NULL when O < 10 (not published, as in Fingertips). '
    'Standard weights: seed ref_standard_populations (esp2013, who_world_2000_2025). '
    'Confidence 0.95 or 0.998.';
{% endmacro %}
