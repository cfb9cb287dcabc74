with

source as (

    select * from {{ source('raw', 'threesixtygiving_grants') }}

),

renamed as (

    select

        ----------  ids
        batch_id::bigint as batch_id,
        file_sha256,
        row_number::bigint as source_row_number,
        feed_id,
        grant_id,

        ----------  grant
        title as grant_title,
        description as grant_description,
        grant_programme_title,
        classifications,

        ----------  money
        currency,
        amount_awarded::numeric as amount_awarded,

        ----------  dates
        award_date::date as award_date,
        planned_start_date::date as planned_start_date,
        planned_end_date::date as planned_end_date,

        ----------  organisations and places
        funding_org_id,
        funding_org_name,
        recipient_org_id,
        recipient_org_name,
        beneficiary_country_codes,

        ----------  everything else as sent
        extra as extra_fields

    from source

)

select * from renamed
