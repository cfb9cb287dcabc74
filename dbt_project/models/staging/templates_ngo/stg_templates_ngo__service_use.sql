with

source as (

    select * from {{ source('raw', 'template_ngo_service_use') }}

),

renamed as (

    select

        ----------  ids
        batch_id::bigint as batch_id,
        file_sha256,
        row_number::bigint as source_row_number,
        feed_id,

        ----------  cell
        organisation_id,
        country_code,
        geography_code,
        period::date as period_start,
        intervention_code,
        stratifier,
        group_code,

        ----------  counts (NULL when the submitter suppressed them)
        people_reached::bigint as people_reached,
        sessions_delivered::bigint as sessions_delivered,
        suppressed_columns,
        contract_version

    from source

)

select * from renamed
