with

source as (

    select * from {{ source('ops', 'feeds') }}

),

renamed as (

    select

        ----------  ids
        feed_id,

        ----------  publisher
        publisher_name,
        publisher_kind,
        country_code,

        ----------  feed
        domain as feed_domain,
        format as feed_format,
        schedule as feed_schedule,
        -- one interval of the schedule (knowdo.schedules); NULL: no schedule, nothing is ever due
        schedule_interval,
        due_within_days::integer as due_within_days,
        -- `source` (inbox folder, glob or URL) is left out: where files come from is not for marts

        ----------  registry sync
        in_registry as is_in_registry,
        synced_at

    from source

)

select * from renamed
