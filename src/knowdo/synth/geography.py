"""Places and people behind the sample feeds: the 13 Being priority countries (three or four
regions each, ISO 3166-2 codes) and England's ARC areas. Populations are illustrative, shaped like
national census projections (thousands), not official figures."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    code: str  # ISO 3166-2
    name: str
    population_k: int
    access: float  # relative use of services (urban centres higher): drives the inequalities


@dataclass(frozen=True)
class Country:
    iso3: str
    iso2: str
    name: str
    currency: str
    regions: tuple[Region, ...]
    ministry: str

    @property
    def national_population_k(self) -> int:
        return NATIONAL_POPULATION_K[self.iso3]


NATIONAL_POPULATION_K = {  # 2024, thousands, rounded UN WPP-like figures
    "GHA": 34400,
    "ROU": 19000,
    "TZA": 68600,
    "COL": 52900,
    "ECU": 18100,
    "SEN": 18500,
    "IND": 1441000,
    "MAR": 38100,
    "EGY": 114500,
    "IDN": 279800,
    "PAK": 245200,
    "SLE": 8900,
    "VNM": 100300,
}
# national currency units per US dollar (rounded 2024 averages; used by the sample budgets)
USD_RATE = {
    "GHS": 14.5,
    "RON": 4.6,
    "TZS": 2600,
    "COP": 4070,
    "USD": 1.0,
    "XOF": 605,
    "INR": 83.7,
    "MAD": 9.9,
    "EGP": 47.5,
    "IDR": 16000,
    "PKR": 279,
    "SLE": 22.5,
    "VND": 25100,
}


BEING_COUNTRIES: tuple[Country, ...] = (
    Country(
        "GHA",
        "GH",
        "Ghana",
        "GHS",
        (
            Region("GH-AA", "Greater Accra", 5500, 1.35),
            Region("GH-AH", "Ashanti", 5400, 1.10),
            Region("GH-NP", "Northern", 2300, 0.55),
            Region("GH-UE", "Upper East", 1300, 0.45),
        ),
        "Ghana Health Service",
    ),
    Country(
        "ROU",
        "RO",
        "Romania",
        "RON",
        (
            Region("RO-B", "Bucharest", 2100, 1.40),
            Region("RO-CJ", "Cluj", 700, 1.15),
            Region("RO-IS", "Iasi", 780, 0.80),
        ),
        "Ministry of Health, Romania",
    ),
    Country(
        "TZA",
        "TZ",
        "Tanzania",
        "TZS",
        (
            Region("TZ-02", "Dar es Salaam", 5400, 1.25),
            Region("TZ-03", "Dodoma", 3100, 0.75),
            Region("TZ-18", "Mwanza", 3700, 0.60),
        ),
        "Ministry of Health, Tanzania",
    ),
    Country(
        "COL",
        "CO",
        "Colombia",
        "COP",
        (
            Region("CO-DC", "Bogota", 7900, 1.30),
            Region("CO-ANT", "Antioquia", 6700, 1.05),
            Region("CO-VAC", "Valle del Cauca", 4500, 0.90),
        ),
        "Ministerio de Salud y Proteccion Social",
    ),
    Country(
        "ECU",
        "EC",
        "Ecuador",
        "USD",
        (
            Region("EC-P", "Pichincha", 3100, 1.25),
            Region("EC-G", "Guayas", 4400, 1.00),
            Region("EC-A", "Azuay", 900, 0.85),
        ),
        "Ministerio de Salud Publica",
    ),
    Country(
        "SEN",
        "SN",
        "Senegal",
        "XOF",
        (
            Region("SN-DK", "Dakar", 4000, 1.30),
            Region("SN-TH", "Thies", 2200, 0.85),
            Region("SN-SL", "Saint-Louis", 1100, 0.55),
        ),
        "Ministere de la Sante et de l'Action sociale",
    ),
    Country(
        "IND",
        "IN",
        "India",
        "INR",
        (
            Region("IN-MH", "Maharashtra", 126000, 1.10),
            Region("IN-UP", "Uttar Pradesh", 235000, 0.60),
            Region("IN-KA", "Karnataka", 68000, 1.00),
        ),
        "Ministry of Health and Family Welfare",
    ),
    Country(
        "MAR",
        "MA",
        "Morocco",
        "MAD",
        (
            Region("MA-06", "Casablanca-Settat", 7700, 1.20),
            Region("MA-01", "Tanger-Tetouan-Al Hoceima", 4000, 0.90),
            Region("MA-04", "L'Oriental", 2300, 0.70),
        ),
        "Ministere de la Sante et de la Protection sociale",
    ),
    Country(
        "EGY",
        "EG",
        "Egypt",
        "EGP",
        (
            Region("EG-C", "Cairo", 10300, 1.25),
            Region("EG-ALX", "Alexandria", 5500, 1.05),
            Region("EG-SHG", "Sohag", 5700, 0.55),
        ),
        "Ministry of Health and Population",
    ),
    Country(
        "IDN",
        "ID",
        "Indonesia",
        "IDR",
        (
            Region("ID-JK", "Jakarta", 10700, 1.30),
            Region("ID-JB", "West Java", 49900, 0.85),
            Region("ID-PA", "Papua", 4400, 0.40),
        ),
        "Kementerian Kesehatan",
    ),
    Country(
        "PAK",
        "PK",
        "Pakistan",
        "PKR",
        (
            Region("PK-PB", "Punjab", 127700, 0.85),
            Region("PK-SD", "Sindh", 55700, 0.75),
            Region("PK-BA", "Balochistan", 14900, 0.40),
        ),
        "Ministry of National Health Services",
    ),
    Country(
        "SLE",
        "SL",
        "Sierra Leone",
        "SLE",
        (
            Region("SL-W", "Western Area", 1500, 1.20),
            Region("SL-N", "Northern", 2500, 0.55),
            Region("SL-E", "Eastern", 1700, 0.50),
        ),
        "Ministry of Health, Sierra Leone",
    ),
    Country(
        "VNM",
        "VN",
        "Vietnam",
        "VND",
        (
            Region("VN-HN", "Hanoi", 8400, 1.20),
            Region("VN-SG", "Ho Chi Minh City", 9300, 1.25),
            Region("VN-33", "Dak Lak", 1900, 0.60),
        ),
        "Ministry of Health, Vietnam",
    ),
)

SEXES = ("F", "M")
AGE_BANDS = ("0-14", "15-24", "25-49", "50+")
AGE_SHARES = {"0-14": 0.33, "15-24": 0.18, "25-49": 0.34, "50+": 0.15}

# England: one ICB per NIHR ARC, with the ARC's code (illustrative pairing; ICB codes are ODS
# codes). Each entry: (KnowDo ARC code as in dbt seed ref_arcs, ARC name, ICB ODS code, ICB name,
# population k).
ARC_AREAS = (
    (
        "arc_east_of_england",
        "East of England",
        "QUE",
        "NHS Cambridgeshire and Peterborough ICB",
        950,
    ),
    ("arc_east_midlands", "East Midlands", "QT1", "NHS Nottingham and Nottinghamshire ICB", 1200),
    ("arc_greater_manchester", "Greater Manchester", "QOP", "NHS Greater Manchester ICB", 2900),
    ("arc_kent_surrey_sussex", "Kent, Surrey and Sussex", "QKS", "NHS Kent and Medway ICB", 1900),
    (
        "arc_north_east_north_cumbria",
        "North East and North Cumbria",
        "QHM",
        "NHS North East and North Cumbria ICB",
        3000,
    ),
    ("arc_north_thames", "North Thames", "QMJ", "NHS North Central London ICB", 1500),
    ("arc_north_west_coast", "North West Coast", "QYG", "NHS Cheshire and Merseyside ICB", 2700),
    ("arc_northwest_london", "Northwest London", "QRV", "NHS North West London ICB", 2100),
    (
        "arc_oxford_thames_valley",
        "Oxford and Thames Valley",
        "QU9",
        "NHS Buckinghamshire, Oxfordshire and Berkshire West ICB",
        1900,
    ),
    ("arc_south_london", "South London", "QWE", "NHS South West London ICB", 1500),
    ("arc_south_west_peninsula", "South West Peninsula", "QJK", "NHS Devon ICB", 1200),
    ("arc_wessex", "Wessex", "QRL", "NHS Hampshire and Isle of Wight ICB", 1900),
    ("arc_west", "West", "QUY", "NHS Bristol, North Somerset and South Gloucestershire ICB", 1000),
    ("arc_west_midlands", "West Midlands", "QHL", "NHS Birmingham and Solihull ICB", 1700),
    ("arc_yorkshire_humber", "Yorkshire and Humber", "QWO", "NHS West Yorkshire ICB", 2400),
)
ETHNIC_GROUPS = (  # ONS 2021 high-level groups: (NHS label, KnowDo code, share, relative access)
    ("White", "white", 0.81, 1.0),
    ("Asian or Asian British", "asian", 0.096, 0.62),
    ("Black or Black British", "black", 0.042, 0.55),
    ("Mixed", "mixed", 0.03, 0.85),
    ("Other Ethnic Groups", "other", 0.022, 0.60),
)
# ONS 2021 census detailed ethnic groups, England: (KnowDo code, high-level code, percent of
# England's residents). The shares of each high-level group add up to its share above.
ETHNIC_GROUPS_DETAILED = (
    ("white_british", "white", 73.5),
    ("white_irish", "white", 0.9),
    ("white_gypsy_irish_traveller", "white", 0.1),
    ("white_roma", "white", 0.2),
    ("white_other", "white", 6.3),
    ("asian_indian", "asian", 3.3),
    ("asian_pakistani", "asian", 2.8),
    ("asian_bangladeshi", "asian", 1.1),
    ("asian_chinese", "asian", 0.7),
    ("asian_other", "asian", 1.7),
    ("black_african", "black", 2.6),
    ("black_caribbean", "black", 1.1),
    ("black_other", "black", 0.5),
    ("mixed_white_black_caribbean", "mixed", 0.9),
    ("mixed_white_black_african", "mixed", 0.4),
    ("mixed_white_asian", "mixed", 0.8),
    ("mixed_other", "mixed", 0.9),
    ("other_arab", "other", 0.6),
    ("other_any", "other", 1.6),
)
# (NHS label, KnowDo code, share, relative access); decile 1 is the most deprived
IMD_DECILES = tuple((f"{d:02d}", str(d), 0.1, 0.8 + 0.04 * d) for d in range(1, 11))
