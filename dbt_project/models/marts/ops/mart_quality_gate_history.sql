{#-
    Every quality-gate outcome, one row per gate run and suite, for the Data health dashboard.
    The failure details (jsonb) stay in ops: for raw suites they can quote raw values.
-#}

with

gate_runs as (

    select * from {{ ref('stg_ops__quality_gate_runs') }}

),

final as (

    select
        run_id,
        suite_name,
        gate_layer as layer,
        checked_table as table_name,
        checked_at,
        is_success as success,
        expectations_evaluated as evaluated,
        expectations_failed as failed,
        case
            when expectations_evaluated > 0
                then round(100.0 * expectations_failed / expectations_evaluated, 4)::numeric(9, 4)
        end as failed_share,
        is_published as published

    from gate_runs

)

select * from final
