"""`python -m knowdo ...` is the `knowdo` command (for environments without its script on PATH)."""

from knowdo.cli import main

main()
