"""The dashboard's pages: one shared layout around each page's ``<main>``."""

from __future__ import annotations

from importlib import resources

import pytest

from gateway.api.ui import FILE_NAME, PAGES, _page_file


@pytest.mark.parametrize("name", sorted(PAGES))
def test_each_page_is_its_main_in_the_shared_layout(name: str) -> None:
    page = PAGES[name]
    asset = _page_file(name)
    assert asset is not None
    html = asset.body.decode("utf-8")
    main = resources.files("gateway.web").joinpath(name).read_text(encoding="utf-8")
    assert html.startswith('<!doctype html>\n<html lang="en">\n<head>\n')
    assert f"  <title>{page.title}</title>\n" in html
    assert html.endswith("</head>\n<body>\n" + main + "</body>\n</html>\n")
    module = html.index(f'<script type="module" src="{page.script}"></script>')
    if page.plotly:  # the charting library loads before the page's script
        assert 0 < html.index('<script src="vendor/plotly.min.js"></script>') < module
    else:
        assert "plotly" not in html
    assert html.count("<script") == (2 if page.plotly else 1)


def test_the_layout_is_not_served_and_every_page_has_a_main() -> None:
    assert not FILE_NAME.match("_layout.html")
    web = resources.files("gateway.web")
    shipped = {p.name for p in web.iterdir() if p.name.endswith(".html")}
    assert shipped == set(PAGES) | {"_layout.html"}
