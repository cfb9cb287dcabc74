{#- The interval between two expected files of a feed, from its registry schedule
    ('@daily' ... '@yearly'); `otherwise` for a cron expression or no schedule (NULL by default). -#}
{% macro schedule_interval(schedule_column, otherwise='null') -%}
    case {{ schedule_column }}
        when '@daily' then interval '1 day'
        when '@weekly' then interval '7 days'
        when '@monthly' then interval '1 month'
        when '@quarterly' then interval '3 months'
        when '@yearly' then interval '1 year'
        when '@annually' then interval '1 year'
        else {{ otherwise }}
    end
{%- endmacro %}
