with

source as (

    select * from {{ source('raw', 'iati_activities') }}

),

renamed as (

    select

        ----------  ids
        batch_id::bigint as batch_id,
        file_sha256,
        row_number::bigint as source_row_number,
        feed_id,
        iati_identifier,

        ----------  activity
        iati_version,
        default_currency,
        activity_status as activity_status_code,
        title as activity_title,
        is_mental_health,
        activity_date_start::date as activity_start_date,
        last_updated_datetime as last_updated_at,

        ----------  publisher
        reporting_org_ref,
        reporting_org_name,
        reporting_org_type,

        ----------  nested lists, kept as sent
        participating_orgs,
        sectors,
        recipient_countries,
        recipient_regions,
        transactions,
        warnings

    from source

)

select * from renamed
