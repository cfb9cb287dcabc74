with

source as (

    select * from {{ source('raw', 'mhsds_measures') }}

),

renamed as (

    select

        ----------  ids
        batch_id::bigint as batch_id,
        file_sha256,
        row_number::bigint as source_row_number,
        feed_id,

        ----------  period
        reporting_period_start::date as reporting_period_start,
        reporting_period_end::date as reporting_period_end,
        status as publication_status,

        ----------  breakdown as published
        breakdown,
        primary_level,
        primary_level_description,
        secondary_level,
        secondary_level_description,

        ----------  measure
        measure_id,
        measure_name,
        measure_value::numeric as measure_value,
        is_suppressed,
        raw_value

    from source

)

select * from renamed
