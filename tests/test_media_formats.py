"""Uploaded images in less common shapes: multi-picture JPEGs, sizes WebP cannot hold."""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image, ImageStat, features

from blog import imagescan, media
from blog.extensions import db
from blog.models import Article

from .conftest import _make_app, collector_off, parse
from .test_media import image_bytes, media_count, png_header_only, stored_files, upload


@pytest.fixture
def draft_id(make_article) -> int:  # noqa: ANN001
    return make_article("Pictures in odd shapes", status="draft")


def served(client: FlaskClient, url: str) -> Image.Image:
    response = client.get(url)
    assert response.status_code == 200
    return Image.open(io.BytesIO(response.data))


# -- a JPEG with more than one picture (MPO) -----------------------------------------------------


def mpo_bytes(*pictures: Image.Image, **save: object) -> bytes:
    """A JPEG followed by more pictures and an index of them, as phone cameras write it."""
    out = io.BytesIO()
    pictures[0].save(out, "MPO", save_all=True, append_images=list(pictures[1:]), **save)
    return out.getvalue()


def test_a_multi_picture_jpeg_is_stored_as_a_jpeg_of_its_first_picture(
    author_client: FlaskClient, draft_id: int
) -> None:
    photo = Image.open(io.BytesIO(image_bytes("PNG", (600, 400))))
    other = Image.new("RGB", (600, 400), (0, 200, 0))  # the second eye, or a depth map
    data = mpo_bytes(photo, other)
    assert Image.open(io.BytesIO(data)).format == "MPO"
    response = upload(author_client, draft_id, data, name="IMG_0001.jpg")
    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    assert answer["url"].endswith(".jpg")
    assert (answer["width"], answer["height"]) == (600, 400)
    stored = served(author_client, answer["url"])
    assert stored.format == "JPEG" and getattr(stored, "n_frames", 1) == 1
    assert "mp" not in stored.info  # no index of pictures that are not there
    red, green, blue = stored.convert("RGB").getpixel((15, 15))
    assert abs(blue - 200) < 20 and green < 150  # the photo's blue (30, 120, 200), not the green
    assert served(author_client, answer["url"].replace(".jpg", "-480.webp")).size == (480, 320)


def test_a_multi_picture_jpeg_is_turned_upright_and_loses_its_exif(
    author_client: FlaskClient, draft_id: int
) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    exif[0x010F] = "SpyCam"
    pictures = [Image.new("RGB", (300, 200), colour) for colour in ("red", "blue")]
    data = mpo_bytes(*pictures, exif=exif.tobytes())
    assert b"SpyCam" in data
    answer = upload(author_client, draft_id, data, name="photo.jpg").get_json()
    assert (answer["width"], answer["height"]) == (200, 300)
    response = author_client.get(answer["url"])
    assert b"SpyCam" not in response.data and b"Exif" not in response.data


def test_the_other_pictures_of_a_multi_picture_jpeg_are_not_counted_as_frames(
    monkeypatch: pytest.MonkeyPatch, author_client: FlaskClient, draft_id: int
) -> None:
    # They are dropped unseen: neither decoded nor held to the limits of an animation.
    monkeypatch.setattr(media, "MAX_ANIMATION_PIXELS", 100_000)
    pictures = [Image.new("RGB", (400, 300), (i * 40, 0, 0)) for i in range(4)]
    response = upload(author_client, draft_id, mpo_bytes(*pictures), name="burst.jpg")
    assert response.status_code == 201, response.get_json()


# -- sizes WebP cannot hold ------------------------------------------------------------------------


def striped_png(width: int, height: int) -> bytes:
    """A PNG with detail that still compresses well (quick to make at tens of megapixels)."""
    image = Image.new("RGB", (width, height), (240, 240, 240))
    for y in range(0, height, 50):
        image.paste((20, 20, 20), (0, y, width, y + 4))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def rendered_srcset(app: Flask, make_article, url: str) -> list[str]:  # noqa: ANN001
    article_id = make_article("Shows it", body=f"![A long page]({url})\n")
    with app.app_context():
        slug = db.session.get(Article, article_id).slug
    image = parse(app.test_client().get(f"/articles/{slug}")).find("img", src=url)
    return image["srcset"].split(", ") if image.has_attr("srcset") else []


def test_a_thin_image_gets_a_narrower_copy_that_fits_webp(
    app: Flask,
    author_client: FlaskClient,
    draft_id: int,
    make_article,  # noqa: ANN001
) -> None:
    # WebP holds 16,383 pixels a side: a 400-wide copy would be 20,000 tall, so the copy is
    # the widest that fits (327), and srcset says 327.
    response = upload(author_client, draft_id, striped_png(400, 20_000))
    assert response.status_code == 201, response.get_json()
    url = response.get_json()["url"]
    assert served(author_client, url).size == (400, 20_000)
    candidates = rendered_srcset(app, make_article, url)
    assert [c.split()[1] for c in candidates] == ["327w"]
    variant = served(author_client, candidates[0].split()[0])
    assert variant.format == "WEBP" and variant.size == (327, 16_350)


def test_a_long_screenshot_is_stored_and_shown_as_it_is(
    app: Flask,
    author_client: FlaskClient,
    draft_id: int,
    make_article,  # noqa: ANN001
) -> None:
    # 1170 x 20,000: a phone's scrolling screenshot. Its copies (958 and 480 wide, the widest
    # WebP holds) would cost as much as the picture itself; only a 480 would leave phones a
    # blurred page. It gets none, and the page shows the original.
    response = upload(author_client, draft_id, striped_png(1170, 20_000))
    assert response.status_code == 201, response.get_json()
    url = response.get_json()["url"]
    assert served(author_client, url).size == (1170, 20_000)
    assert len(stored_files(app)) == 1
    assert rendered_srcset(app, make_article, url) == []


def test_an_image_too_thin_for_any_webp_copy_is_stored_without_one(
    app: Flask,
    author_client: FlaskClient,
    draft_id: int,
    make_article,  # noqa: ANN001
) -> None:
    response = upload(author_client, draft_id, striped_png(1, 40_000))
    assert response.status_code == 201, response.get_json()
    url = response.get_json()["url"]
    assert len(stored_files(app)) == 1
    assert rendered_srcset(app, make_article, url) == []


def test_a_very_wide_image_gets_every_webp_copy(author_client: FlaskClient, draft_id: int) -> None:
    response = upload(author_client, draft_id, striped_png(20_000, 600))
    assert response.status_code == 201, response.get_json()
    url = response.get_json()["url"]
    for width, height in ((480, 14), (960, 29), (1600, 48)):
        assert served(author_client, url.replace(".png", f"-{width}.webp")).size == (width, height)


def webp_16384_wide() -> bytes:
    """A lossless WebP one pixel wider than WebP can be written at: its header has room for
    16,384 and Pillow decodes it, though no encoder makes one (made by editing the header)."""
    out = io.BytesIO()
    Image.new("RGB", (16_383, 1), (1, 2, 3)).save(out, "WEBP", lossless=True)
    data = bytearray(out.getvalue())
    at = data.index(b"VP8L") + 9  # the chunk's name, its size, the signature byte
    header = int.from_bytes(data[at : at + 4], "little")
    data[at : at + 4] = (header | 0x3FFF).to_bytes(4, "little")  # width - 1 in the low 14 bits
    assert Image.open(io.BytesIO(bytes(data))).size == (16_384, 1)
    return bytes(data)


def test_a_webp_wider_than_webp_can_be_written_is_refused_with_a_reason(
    app: Flask, author_client: FlaskClient, draft_id: int
) -> None:
    response = upload(author_client, draft_id, webp_16384_wide(), name="wide.webp")
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert "16,384 x 1" in error and "16,383" in error and "PNG" in error
    assert stored_files(app) == [] and media_count(app) == 0


@pytest.mark.parametrize(
    "size",
    [(400, 20_000), (16_383, 16_383), (480, 16_384), (100, 16_384), (3, 65_535), (40_000, 1)],
)
def test_every_webp_copy_fits_webp_and_keeps_the_pictures_shape(size: tuple[int, int]) -> None:
    width, height = size
    widths = media.variant_widths(width, height)
    assert widths == sorted(set(widths)) and all(1 <= w <= min(width, 1600) for w in widths)
    for w in widths:
        assert round(height * w / width) <= media.WEBP_MAX_SIDE
    assert sum(w * round(height * w / width) for w in widths) <= media.MAX_COPY_PIXELS
    # The widest that fits, not merely one that does: one pixel wider would be too tall.
    if widths and widths[-1] < min(width, 1600):
        assert round(height * (widths[-1] + 1) / width) > media.WEBP_MAX_SIDE


@pytest.mark.parametrize(
    ("size", "widths"),
    [
        ((4032, 3024), [480, 960, 1600]),  # a phone photo
        ((1170, 2532), [480, 960, 1170]),  # a phone's screenshot
        ((1600, 3400), [480, 960, 1600]),  # a long infographic, still with copies
        ((1600, 3700), []),  # longer: the copies would be 8.6 megapixels
        ((1170, 20_000), []),
    ],
)
def test_only_a_long_picture_goes_without_copies(size: tuple[int, int], widths: list[int]) -> None:
    assert media.variant_widths(*size) == widths


# -- what each format costs to write again -------------------------------------------------------


def test_a_webp_original_is_its_own_full_width_copy() -> None:
    # The same pixels, encoder and settings give the same bytes: they are encoded once.
    processed = media.process(image_bytes("WEBP", (1200, 800)))
    assert processed.variants[1200] == processed.data


def lossless_webp_declaring(width: int, height: int) -> bytes:
    """A lossless WebP whose header declares this size (a refusal must not decode it)."""
    out = io.BytesIO()
    Image.new("RGB", (1, 1)).save(out, "WEBP", lossless=True)
    data = bytearray(out.getvalue())
    at = data.index(b"VP8L") + 9
    header = int.from_bytes(data[at : at + 4], "little") & ~((1 << 28) - 1)
    header |= (width - 1) | (height - 1) << 14
    data[at : at + 4] = header.to_bytes(4, "little")
    return bytes(data)


def flat_avif(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, "AVIF", speed=10)
    return out.getvalue()


def animation(fmt: str, frames: int, size: tuple[int, int]) -> bytes:
    images = [Image.new("RGB", size, (i * 40 % 255, 60, 90)) for i in range(frames)]
    out = io.BytesIO()
    options = {"speed": 10} if fmt == "AVIF" else {}
    images[0].save(out, fmt, save_all=True, append_images=images[1:], duration=50, **options)
    return out.getvalue()


def refusal(data: bytes) -> media.MediaError:
    with pytest.raises(media.MediaError) as refused:
        media.process(data)
    assert refused.value.status == 422
    return refused.value


def test_png_and_webp_have_limits_of_their_own_named_in_the_refusal() -> None:
    error = refusal(png_header_only(6000, 4001)).message
    assert "6,000 x 4,001 pixels" in error and "24,000,000 pixels for PNG" in error
    assert "JPEG" in error  # what to do instead
    webp = lossless_webp_declaring(4000, 4001)
    assert Image.open(io.BytesIO(webp)).size == (4000, 4001)
    error = refusal(webp).message
    assert "4,000 x 4,001 pixels" in error and "16,000,000 pixels for WebP" in error


def test_an_upload_over_its_formats_limit_is_a_422_saying_so(
    app: Flask, author_client: FlaskClient, draft_id: int
) -> None:
    response = upload(author_client, draft_id, png_header_only(6000, 4001))
    assert response.status_code == 422
    assert "over the limit of 24,000,000 pixels for PNG" in response.get_json()["error"]
    assert stored_files(app) == [] and media_count(app) == 0


def test_a_site_limit_lower_than_a_formats_is_the_one_that_counts(
    tmp_path: Path, template_databases: dict[str, Path]
) -> None:
    app = _make_app(tmp_path, template_databases["demo"], MEDIA_MAX_PIXELS=1_000_000)
    with app.app_context():
        error = refusal(png_header_only(1001, 1000)).message
    assert "over the limit of 1,000,000 pixels" in error


def test_an_animated_webp_has_a_lower_limit_than_a_gif() -> None:
    error = refusal(animation("WEBP", 2, (2000, 2001))).message
    assert "2 frames of 2,000 x 2,001 pixels" in error
    assert "8,000,000 pixels for WebP in all frames together" in error
    assert media.process(animation("GIF", 2, (2000, 2001))).ext == "gif"


def test_an_animated_png_has_a_lower_limit_than_a_gif() -> None:
    # Every frame is written again as PNG: 200 frames of 316 x 316 (20 MP) took 1.3-1.8 s.
    error = refusal(animation("PNG", 2, (2450, 2450))).message
    assert "2 frames of 2,450 x 2,450 pixels" in error
    assert "12,000,000 pixels for PNG in all frames together" in error


def gif_growing_to(side: int, disposal: int = 0) -> bytes:
    """A 2-frame 100 x 100 GIF, then a side x side frame: Pillow grows the canvas to hold it.

    With a disposal method (2: back to the background, 3: to the previous frame), seeking to
    that frame fills a buffer of its size.
    """
    out = io.BytesIO()
    Image.new("P", (side, side)).save(out, "GIF")
    big = out.getvalue()
    packed = big[10]  # the logical screen's flags: is a colour table next, and its size
    table = 3 * 2 ** ((packed & 7) + 1) if packed & 0x80 else 0
    frame = big[big.index(b"\x2c", 13 + table) : -1]  # its image descriptor on, no trailer
    control = b"\x21\xf9\x04" + bytes([disposal << 2]) + b"\x00\x00\x00\x00" if disposal else b""
    small = animation("GIF", 2, (100, 100))
    return small[:-1] + control + frame + b"\x3b"


def test_a_gif_frame_larger_than_the_first_is_held_to_the_limits_before_decoding() -> None:
    # The first frame's size was all that was checked: a 9000 x 9000 third frame took 9 s and
    # 1.5 GB to decode, and three more 22 s.
    assert Image.open(io.BytesIO(gif_growing_to(9000))).size == (100, 100)
    error = refusal(gif_growing_to(9000)).message
    assert "9,000 x 9,000 pixels, over the limit of 40,000,000" in error
    error = refusal(gif_growing_to(3000)).message  # 9 MP a frame: 27 MP in three
    assert "3 frames of 3,000 x 3,000 pixels" in error and "in all frames together" in error
    assert media.process(gif_growing_to(200)).ext == "gif"


@pytest.mark.parametrize("disposal", [2, 3])
def test_a_gif_frame_that_grows_the_canvas_is_refused_before_pillow_seeks_it(
    monkeypatch: pytest.MonkeyPatch, disposal: int
) -> None:
    # Seeking to it made Pillow fill a buffer of the grown canvas before the check after
    # seek() ran: refused, but after 0.18 s and 430 MB.
    from PIL import GifImagePlugin

    sought = []
    real_seek = GifImagePlugin.GifImageFile.seek

    def seek(image: GifImagePlugin.GifImageFile, frame: int) -> None:
        sought.append(frame)
        real_seek(image, frame)

    monkeypatch.setattr(GifImagePlugin.GifImageFile, "seek", seek)
    error = refusal(gif_growing_to(9000, disposal)).message
    assert "9,000 x 9,000 pixels, over the limit of 40,000,000" in error
    assert max(sought, default=0) == 0


def gif_in_pieces(pieces: int) -> bytes:
    """A 2-frame GIF whose second frame's data comes in `pieces` one-byte blocks."""
    small = animation("GIF", 1, (10, 10))
    descriptor = b"\x2c" + bytes(4) + (10).to_bytes(2, "little") * 2 + b"\x00"
    return small[:-1] + descriptor + b"\x02" + b"\x01\x00" * pieces + b"\x00\x3b"


def test_a_gif_in_many_tiny_blocks_is_refused_before_pillow_reads_them() -> None:
    # Pillow reads a GIF's data blocks one by one in Python: 10 MB of one-byte blocks took 2.2 s
    # to accept. An encoder writes blocks of 255 bytes, about 41,000 in 10 MB.
    error = refusal(gif_in_pieces(imagescan.GIF_MAX_BLOCKS)).message
    assert f"more than {imagescan.GIF_MAX_BLOCKS:,} blocks" in error
    assert media.process(gif_in_pieces(1000)).ext == "gif"
    # Empty extensions (10 MB: 2.5 s), also before the first frame, which Image.open() reads.
    gif = animation("GIF", 1, (10, 10))
    for at in (len(gif) - 1, gif.index(b"\x2c")):
        padded = gif[:at] + b"\x21\xfe\x00" * (imagescan.GIF_MAX_BLOCKS + 1) + gif[at:]
        assert "blocks" in refusal(padded).message


def png_chunk(kind: bytes, body: bytes = b"") -> bytes:
    crc = zlib.crc32(kind + body).to_bytes(4, "big")
    return len(body).to_bytes(4, "big") + kind + body + crc


def test_a_png_in_many_tiny_chunks_is_refused_before_pillow_reads_them() -> None:
    # Pillow reads a PNG's chunks one by one in Python, three times over: 10 MB of empty ones
    # took 6.2 s to accept. An encoder writes its pixels in chunks of 8 kB or more.
    png = image_bytes(size=(60, 40))
    after_header = 8 + 25  # the signature and IHDR
    padded = png[:after_header] + png_chunk(b"zzZz") * imagescan.PNG_MAX_CHUNKS + png[after_header:]
    error = refusal(padded).message
    assert f"more than {imagescan.PNG_MAX_CHUNKS:,} chunks" in error
    # The pixels in 1-byte chunks, as valid as any PNG: a few thousand are fine.
    pixels = b"".join(
        png_chunk(b"IDAT", bytes([byte])) for byte in zlib.compress(bytes(1 + 60 * 3) * 40)
    )
    split = png[:after_header] + pixels + png_chunk(b"IEND")
    assert Image.open(io.BytesIO(split)).size == (60, 40)
    assert media.process(split).ext == "png"


def test_a_jpeg_with_many_markers_or_junk_is_refused_before_pillow_reads_them() -> None:
    # Pillow reads a JPEG's header markers, and any junk byte between them, one by one in
    # Python: 10 MB of empty comments took 7.9 s to accept, of EXIF blocks 11.7 s.
    jpeg = image_bytes("JPEG", size=(60, 40))
    at = 4 + int.from_bytes(jpeg[4:6], "big")  # after the first segment (Pillow's JFIF header)
    for filler in (b"\xff\xfe\x00\x02", b"\xff\xe1\x00\x02", b"\x00", b"\xff"):
        padded = jpeg[:at] + filler * (imagescan.JPEG_MAX_MARKERS + 1) + jpeg[at:]
        error = refusal(padded).message
        assert f"more than {imagescan.JPEG_MAX_MARKERS:,} markers" in error, filler
    commented = jpeg[:at] + b"\xff\xfe\x00\x05ok!" * 50 + b"\x00" * 50 + jpeg[at:]
    assert media.process(commented).ext == "jpg"


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow cannot read AVIF")
def test_an_avif_over_its_limit_is_refused_before_decoding() -> None:
    # AVIF is the slowest to write again: a noisy 8000 x 5000 took 17 s of CPU.
    error = refusal(flat_avif(3000, 2001)).message
    assert "3,000 x 2,001 pixels" in error and "6,000,000 pixels for AVIF" in error
    error = refusal(animation("AVIF", 2, (1600, 1600))).message
    assert "5,000,000 pixels for AVIF in all frames together" in error


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow cannot read AVIF")
def test_the_largest_avif_accepted_costs_about_a_second() -> None:
    # Random pixels are the worst case for the encoder: at the default speed this took 6 s.
    width, height = 3000, 2000
    assert width * height == media.FORMAT_MAX_PIXELS["AVIF"]
    out = io.BytesIO()
    noise = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    noise.save(out, "AVIF", quality=60, speed=10)
    with collector_off():
        started = time.process_time()
        processed = media.process(out.getvalue())
        seconds = time.process_time() - started
    assert processed.ext == "avif" and sorted(processed.variants) == [480, 960, 1600]
    assert seconds < 3.0  # about 1 s on two cores; 6 s before


def progressive_jpeg(scans_added: int = 0, size: tuple[int, int] = (400, 300)) -> bytes:
    """A progressive JPEG, its last scan repeated `scans_added` more times before its end."""
    buffer = io.BytesIO()
    Image.new("L", size, 128).save(buffer, "JPEG", progressive=True, quality=85)
    data = buffer.getvalue()
    last_scan = data.rfind(b"\xff\xda")
    return data[:-2] + data[last_scan:-2] * scans_added + data[-2:]


def test_a_jpeg_of_very_many_scans_is_refused_before_decoding(
    app: Flask, author_client: FlaskClient, draft_id: int
) -> None:
    # Each scan is decoded over the whole picture: 150,000 copies of one 14-byte scan made a
    # 2 MB, 2000 x 2000 file that took 83 s to decode, within every byte and pixel limit.
    normal = progressive_jpeg()
    assert 2 < normal.count(b"\xff\xda") < 20  # what encoders write
    assert media.process(normal).ext == "jpg"
    hostile = progressive_jpeg(scans_added=imagescan.MAX_JPEG_SCANS)
    error = refusal(hostile).message
    assert f"over {imagescan.MAX_JPEG_SCANS} scans" in error
    response = upload(author_client, draft_id, hostile, name="scans.jpg")
    assert response.status_code == 422
    assert stored_files(app) == [] and media_count(app) == 0
    spent = time.process_time()
    refusal(progressive_jpeg(scans_added=20_000, size=(2000, 2000)))
    assert time.process_time() - spent < 1  # refused from its header: nothing is decoded


def test_stray_bytes_in_a_gif_are_counted_and_hide_no_frame() -> None:
    # Pillow skips a byte it does not know, one loop each: 10 MB of them took 2.5 s to accept,
    # and one in front of a frame hid it from the canvas check (0.5 s and 384 MB, then refused).
    gif = animation("GIF", 2, (10, 10))
    junk = gif[:-1] + bytes(imagescan.GIF_MAX_BLOCKS + 1) + b"\x3b"
    assert "blocks" in refusal(junk).message
    hidden = gif_growing_to(9000, disposal=2)
    at = hidden.index(b"\x21\xf9\x04\x08")  # the grown frame's control block
    error = refusal(hidden[:at] + b"\x00" + hidden[at:]).message
    assert "9,000 x 9,000 pixels" in error


def test_a_png_with_many_compressed_chunks_is_refused_before_pillow_inflates_them() -> None:
    # Pillow inflates each colour profile and compressed text chunk, up to 1 MB each: 10 MB of
    # 1 kB ones took 61 s to accept. A PNG has one profile and a few texts.
    png = image_bytes(size=(60, 40))
    inflating = zlib.compress(bytes(2**16))
    for kind, body in ((b"iCCP", b"p\0\0"), (b"zTXt", b"k\0\0"), (b"iTXt", b"k\0\1\0\0\0")):
        chunks = png_chunk(kind, body + inflating) * (imagescan.PNG_MAX_INFLATED + 1)
        error = refusal(png[:33] + chunks + png[33:]).message
        assert "compressed" in error, kind
    texts = png_chunk(b"zTXt", b"k\0\0" + inflating) * 3
    assert media.process(png[:33] + texts + png[33:]).ext == "png"


def jpeg_segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body


@pytest.mark.parametrize(
    "segment",
    [
        # A frame header of 21,000 "components" (a picture has at most 4): 4.1 s and 668 MB.
        jpeg_segment(0xC0, b"\x08\x00\x28\x00\x3c\x03" + b"\x01\x11\x00" * 21_000),
        # Quantization tables, a 64-item list each: 1.5 s.
        jpeg_segment(0xDB, (b"\x00" + bytes(range(1, 65))) * 1000),
        # Photoshop's resources, read one by one: 1.3 s.
        jpeg_segment(0xED, b"Photoshop 3.0\x00" + b"8BIM\x04\x04\x00\x00\x00\x00\x00\x00" * 5000),
    ],
)
def test_jpeg_segments_pillow_reads_item_by_item_count_each_item(segment: bytes) -> None:
    jpeg = image_bytes("JPEG", size=(60, 40))
    at = 4 + int.from_bytes(jpeg[4:6], "big")
    error = refusal(jpeg[:at] + segment * 11 + jpeg[at:]).message
    assert f"more than {imagescan.JPEG_MAX_MARKERS:,} markers" in error


def exif_block(*entries: tuple[int, int, int, bytes]) -> bytes:
    """A little-endian TIFF header and one IFD of (tag, type, count, value or data) entries."""
    count = len(entries)
    data_at = 8 + 2 + 12 * count + 4
    ifd, data = b"", b""
    for tag, kind, number, value in entries:
        if len(value) <= 4:
            ifd += struct.pack("<HHI", tag, kind, number) + value.ljust(4, b"\0")
        else:
            ifd += struct.pack("<HHII", tag, kind, number, data_at + len(data))
            data += value
    return b"II*\0" + struct.pack("<IH", 8, count) + ifd + b"\0\0\0\0" + data


ROTATE = (0x0112, 3, 1, struct.pack("<H", 6))  # Orientation 6: turn 90 degrees clockwise


def with_exif(jpeg: bytes, exif: bytes) -> bytes:
    return jpeg[:2] + jpeg_segment(0xE1, b"Exif\0\0" + exif) + jpeg[2:]


@pytest.mark.parametrize(
    "other",
    [
        (0x9000, 5, 1, struct.pack("<II", 0, 0)),  # a RATIONAL 0/0: Pillow could not write it back
        (0x0100, 5, 1, struct.pack("<II", 60, 1)),  # ImageWidth as a RATIONAL
        (0x9000, 5, 8000, struct.pack("<II", 1, 1) * 8000),  # 64 kB of them, written back slowly
    ],
)
def test_a_picture_is_turned_upright_whatever_else_its_exif_holds(other: tuple) -> None:
    # Pillow's exif_transpose writes the whole EXIF again (it is dropped after): a 0/0 there was
    # a 500, and 10 MB of RATIONALs took 5.4 s.
    jpeg = image_bytes("JPEG", size=(60, 40))
    processed = media.process(with_exif(jpeg, exif_block(ROTATE, other)))
    assert (processed.width, processed.height) == (40, 60)
    assert b"Exif" not in processed.data


@pytest.mark.parametrize(
    ("name", "status"), [("avif-missing-item.avif", 415), ("webp-bad-exif.webp", None)]
)
def test_damaged_files_found_by_fuzzing_are_answered_not_500s(name: str, status: int | None):
    # Pillow raised RuntimeError opening the AVIF, and SyntaxError reading the WebP's EXIF.
    data = (Path(__file__).parent / "fixtures" / "damaged" / name).read_bytes()
    if status is None:
        assert media.process(data).ext == "webp"  # the EXIF is dropped anyway
    else:
        with pytest.raises(media.MediaError) as refused:
            media.process(data)
        assert refused.value.status == status


def _png_no_palette() -> bytes:
    header = (8).to_bytes(4, "big") * 2 + bytes([8, 3, 0, 0, 0])  # colour type 3, no PLTE chunk
    idat = png_chunk(b"IDAT", zlib.compress(bytes(9 * 8)))
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + idat + png_chunk(b"IEND")


def _gif_short_control_block() -> bytes:
    gif = animation("GIF", 1, (8, 8))
    frame = gif[gif.index(b"\x2c") : -1]
    return gif[:-1] + b"\x21\xf9\x02\x00\x00\x00" + frame + b"\x3b"  # 2 bytes where 4 belong


def _apng_stray_frame_control() -> bytes:
    apng = animation("PNG", 3, (8, 8))
    control = apng[apng.index(b"fcTL") - 4 :][:38]  # the first frame's again, before IEND
    return apng[:-12] + control + apng[-12:]


def _avif_timescale_zero() -> bytes:
    avif = animation("AVIF", 2, (16, 16))
    at = avif.index(b"mdhd") + 4
    at += 4 + (16 if avif[at] == 1 else 8)
    return avif[:at] + bytes(4) + avif[at + 4 :]


@pytest.mark.parametrize(
    "make",
    [
        _png_no_palette,  # UnboundLocalError, writing it again
        _gif_short_control_block,  # struct.error, counting its frames
        _apng_stray_frame_control,  # SyntaxError, from the second walk over its frames
        pytest.param(
            _avif_timescale_zero,  # ZeroDivisionError, decoding it
            marks=pytest.mark.skipif(not features.check("avif"), reason="no AVIF in Pillow"),
        ),
    ],
)
def test_files_pillow_fails_on_in_other_ways_are_refused_not_500s(make) -> None:  # noqa: ANN001
    # A fuzzer's finds: each raised an exception _decode did not expect, and the upload was a
    # 500 (in an import, the whole post was lost to "unexpected error").
    error = refusal(make()).message
    assert "damaged" in error


def test_a_motion_photo_is_accepted_whatever_its_video_holds() -> None:
    # Pixel and Samsung phones append the video after the picture's end: its bytes were counted
    # as scans (0xFFDA anywhere in the file), and a 10 MB motion photo was "107 scans".
    jpeg = image_bytes("JPEG", size=(400, 300))
    video = b"ftypmp42" + b"\x00\xff\xda\x17" * (imagescan.MAX_JPEG_SCANS + 1)
    assert media.process(jpeg + video).ext == "jpg"


def test_a_photoshop_jpeg_with_large_resources_is_accepted() -> None:
    # Photoshop's resources were counted one per 12 bytes whatever they held: three segments
    # of large clipping paths were "more than 10,000 markers". Pillow loops once per resource.
    resource = b"8BIM\x07\xd0\x00\x00" + (60_000).to_bytes(4, "big") + bytes(60_000)
    segment = jpeg_segment(0xED, b"Photoshop 3.0\x00" + resource)
    jpeg = image_bytes("JPEG", size=(60, 40))
    at = 4 + int.from_bytes(jpeg[4:6], "big")
    assert media.process(jpeg[:at] + segment * 3 + jpeg[at:]).ext == "jpg"


def test_a_png_is_written_again_with_zlibs_fast_compression() -> None:
    # At zlib's default level the match search grows with the content: an 18 MP PNG of 16 grey
    # levels in noise took 10-12 s to write again, a 7 MP photo 3.2 s; the fast levels take
    # 1.0 s and 0.8 s for files 5-10 % larger (the page shows the WebP copies anyway).
    written = media.process(image_bytes(size=(300, 200))).data
    idat = written.index(b"IDAT") + 4
    assert written[idat + 1] >> 6 <= 1  # FLEVEL in the zlib header: 0 fastest, 1 fast


def test_the_copies_of_a_palette_picture_are_scaled_smoothly() -> None:
    # A review expected Pillow to scale palette pictures by the nearest pixel (one-pixel black
    # and white stripes would come out solid black: pngquant's PNGs, GIFs, many screenshots).
    # Pillow 13 scales them smoothly; this notices a Pillow that does not.
    stripes = Image.new("L", (1000, 200))
    stripes.putdata([255 * (x % 2) for _y in range(200) for x in range(1000)])
    out = io.BytesIO()
    stripes.convert("P").save(out, "PNG")
    processed = media.process(out.getvalue())
    copy = Image.open(io.BytesIO(processed.variants[480])).convert("L")
    assert 96 < ImageStat.Stat(copy).mean[0] < 160


def avif_with_exif(rationals: int) -> bytes:
    """An AVIF turned by its container (irot), its EXIF saying otherwise, holding `rationals`."""
    from PIL import TiffImagePlugin

    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0xBEEF] = tuple(TiffImagePlugin.IFDRational(1, 1) for _ in range(rationals))
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(out, "AVIF", exif=exif.tobytes(), speed=10)
    turned, upright = bytes.fromhex("011200030000000100060000"), bytes.fromhex("0112000300000001")
    return out.getvalue().replace(turned, upright + b"\x00\x01\x00\x00", 1)


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow cannot read AVIF")
def test_an_avif_with_a_large_exif_is_refused_before_pillow_writes_it_again() -> None:
    # When the container's rotation and the EXIF's differ, Pillow's AVIF reader writes the
    # whole EXIF again as it opens the file: 9 MB of RATIONALs took 21 s and 439 MB.
    error = refusal(avif_with_exif(20_000)).message
    assert f"more than the {imagescan.AVIF_MAX_EXIF_BYTES:,} bytes" in error
    processed = media.process(avif_with_exif(100))
    assert (processed.width, processed.height) == (48, 64)  # turned upright, by the container


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow cannot read AVIF")
def test_a_transparent_avif_has_half_the_limit() -> None:
    # Its transparency is a second picture to decode and write again: 6 MP of noise took 2.7 s
    # of CPU with it, 1.5 s without.
    out = io.BytesIO()
    Image.new("RGBA", (2000, 1501), (30, 120, 200, 128)).save(out, "AVIF", speed=10)
    error = refusal(out.getvalue()).message
    assert "2,000 x 1,501 pixels" in error and "3,000,000 pixels for a transparent AVIF" in error
    assert media.process(flat_avif(2000, 1501)).ext == "avif"


def test_a_cmyk_jpeg_is_stored_in_rgb_without_its_cmyk_profile() -> None:
    # Its CMYK colour profile was kept on the RGB picture written again, and on its copies: a
    # browser would read RGB values through a CMYK profile. (A profile lcms cannot read, here;
    # a real one converts the colours through it to sRGB.)
    out = io.BytesIO()
    Image.new("CMYK", (600, 400), (0, 200, 200, 0)).save(out, "JPEG", icc_profile=b"not a profile")
    processed = media.process(out.getvalue())
    for data in (processed.data, *processed.variants.values()):
        written = Image.open(io.BytesIO(data))
        assert written.mode == "RGB" and "icc_profile" not in written.info


def _first_huffman_counts(jpeg: bytes) -> bytes:
    at = jpeg.index(b"\xff\xc4") + 5  # marker, length, table class and id
    return jpeg[at : at + 16]


def test_a_large_jpeg_is_written_with_the_standard_huffman_tables() -> None:
    # Tables made for the picture (optimize) took 3 times the CPU and 106 MB more at 40 MP, for
    # a file 5 % smaller; a phone photo's 12 MP still gets them.
    standard_dc = bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0])  # ITU T.81, K.3
    small = media.process(image_bytes("JPEG", size=(1200, 800))).data
    assert _first_huffman_counts(small) != standard_dc
    large = media.process(image_bytes("JPEG", size=(4200, 3200))).data
    assert _first_huffman_counts(large) == standard_dc


def test_markers_between_a_jpegs_scans_count_too() -> None:
    # Only the scans themselves counted after the first: 9 MB of empty comments between two
    # scans took 1.8 s to count (libjpeg skips them in C).
    jpeg = progressive_jpeg()
    second = jpeg.index(b"\xff\xda", jpeg.index(b"\xff\xda") + 2)
    comments = b"\xff\xfe\x00\x02" * (imagescan.JPEG_MAX_MARKERS + 1)
    error = refusal(jpeg[:second] + comments + jpeg[second:]).message
    assert f"more than {imagescan.JPEG_MAX_MARKERS:,} markers" in error
