"""What every dashboard page shares: its document head, base style rules, heading and
the links between the pages."""

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


#: the links between the pages, at the top of each
NAV = (
    '<nav><a href="/">Overview</a><a href="/graph">Task graph</a>'
    '<a href="/timeline">Timeline</a></nav>'
)


def page_top(heading: str) -> str:
    """What follows a page's own style rules: the end of its head, its heading and the
    links between the pages."""
    return f"</style>\n</head>\n<body>\n<h1>{heading}</h1>\n{NAV}\n"
