with

source as (

    select * from {{ source('raw', 'template_ministry_budget') }}

),

renamed as (

    select

        ----------  ids
        batch_id::bigint as batch_id,
        file_sha256,
        row_number::bigint as source_row_number,
        feed_id,

        ----------  budget line
        country_code,
        fiscal_year::integer as fiscal_year,
        budget_line,
        area_of_need,
        amount_type,

        ----------  money
        amount::numeric as amount,
        currency,

        ----------  provenance
        source_document,
        contract_version

    from source

)

select * from renamed
