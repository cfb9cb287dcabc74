{%- set floor_percent = var('mental_health_funding_floor_percent', 10) -%}

with

flows as (

    select * from {{ ref('int_funding__flows') }}

),

health_expenditure as (

    select * from {{ ref('int_funding__health_expenditure') }}

),

countries as (

    select * from {{ ref('ref_countries') }}

),

domestic as (

    select
        country_code,
        flow_year as year,
        bool_or(flow_type = 'domestic_spent') as has_spent,
        sum(amount_usd) filter (where flow_type = 'domestic_spent') as spent_usd,
        bool_and(amount_usd is not null) filter (where flow_type = 'domestic_spent') as spent_converted,
        sum(amount_usd) filter (where flow_type = 'domestic_allocated') as allocated_usd,
        bool_and(amount_usd is not null) filter (where flow_type = 'domestic_allocated')
            as allocated_converted
    from flows
    where source = 'ministry_budget' and is_mental_health
    group by 1, 2

),

mental_health_spending as (

    -- the outturn where the ministry reported one, the budget otherwise
    select
        country_code,
        year,
        case when has_spent then 'spent' else 'allocated' end as basis,
        case
            when has_spent and spent_converted then spent_usd
            when not has_spent and allocated_converted then allocated_usd
        end as spending_usd
    from domestic

),

external_funding as (

    -- money from abroad: IATI disbursements and expenditures and 360Giving grants for mental
    -- health that name the country (commitments are promises, not money spent)
    select
        country_code,
        flow_year as year,
        case when bool_and(amount_usd is not null) then sum(amount_usd) end as external_usd,
        case
            when bool_and(amount_usd is not null)
                then coalesce(sum(amount_usd) filter (where is_implementation_research), 0)
        end as implementation_research_usd
    from flows
    where
        source in ('iati', '360giving')
        and flow_type in ('disbursement', 'expenditure', 'grant')
        and is_mental_health
        and country_code is not null
    group by 1, 2

),

panel_countries as (

    -- countries that report their own health spending: a ministry budget or WHO GHED figures
    select country_code from mental_health_spending
    union
    select country_code from health_expenditure

),

panel_years as (

    select generate_series(min(year), max(year)) as year
    from (
        select year from mental_health_spending
        union all
        select year from health_expenditure
        union all
        select year from external_funding
    ) as all_years

),

panel as (

    select
        panel_countries.country_code,
        panel_years.year
    from panel_countries
    cross join panel_years

),

joined as (

    select
        panel.country_code,
        panel.year,
        mental_health_spending.basis as mh_spending_basis,
        mental_health_spending.spending_usd as mh_spending_usd,
        mental_health_spending.country_code is not null as has_budget,
        health_expenditure.che_per_capita_usd,
        health_expenditure.gghe_d_percent_of_che,
        health_expenditure.population,
        health_expenditure.government_health_expenditure_usd,
        external_funding.country_code is not null as has_external_funding,
        external_funding.external_usd,
        external_funding.implementation_research_usd
    from panel
    left join mental_health_spending
        on panel.country_code = mental_health_spending.country_code
        and panel.year = mental_health_spending.year
    left join health_expenditure
        on panel.country_code = health_expenditure.country_code
        and panel.year = health_expenditure.year
    left join external_funding
        on panel.country_code = external_funding.country_code
        and panel.year = external_funding.year

),

shares as (

    select
        joined.*,
        100 * joined.mh_spending_usd / nullif(joined.government_health_expenditure_usd, 0) as share_percent,
        nullif(
            concat_ws(
                '; ',
                case when not joined.has_budget then 'no ministry mental-health budget for the year' end,
                case
                    when joined.has_budget and joined.mh_spending_usd is null
                        then 'no exchange rate for the budget currency in the year'
                end,
                case
                    when joined.che_per_capita_usd is null
                        then 'no WHO GHED current health expenditure per capita (GHED_CHE_pc_US_SHA2011)'
                            || ' for the year'
                end,
                case
                    when joined.gghe_d_percent_of_che is null
                        then 'no WHO GHED government share of health expenditure (GHED_GGHE-DCHE_SHA2011)'
                            || ' for the year'
                end,
                case
                    when joined.che_per_capita_usd is not null and joined.gghe_d_percent_of_che is not null
                        and joined.population is null
                        then 'no national population for the year'
                end,
                case
                    when joined.government_health_expenditure_usd = 0
                        then 'government health expenditure is zero'
                end
            ),
            ''
        ) as share_missing_reason,
        100 * joined.implementation_research_usd / nullif(joined.external_usd, 0)
            as implementation_research_share_percent
    from joined

),

final as (

    select

        ----------  grain
        shares.country_code::text as country_code,
        shares.year::integer as year,
        countries.country_name::text as country_name,

        ----------  mental-health spending (ministry budget)
        round(shares.mh_spending_usd, 2)::numeric(20, 2) as mh_spending_usd,
        shares.mh_spending_basis::text as mh_spending_basis,

        ----------  government health expenditure (WHO GHED x population)
        shares.che_per_capita_usd::numeric(14, 5) as che_per_capita_usd,
        shares.gghe_d_percent_of_che::numeric(12, 5) as gghe_d_percent_of_che,
        shares.population::bigint as population,
        round(shares.government_health_expenditure_usd, 2)::numeric(20, 2)
            as government_health_expenditure_usd,

        ----------  share against the floor
        round(shares.share_percent, 4)::numeric(12, 4) as share_percent,
        {{ floor_percent }}::numeric(5, 2) as floor_percent,
        -- greatest() skips nulls in PostgreSQL: an unknown share must give an unknown gap
        (case
            when shares.share_percent is not null
                then round(greatest({{ floor_percent }} - shares.share_percent, 0), 4)
        end)::numeric(12, 4) as gap_to_10_percent_floor,
        (shares.share_percent >= {{ floor_percent }})::boolean as meets_floor,
        shares.share_missing_reason::text as share_missing_reason,

        ----------  external mental-health funding and implementation research
        round(shares.external_usd, 2)::numeric(20, 2) as external_mh_funding_usd,
        round(shares.implementation_research_usd, 2)::numeric(20, 2)
            as external_mh_implementation_research_usd,
        round(shares.implementation_research_share_percent, 4)::numeric(12, 4)
            as implementation_research_share_percent,
        (case
            when not shares.has_external_funding
                then 'no external mental-health funding recorded for the country and year'
            when shares.external_usd is null then 'no exchange rate for an external flow in the year'
            when shares.external_usd = 0 then 'external mental-health funding is zero'
        end)::text as implementation_research_missing_reason

    from shares
    left join countries
        on shares.country_code = countries.country_code

)

select * from final
