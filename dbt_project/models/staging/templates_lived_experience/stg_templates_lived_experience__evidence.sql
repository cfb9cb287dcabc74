-- issue 16: the lived-experience template as loaded, renamed and cast only. The quote and summary
-- are unmasked (personal data): this view lives in the transformer-only staging schema, and no
-- model may select them into a readable schema before knowdo.lived_experience.scrub has masked
-- them (docs/lived-experience.md).
with

source as (

    select * from {{ source('raw', 'template_lived_experience') }}

),

renamed as (

    select

        ----------  ids
        batch_id::bigint as batch_id,
        file_sha256,
        row_number::bigint as source_row_number,
        feed_id,

        ----------  evidence
        organisation_id,
        evidence_id,
        contributor_id,
        country_code,
        geography_code,
        month_collected::date as month_collected,
        intervention_code,
        stratifier,
        group_code,
        source_kind,
        contributor_role,
        language as language_code,
        consent_scope,
        theme_code,
        direction,

        ----------  text as sent (personal data)
        quote as quote_unmasked,
        summary as summary_unmasked,
        contract_version

    from source

)

select * from renamed
