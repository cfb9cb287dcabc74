with

source as (

    select * from {{ source('raw', 'who_gho_values') }}

),

renamed as (

    select

        ----------  ids
        batch_id::bigint as batch_id,
        file_sha256,
        row_number::bigint as source_row_number,
        feed_id,
        export_layout,

        ----------  indicator
        indicator_code,
        indicator_name,

        ----------  place
        spatial_type,
        spatial_code,
        country_code,
        parent_location_code,

        ----------  period
        period::integer as period_year,
        period_start::date as period_start,
        period_end::date as period_end,

        ----------  dimensions
        dim1_type,
        dim1_code,
        dim2_type,
        dim2_code,
        dim3_type,
        dim3_code,
        data_source_code,

        ----------  value
        value_numeric::numeric as value_numeric,
        value_low::numeric as value_low,
        value_high::numeric as value_high,
        value_text,
        is_suppressed,
        comments as value_comments,
        date_modified as modified_at

    from source

)

select * from renamed
