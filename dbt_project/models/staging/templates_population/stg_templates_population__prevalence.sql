with

source as (

    select * from {{ source('raw', 'template_prevalence') }}

),

renamed as (

    select

        ----------  ids
        batch_id::bigint as batch_id,
        file_sha256,
        row_number::bigint as source_row_number,
        feed_id,

        ----------  cell
        geography_code,
        year::integer as prevalence_year,
        condition as condition_code,
        sex as sex_code,
        age_band as age_band_code,

        ----------  estimate (percent of the population)
        prevalence_percent::numeric as prevalence_percent,
        lower_percent::numeric as lower_percent,
        upper_percent::numeric as upper_percent,
        source as estimate_source,
        contract_version

    from source

)

select * from renamed
