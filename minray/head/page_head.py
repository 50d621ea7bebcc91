"""The start every dashboard page shares: its document head and base style rules."""

from __future__ import annotations

_BASE_STYLE = """\
  body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
  h1 { font-size: 1.4em; margin-bottom: 0.2em; }
  nav a { margin-right: 1em; }
"""


def page_head(title: str) -> str:
    """A page's text from ``<!doctype html>`` into its ``<style>``: the page goes on with
    its own rules, then ``</style>``."""
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>\n{_BASE_STYLE}"
    )
