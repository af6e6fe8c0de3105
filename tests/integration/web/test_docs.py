"""The API's docs page is served whole by the service: no script or style from elsewhere."""

from __future__ import annotations

import re

from tests.integration.web.conftest import Site


def test_docs_page_needs_no_other_site(site: Site) -> None:
    with site.client() as client:
        page = client.get("/api/v1/docs")
        assert page.status_code == 200
        sources = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
        assert sources, page.text
        for source in sources:
            assert source.startswith("/api/v1/docs/static/"), source
            assert client.get(source).status_code == 200, source
        assert "/api/v1/openapi.json" in page.text
        assert client.get("/api/v1/openapi.json").json()["info"]["title"] == "notifier"
