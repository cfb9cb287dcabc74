"""KnowDo: open data platform for the mental health implementation gap."""

__version__ = "0.1.0"
