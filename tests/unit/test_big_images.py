"""The streamed big images used by the 200 MiB HTTP test and the bench are valid for Pillow too."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image

from tests import big_images


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: big_images.big_png(2 << 20, width=512), id="png"),
        pytest.param(lambda: big_images.big_jpeg(2 << 20, width=1024), id="jpeg"),
        pytest.param(lambda: big_images.big_gif(2 << 20), id="gif"),
    ],
)
def test_big_images_have_their_announced_size_and_decode(make: Callable[[], big_images.BigImage]) -> None:
    # Given a big image written as a stream
    image = make()
    data = image.data()
    # Then its size is the one announced, and Pillow decodes it at the announced dimensions
    assert len(data) == image.size
    with Image.open(io.BytesIO(data)) as opened:
        assert opened.size == (image.width, image.height)
        opened.load()
