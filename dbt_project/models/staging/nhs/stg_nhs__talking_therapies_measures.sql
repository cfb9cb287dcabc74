with

source as (

    select * from {{ source('raw', 'nhs_talking_therapies_measures') }}

),

renamed as (

    select

        ----------  ids
        batch_id::bigint as batch_id,
        file_sha256,
        row_number::bigint as source_row_number,
        feed_id,
        file_layout,

        ----------  period
        reporting_period_start::date as reporting_period_start,
        reporting_period_end::date as reporting_period_end,

        ----------  organisation as published
        org_level,
        org_code,
        org_name,
        nullif(secondary_org_code, '') as secondary_org_code,
        nullif(secondary_org_name, '') as secondary_org_name,

        ----------  breakdown as published (annual VariableType / VariableA / VariableB)
        breakdown,
        breakdown_group,
        breakdown_subgroup,

        ----------  measure
        coalesce(nullif(measure_id, ''), measure_name) as measure_code,
        measure_name,
        measure_value::numeric as measure_value,
        is_suppressed,
        raw_value

    from source

)

select * from renamed
