{#- Exact Poisson limits for 0..9 observed events: O_L = qchisq(α/2, 2O)/2 (0 when O = 0),
    O_U = qchisq(1 − α/2, 2O + 2)/2, computed once with scipy.stats.chi2.ppf and checked by
    tests/dbt/test_stats_functions.py. -#}
{% macro stats_poisson_exact_limits_sql() %}
create or replace function stats.poisson_exact_limits(
    observed numeric,
    confidence numeric default 0.95,
    out lower numeric,
    out upper numeric
)
language plpgsql
immutable
strict
parallel safe
as $fn$
begin
    perform stats.z_value(confidence);  -- rejects unsupported levels with the same message
    if observed < 0 or observed > 9 or observed <> trunc(observed) then
        raise exception 'stats.poisson_exact_limits: observed must be a whole number 0..9 (got %)',
            observed using errcode = '22023';
    end if;
    select limits.lower, limits.upper
    into lower, upper
    from (values
        (0.95, 0, 0.000000000000000, 3.688879454113935),
        (0.95, 1, 0.025317807984290, 5.571643390938898),
        (0.95, 2, 0.242209278543965, 7.224687667723960),
        (0.95, 3, 0.618672122895601, 8.767273069742323),
        (0.95, 4, 1.089865373626325, 10.241588675403694),
        (0.95, 5, 1.623486390118421, 11.668332079322671),
        (0.95, 6, 2.201894253490851, 13.059474022518685),
        (0.95, 7, 2.814363051519867, 14.422675361702376),
        (0.95, 8, 3.453832176748502, 15.763189220193313),
        (0.95, 9, 4.115373097378334, 17.084803451419166),
        (0.998, 0, 0.000000000000000, 6.907755278982137),
        (0.998, 1, 0.001000500333584, 9.233413476451585),
        (0.998, 2, 0.045402017769490, 11.228872242412661),
        (0.998, 3, 0.190533377568403, 13.062240779188070),
        (0.998, 4, 0.428552413628423, 14.794149222537211),
        (0.998, 5, 0.739371731917833, 16.454745203680105),
        (0.998, 6, 1.107104660255640, 18.061636840199064),
        (0.998, 7, 1.520336260398809, 19.626177395384232),
        (0.998, 8, 1.970813921740366, 21.156198165839982),
        (0.998, 9, 2.452424404363775, 22.657373309062930)
    ) as limits (confidence, observed, lower, upper)
    where limits.confidence = poisson_exact_limits.confidence
      and limits.observed = poisson_exact_limits.observed;
end;
$fn$;

comment on function stats.poisson_exact_limits(numeric, numeric) is
    'Exact Poisson confidence limits for 0..9 observed events: lower = qchisq(alpha/2, 2O)/2 '
    '(0 when O = 0), upper = qchisq(1 - alpha/2, 2O + 2)/2, tabulated from scipy chi2.ppf. '
    'Follows the exact method of PHEindicatormethods (phe_rate, phe_dsr for small counts).';
{% endmacro %}
