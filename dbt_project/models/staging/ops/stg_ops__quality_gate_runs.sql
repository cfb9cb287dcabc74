with

source as (

    select * from {{ source('ops', 'quality_gate_runs') }}

),

renamed as (

    select

        ----------  ids
        run_id,
        suite_name,

        ----------  what was checked
        layer as gate_layer,
        table_name as checked_table,
        fingerprint as table_fingerprint,

        ----------  outcome
        success as is_success,
        evaluated::integer as expectations_evaluated,
        failed::integer as expectations_failed,
        published as is_published,
        failures as failed_expectations,
        notes as gate_notes,
        -- data_docs (a local file path of the Data Docs site) is left out on purpose

        ----------  timestamps
        checked_at

    from source

)

select * from renamed
