with

source as (

    select * from {{ source('raw', 'template_population') }}

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
        year::integer as population_year,
        sex as sex_code,
        age_band as age_band_code,
        nullif(ethnicity, '') as ethnicity_code,
        nullif(imd_decile, '') as imd_decile_code,

        ----------  value
        population::bigint as population,
        source as population_source,
        contract_version

    from source

)

select * from renamed
