"""Lived experience: people's own words beside the numbers (issue 16).

- `scrub`: removes or masks personal data in quotes and summaries (`scrub`, `residual_pii`).

The codebook of themes is the dbt seed `dbt_project/seeds/lived_experience_codebook.csv`; the feed's
contract (`feeds/contracts/lived-experience.v1.yml`) reads its theme codes from there. This package
sits in the base layer: it imports only `knowdo.config`.
"""
