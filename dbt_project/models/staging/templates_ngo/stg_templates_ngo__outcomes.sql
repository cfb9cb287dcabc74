with

source as (

    select * from {{ source('raw', 'template_ngo_outcomes') }}

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
        period::date as period_start,
        intervention_code,
        instrument,
        stratifier,
        group_code,

        ----------  outcome measures (counts NULL when the submitter suppressed them)
        people_assessed::bigint as people_assessed,
        mean_score_before::numeric as mean_score_before,
        mean_score_after::numeric as mean_score_after,
        people_reliably_improved::bigint as people_reliably_improved,
        people_recovered::bigint as people_recovered,
        suppressed_columns,
        contract_version

    from source

)

select * from renamed
