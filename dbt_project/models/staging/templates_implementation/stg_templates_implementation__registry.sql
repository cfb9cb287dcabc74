with

source as (

    select * from {{ source('raw', 'template_implementation_registry') }}

),

renamed as (

    select

        ----------  ids
        batch_id::bigint as batch_id,
        file_sha256,
        row_number::bigint as source_row_number,
        feed_id,

        ----------  project and site
        project_code,
        project_name,
        intervention_code,
        country_code,
        site_level,
        site_code,

        ----------  phases
        pilot_date::date as pilot_date,
        go_live_date::date as go_live_date,
        scale_up_date::date as scale_up_date,
        de_implementation_date::date as de_implementation_date,

        ----------  what to evaluate (comparison_sites: codes joined by ';' or all_same_level)
        comparison_sites,
        outcome_indicator as indicator_code,
        stratifier,
        contract_version

    from source

)

select * from renamed
