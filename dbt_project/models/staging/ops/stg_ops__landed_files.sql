with

source as (

    select * from {{ source('ops', 'landed_files') }}

),

renamed as (

    select

        ----------  ids
        file_sha256,
        feed_id,

        ----------  file
        -- landing_path is left out on purpose: paths of the landing zone are never exposed
        file_name,
        size_bytes::bigint as size_bytes,

        ----------  timestamps
        received_at

    from source

)

select * from renamed
