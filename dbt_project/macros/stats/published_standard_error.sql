{#-
    Standard error of a published estimate from its published counts, for the inequality summary
    measures (mart_inequality_measures): a rate per `multiplier` has the Poisson standard error
    multiplier x sqrt(count) / population; a proportion in percent (multiplier 100) the binomial
    multiplier x sqrt(p (1 - p) / n), p = count / n. NULL when a count is missing (suppressed).
-#}
{% macro published_standard_error(measure_kind, numerator, denominator, multiplier) -%}
    case
        when {{ measure_kind }} = 'rate'
            then {{ multiplier }} * sqrt({{ numerator }}::numeric) / nullif({{ denominator }}, 0)
        when {{ measure_kind }} = 'proportion' and {{ denominator }} > 0
            -- greatest(): a count above its denominator is suppressed upstream; never a negative root
            then {{ multiplier }} * sqrt(greatest(0,
                ({{ numerator }}::numeric / {{ denominator }})
                * (1 - {{ numerator }}::numeric / {{ denominator }})
                / {{ denominator }}
            ))
    end
{%- endmacro %}
