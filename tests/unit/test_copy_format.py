"""Which COPY route the loader's vectorised path takes: an explicit choice, else the setting."""

import pytest

from knowdo.loading import resolve_copy_format


def test_binary_is_the_default(monkeypatch):
    monkeypatch.delenv("KNOWDO_COPY_FORMAT", raising=False)
    assert resolve_copy_format() == "binary"


def test_the_setting_is_read_when_no_choice_is_given(monkeypatch):
    monkeypatch.setenv("KNOWDO_COPY_FORMAT", " CSV ")
    assert resolve_copy_format() == "csv"


def test_an_explicit_choice_wins_over_the_setting(monkeypatch):
    monkeypatch.setenv("KNOWDO_COPY_FORMAT", "csv")
    assert resolve_copy_format("binary") == "binary"


@pytest.mark.parametrize(
    ("chosen", "named"), [("parquet", "copy_format"), (None, "KNOWDO_COPY_FORMAT")]
)
def test_an_unknown_route_is_refused_naming_where_it_came_from(monkeypatch, chosen, named):
    monkeypatch.setenv("KNOWDO_COPY_FORMAT", "parquet")
    with pytest.raises(ValueError, match=f"{named} must be binary or csv, not 'parquet'"):
        resolve_copy_format(chosen)
