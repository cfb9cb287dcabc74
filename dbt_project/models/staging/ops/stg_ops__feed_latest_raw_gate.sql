with

source as (

    select * from {{ source('ops', 'feed_latest_raw_gate') }}

),

renamed as (

    select

        ----------  ids
        feed_id,
        run_id as last_gate_run_id,

        ----------  what was checked
        raw_table_name,

        ----------  outcome
        success as last_gate_success,
        published as last_gate_published,

        ----------  timestamps
        checked_at as last_gate_checked_at

    from source

)

select * from renamed
