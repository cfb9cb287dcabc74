with

source as (

    select * from {{ source('ops', 'rejected_rows') }}

),

renamed as (

    select

        ----------  ids
        batch_id::bigint as batch_id,
        file_sha256,
        row_number::bigint as source_row_number,

        ----------  what was wrong
        field as field_name,
        value as rejected_value,
        reason as rejection_reason,

        ----------  timestamps
        rejected_at

    from source

)

select * from renamed
