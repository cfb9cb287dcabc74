{#-
    One row per IATI transaction that moves money in KnowDo's sense: commitments (type 2),
    disbursements (3) and expenditures (4) of the current version of each activity. Incoming
    funds, repayments, interest and the rest are not funding flows and are left out.
-#}

with

activities as (

    select * from {{ ref('stg_iati__activities') }}

),

load_batches as (

    select * from {{ ref('stg_ops__load_batches') }}

),

loaded_activities as (

    select activities.*
    from activities
    inner join load_batches
        on activities.batch_id = load_batches.batch_id
    where load_batches.batch_status = 'loaded'

),

current_activities as (

    -- an activity file is the publisher's full current picture of each activity in it: the
    -- newest loaded version of an activity wins (an activity missing from a newer file keeps its
    -- last version); an identifier published in two feeds counts once, the most recently
    -- updated version
    select distinct on (iati_identifier) *
    from loaded_activities
    order by iati_identifier asc, last_updated_at desc nulls last, batch_id desc

),

transactions as (

    select
        current_activities.iati_identifier,
        transaction_list.transaction_number::integer as transaction_number,
        current_activities.feed_id,
        current_activities.batch_id,
        current_activities.activity_title,
        current_activities.default_currency,
        current_activities.reporting_org_ref,
        current_activities.reporting_org_name,
        current_activities.participating_orgs,
        current_activities.sectors as activity_sectors,
        current_activities.recipient_countries as activity_recipient_countries,
        current_activities.recipient_regions as activity_recipient_regions,
        transaction_list.transaction_item as item
    from current_activities
    inner join lateral jsonb_array_elements(
        current_activities.transactions
    ) with ordinality as transaction_list (transaction_item, transaction_number) on true

),

org_names as (

    -- the name a publisher gives each participating organisation, for transactions that give
    -- only a ref
    select distinct on (current_activities.iati_identifier, org ->> 'ref')
        current_activities.iati_identifier,
        org ->> 'ref' as org_ref,
        org ->> 'name' as org_name
    from current_activities
    cross join lateral jsonb_array_elements(current_activities.participating_orgs) as org
    where nullif(org ->> 'ref', '') is not null
    order by current_activities.iati_identifier, org ->> 'ref', org ->> 'role'

),

implementers as (

    -- the first implementing organisation (role 4): the recipient when a transaction names none
    select distinct on (current_activities.iati_identifier)
        current_activities.iati_identifier,
        orgs.org ->> 'ref' as org_ref,
        orgs.org ->> 'name' as org_name
    from current_activities
    inner join lateral jsonb_array_elements(
        current_activities.participating_orgs
    ) with ordinality as orgs (org, org_position) on true
    where orgs.org ->> 'role' = '4' and nullif(orgs.org ->> 'ref', '') is not null
    order by current_activities.iati_identifier, orgs.org_position

),

typed as (

    select
        transactions.iati_identifier,
        transactions.transaction_number,
        transactions.feed_id,
        transactions.batch_id,
        transactions.activity_title,
        transactions.item ->> 'type' as transaction_type_code,
        case transactions.item ->> 'type'
            when '2' then 'commitment'
            when '3' then 'disbursement'
            when '4' then 'expenditure'
        end as flow_type,
        nullif(transactions.item ->> 'date', '')::date as transaction_date,
        -- IATI: value-date is the date to use for currency conversion
        coalesce(
            nullif(transactions.item ->> 'value_date', '')::date,
            nullif(transactions.item ->> 'date', '')::date
        ) as value_date,
        (transactions.item ->> 'value')::numeric as transaction_value,
        coalesce(nullif(transactions.item ->> 'currency', ''), transactions.default_currency)
            as currency,
        -- the reporting organisation is the provider unless the transaction names another
        coalesce(nullif(transactions.item ->> 'provider_org_ref', ''), transactions.reporting_org_ref)
            as funder_id,
        case
            when nullif(transactions.item ->> 'provider_org_ref', '') is null
                then transactions.reporting_org_name
            else coalesce(nullif(transactions.item ->> 'provider_org_name', ''), provider_names.org_name)
        end as funder_name,
        coalesce(nullif(transactions.item ->> 'receiver_org_ref', ''), implementers.org_ref)
            as recipient_id,
        case
            when nullif(transactions.item ->> 'receiver_org_ref', '') is null then implementers.org_name
            else coalesce(nullif(transactions.item ->> 'receiver_org_name', ''), receiver_names.org_name)
        end as recipient_name,
        -- a transaction's own sectors and countries override the activity's (IATI rule: one or
        -- the other is reported)
        case
            when jsonb_array_length(coalesce(transactions.item -> 'sectors', '[]')) > 0
                then transactions.item -> 'sectors'
            else transactions.activity_sectors
        end as sectors,
        case
            when jsonb_array_length(coalesce(transactions.item -> 'recipient_countries', '[]')) > 0
                then transactions.item -> 'recipient_countries'
            when jsonb_array_length(coalesce(transactions.item -> 'recipient_regions', '[]')) > 0
                then '[]'::jsonb
            else transactions.activity_recipient_countries
        end as recipient_countries
    from transactions
    left join implementers
        on transactions.iati_identifier = implementers.iati_identifier
    left join org_names as provider_names
        on transactions.iati_identifier = provider_names.iati_identifier
        and transactions.item ->> 'provider_org_ref' = provider_names.org_ref
    left join org_names as receiver_names
        on transactions.iati_identifier = receiver_names.iati_identifier
        and transactions.item ->> 'receiver_org_ref' = receiver_names.org_ref

),

final as (

    select
        *,
        extract(year from transaction_date)::integer as flow_year
    from typed
    where flow_type is not null

)

select * from final
