with

source as (

    select * from {{ source('raw', 'dhis2_data_values') }}

),

renamed as (

    select

        ----------  ids
        batch_id::bigint as batch_id,
        file_sha256,
        row_number::bigint as source_row_number,
        feed_id,

        ----------  dhis2 identifiers as sent
        data_element as data_element_uid,
        period as dhis2_period,
        org_unit as org_unit_uid,
        category_option_combo as category_option_combo_uid,
        attribute_option_combo as attribute_option_combo_uid,

        ----------  knowdo codes from the feed registry mapping
        indicator_code,
        geography_code,
        sex_code,
        age_band_code,

        ----------  period
        period_start::date as period_start,
        -- rows loaded before every DHIS2 period type was read have no period_end: only monthly,
        -- quarterly and yearly periods were accepted then
        coalesce(
            period_end::date,
            (period_start + case period_type
                when 'quarter' then interval '3 months'
                when 'year' then interval '1 year'
                else interval '1 month'
            end)::date - 1
        ) as period_end,
        period_type,

        ----------  value
        value::numeric as data_value,
        deleted as is_deleted,

        ----------  audit
        stored_by,
        last_updated as last_updated_at,
        comment as data_value_comment

    from source

)

select * from renamed
