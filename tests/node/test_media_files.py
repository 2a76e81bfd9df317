"""/media/{name}: stored images served with their type, cached for good, nothing else."""

from __future__ import annotations

import io

import aiohttp
from PIL import Image

from federation.images import MEDIA, process_image
from tests.support.nodes import RunningNode


async def test_stored_image_is_served_cached(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, "PNG")
    picture = process_image(out.getvalue(), MEDIA).image
    name = node.ctx.media.save(picture)
    assert node.ctx.urls.media(name) == f"{node.base_url}/media/{name}"
    async with http.get(node.ctx.urls.media(name)) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/jpeg"
        assert "immutable" in response.headers["Cache-Control"]
        assert "sandbox" in response.headers["Content-Security-Policy"]
        assert await response.read() == picture.data


async def test_other_names_are_404_json(node: RunningNode, http: aiohttp.ClientSession) -> None:
    (node.ctx.settings.media_path).mkdir(parents=True, exist_ok=True)
    for name in ("node.json", "..%2Fnode.json", "a" * 64 + ".jpg", "a" * 64 + ".svg"):
        async with http.get(f"{node.base_url}/media/{name}") as response:
            assert response.status == 404, name
            assert (await response.json())["error"]
