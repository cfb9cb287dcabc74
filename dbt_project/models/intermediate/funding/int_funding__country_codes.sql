{#-
    ISO 3166-1 alpha-2 -> alpha-3 for the countries KnowDo knows (ref_countries): IATI
    recipient-country codes and 360Giving beneficiary country codes are alpha-2, every mart speaks
    alpha-3. Kept here until ref_countries carries the alpha-2 code itself (source: ISO 3166-1).
-#}

with

countries as (

    select * from {{ ref('ref_countries') }}

),

alpha2 as (

    select *
    from (
        values
        ('COL', 'CO'), ('ECU', 'EC'), ('EGY', 'EG'), ('GHA', 'GH'), ('IDN', 'ID'),
        ('IND', 'IN'), ('MAR', 'MA'), ('PAK', 'PK'), ('ROU', 'RO'), ('SEN', 'SN'),
        ('SLE', 'SL'), ('TZA', 'TZ'), ('VNM', 'VN'), ('GBR', 'GB'), ('USA', 'US'),
        ('CAN', 'CA'), ('DEU', 'DE'), ('FRA', 'FR'), ('NLD', 'NL'), ('NOR', 'NO'),
        ('SWE', 'SE'), ('DNK', 'DK'), ('FIN', 'FI'), ('CHE', 'CH'), ('IRL', 'IE'),
        ('BEL', 'BE'), ('ITA', 'IT'), ('ESP', 'ES'), ('AUT', 'AT'), ('LUX', 'LU'),
        ('AUS', 'AU'), ('NZL', 'NZ'), ('JPN', 'JP'), ('KOR', 'KR')
    ) as codes (country_code, country_iso2)

),

final as (

    select
        alpha2.country_iso2,
        countries.country_code,
        countries.country_name
    from alpha2
    inner join countries
        on alpha2.country_code = countries.country_code

)

select * from final
