"""Uploaded images: decoded, checked and re-encoded by Pillow, then stored under their hash.

Nothing an author (or an API client, or an import) sends is served as it came. The bytes must
decode as one of the formats below, within limits on bytes and pixels checked before decoding
(so a decompression bomb costs nothing); the picture is turned upright by its EXIF orientation
and written again without any metadata (EXIF, GPS, XMP, comments), and at a few narrower widths
in WebP. SVG is not an image here: it is a document that can run script, and is refused.

Every stored file is named by the SHA-256 of the re-encoded original, so its URL never changes
and can be cached for a year (`immutable`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice

from flask import current_app, has_app_context
from PIL import Image, UnidentifiedImageError, features
from sqlalchemy import select

from .database import in_chunks, insert_unless_taken, take_turns
from .extensions import db
from .models import Media
from .storage import CONTENT_TYPES, media_storage

log = logging.getLogger(__name__)

# 10 MB: a phone photo is 2-6 MB; more is a RAW file or a scan, not a picture for an article.
MAX_BYTES = 10 * 1024 * 1024
# 40 megapixels (8000 x 5000): decoded as RGBA that is 160 MB of memory, the most we accept.
MAX_PIXELS = 40_000_000
MAX_FRAMES = 200  # an animated GIF or WebP; every frame is decoded
# A progressive JPEG's scans are each decoded over the whole picture, so their number bounds
# the work as frames do: encoders write about ten, and a 2 MB file of 150,000 tiny scans took
# 83 s to decode.
MAX_JPEG_SCANS = 100
# Pillow reads some of a file's structure piece by piece in Python, so a file made of many tiny
# pieces costs seconds however few its pixels; each is counted before Pillow reads it (_walk).
# A GIF's data blocks (at most 255 bytes each; 10 MB of one-byte blocks took 2.2 s to accept):
# an encoder fills them, about 41,000 in 10 MB.
GIF_MAX_BLOCKS = 100_000
# A PNG's chunks, read three times over (10 MB of empty ones: 6.2 s). Encoders write pixels in
# chunks of 8 kB or more: 1,300 in 10 MB.
PNG_MAX_CHUNKS = 20_000
# Of them, colour profiles and compressed texts, each inflated up to 1 MB (10 MB of 1 kB ones:
# 61 s). A PNG has one profile and a few texts.
PNG_MAX_INFLATED = 16
# A JPEG's markers before its pixels, any junk byte between them, and the items of a segment
# Pillow reads one by one (10 MB of empty comments: 7.9 s, of EXIF blocks 11.7 s, of frame
# header components 4.1 s). A camera writes a few dozen.
JPEG_MAX_MARKERS = 10_000
# An AVIF's EXIF: when the container's rotation differs from the EXIF's, Pillow writes the whole
# EXIF again as it opens the file (9 MB of RATIONALs: 21 s). A JPEG's EXIF holds at most 64 kB.
AVIF_MAX_EXIF_BYTES = 128 * 1024
# Items an AVIF's item location box may list, read one by one here: a picture has a handful.
_AVIF_MAX_ITEMS = 4096
# The bytes one item takes in a JPEG segment that Pillow reads item by item: a frame header's
# components (SOF0-SOF15 but DHT, JPG and DAC), quantization tables. (Photoshop's resources,
# in APP13, are counted one by one.)
_JPEG_ITEM_BYTES = {
    **{marker: 3 for marker in range(0xC0, 0xD0) if marker not in (0xC4, 0xC8, 0xCC)},
    0xDB: 65,
}
# A marker in a JPEG's scan data: 0xFF there is followed by 0 (a data byte), or by a restart
# marker (0xD0-0xD7) inside a scan, and padding 0xFF may precede a marker.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\x01\xd0-\xd7\xff]")
# All frames together: each is decoded and encoded again. 30 million took 1.4 s for a GIF of
# plain frames and 2 s for one of screenshots (each frame's own palette, so each is quantized
# again); 20 million keeps an animation near the cost of the largest still picture.
MAX_ANIMATION_PIXELS = 20_000_000
# Writing a picture again costs far more in some formats than in JPEG or GIF, so they accept
# fewer pixels, checked before decoding like MAX_PIXELS. Each keeps the worst content we found
# near a second of CPU on two cores (Pillow 13: libwebp 1.6, libavif 1.4 with aom). At the
# limit, a still picture took: JPEG 1.2 s (40 MP of noise, progressive), PNG 1.1 s (24 MP
# screenshot; 1.5 s half-transparent, or a 10 MB file that is part photo), WebP 1.3 s (16 MP
# photo), AVIF 1.05 s (6 MP of noise; a photo 0.6 s). An animation: WebP 1.2 s (8 MP of
# noise), AVIF 0.8-1.2 s (5 MP of noise), PNG 0.8 s (12 MP of blocky noise; 20 MP took
# 1.3-1.8 s). PNG's is what a phone's 1170 x 20,000 screenshot needs. AVIF's was 40 MP: a
# noisy 8000 x 5000 took 17 s, and still 4 s at the fastest speed.
FORMAT_MAX_PIXELS = {"PNG": 24_000_000, "WEBP": 16_000_000, "AVIF": 6_000_000}
# An AVIF's transparency is a second picture to decode and write again: 6 MP of noise took 2.7 s
# of CPU with it, 1.5 s without. All frames together, for an animation.
AVIF_TRANSPARENT_MAX_PIXELS = 3_000_000
FORMAT_MAX_ANIMATION_PIXELS = {"WEBP": 8_000_000, "AVIF": 5_000_000, "PNG": 12_000_000}
FORMAT_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "GIF": "GIF", "AVIF": "AVIF"}
WIDTHS = (480, 960, 1600)  # the WebP variants (never wider than the original)
# WebP holds at most this many pixels on a side (libwebp refuses to write more).
WEBP_MAX_SIDE = 16383
# The copies of an ordinary picture add under 8 megapixels (1600 x 3400 and its narrower ones);
# a long picture's are as large as itself and would double its cost (1170 x 20,000: 1.2 s
# more), so past this it gets none and the page shows the original.
MAX_COPY_PIXELS = 8_000_000
# A reviewer is told when an original is heavier than this (a page should not carry 5 MB).
LARGE_ORIGINAL_BYTES = 1_500_000
LARGE_ORIGINAL_PIXELS = 4000 * 3000
JPEG_QUALITY = 85
WEBP_QUALITY = 80

# Pillow's format name -> the stored extension.
FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
if features.check("avif"):
    FORMATS["AVIF"] = "avif"
# Pillow's name for a file that is one of ours with more in it -> the format it is stored as. A
# JPEG followed by more pictures (MPO: the second eye or depth map many phone cameras add) is a
# photo like any other: the first picture is the one every viewer shows; the rest is dropped.
STORED_AS = {"MPO": "JPEG"}
KEPT_INFO = ("icc_profile", "transparency", "duration", "loop", "background")


class MediaError(Exception):
    """An upload that cannot be stored, with the HTTP status and a message for the author."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Processed:
    """An image ready to store: the clean original and its WebP variants by width."""

    sha256: str
    ext: str
    data: bytes
    width: int
    height: int
    variants: dict[int, bytes] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.sha256}.{self.ext}"


def _limit(name: str, default: int) -> int:
    """Read a limit from the configuration (the default in an importer's worker process)."""
    if not has_app_context():
        return default
    return int(current_app.config.get(name) or default)


def max_bytes() -> int:
    """Return the largest upload accepted, in bytes."""
    return _limit("MEDIA_MAX_BYTES", MAX_BYTES)


def _open(data: bytes) -> Image.Image:
    """Open (not decode) the bytes as one of our formats, or refuse them as not an image."""
    try:
        # Pillow's JPEG opener answers an MPO itself (MPO is no format of its own to ask for).
        return Image.open(io.BytesIO(data), formats=list(FORMATS))
    # RuntimeError: the AVIF reader's, for a file its decoder cannot open.
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, RuntimeError):
        names = ", ".join(sorted(FORMATS))
        raise MediaError(415, f"This file is not an image we accept ({names}).") from None


def _decode(data: bytes) -> Image.Image:
    """Check declared size, verify and fully decode an image; refuse bombs and broken files."""
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that: a warning is a refusal here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            canvas = _walk(data)
            image = _open(data)
            frames = _frames(image)
            _check_size(image, frames, canvas)
            image.verify()  # checks the file's structure (CRCs, chunk order)
            # verify() leaves the image unusable: open it again to decode every pixel.
            image = _open(data)
            image.load()
            size = image.size
            for index in range(1, frames):
                image.seek(index)  # reads the frame's header; load() decodes it
                if image.size != size:  # a GIF frame larger than the screen grows the canvas
                    size = image.size
                    _check_size(image, frames)
                image.load()
            image.seek(0)
        except MediaError:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise MediaError(
                422, "This image declares more pixels than we decode (a decompression bomb?)."
            ) from None
        except (
            OSError,
            SyntaxError,
            ValueError,
            EOFError,
            IndexError,
            TypeError,
            RuntimeError,
        ) as error:
            raise MediaError(422, f"This image is damaged or incomplete ({error}).") from None
    return image


def _check_size(image: Image.Image, frames: int, size: tuple[int, int] | None = None) -> None:
    """Refuse an image whose size or frames are past a limit, before its pixels are decoded.

    Run on the size a file declares (a GIF's: the size its frames grow the canvas to), and
    again whenever a frame grows the canvas, in case Pillow reads a GIF otherwise than
    _gif_canvas: only the first frame's size was checked, and a 9000 x 9000 frame after two
    small ones took 9 s.
    """
    width, height = size or image.size
    stored_as = _stored_format(image)
    name = FORMAT_NAMES.get(stored_as, stored_as)
    site_max_pixels = _limit("MEDIA_MAX_PIXELS", MAX_PIXELS)
    max_pixels = min(site_max_pixels, FORMAT_MAX_PIXELS.get(stored_as, site_max_pixels))
    if width < 1 or height < 1:
        raise MediaError(422, "This image has no pixels.")
    if width * height > site_max_pixels:
        raise MediaError(
            422,
            f"This image is {width:,} x {height:,} pixels, over the limit of "
            f"{site_max_pixels:,} pixels; scale it down before uploading.",
        )
    if width * height > max_pixels:
        raise MediaError(
            422,
            f"This {name} image is {width:,} x {height:,} pixels, over the limit of "
            f"{max_pixels:,} pixels for {name} (slow to write again); scale it down, "
            f"or upload it as a JPEG (up to {site_max_pixels:,} pixels).",
        )
    transparent_max = min(site_max_pixels, AVIF_TRANSPARENT_MAX_PIXELS)
    if stored_as == "AVIF" and image.mode == "RGBA" and frames * width * height > transparent_max:
        png_max = min(site_max_pixels, FORMAT_MAX_PIXELS["PNG"])
        in_frames = f" in {frames:,} frames" if frames > 1 else ""
        raise MediaError(
            422,
            f"This transparent AVIF image is {width:,} x {height:,} pixels{in_frames}, over the "
            f"limit of {transparent_max:,} pixels for a transparent AVIF (slow to write again); "
            f"scale it down, or upload it as PNG (up to {png_max:,} pixels).",
        )
    if image.format == "WEBP" and max(width, height) > WEBP_MAX_SIDE:
        # A lossless WebP's header has room for 16,384 and Pillow decodes it, but it cannot be
        # written again as WebP.
        raise MediaError(
            422,
            f"This WebP image is {width:,} x {height:,} pixels, more than the "
            f"{WEBP_MAX_SIDE:,} pixels a side WebP can be written at; crop it or "
            "upload it as PNG.",
        )
    if frames > MAX_FRAMES:
        raise MediaError(
            422, f"This animation has {frames:,} frames, over the limit of {MAX_FRAMES}."
        )
    max_animation = FORMAT_MAX_ANIMATION_PIXELS.get(stored_as, MAX_ANIMATION_PIXELS)
    if frames > 1 and frames * width * height > max_animation:
        kind = "" if max_animation == MAX_ANIMATION_PIXELS else f" for {name}"
        raise MediaError(
            422,
            f"This animation is {frames:,} frames of {width:,} x {height:,} pixels, over "
            f"the limit of {max_animation:,} pixels{kind} in all frames together; "
            "scale it down or shorten it.",
        )


def _walk(data: bytes) -> tuple[int, int] | None:
    """Count the pieces of a GIF, PNG or JPEG before Pillow reads them; return a GIF's canvas.

    Recognised by their signatures, as Pillow recognises them; other formats are read in C.
    """
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return _gif_canvas(data)
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        _count_png_chunks(data)
    elif data.startswith(b"\xff\xd8\xff"):
        _count_jpeg_markers(data)
    elif data[4:8] == b"ftyp" and (exif := _avif_exif_bytes(data)) > AVIF_MAX_EXIF_BYTES:
        raise MediaError(
            422,
            f"This AVIF's EXIF is {exif:,} bytes, more than the {AVIF_MAX_EXIF_BYTES:,} bytes "
            "we read; save it again with less metadata.",
        )
    return None


def _isobmff_boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """Yield the boxes of an ISO media file between two offsets: (type, body start, end)."""
    at = start
    while at + 8 <= end:
        size, kind, header = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8], 8
        if size == 1:  # a 64-bit size follows the type
            size, header = int.from_bytes(data[at + 8 : at + 16], "big"), 16
        elif size == 0:  # to the end
            size = end - at
        if size < header or at + size > end:
            return
        yield kind, at + header, at + size
        at += size


def _avif_exif_bytes(data: bytes) -> int:
    """Return the size of an AVIF's EXIF item, from its item boxes (0 when there is none).

    Read in Python, so every count is bounded: the boxes before `meta` and in it (an encoder
    writes a handful), and the items and extents, past _AVIF_MAX_ITEMS refused. A file whose
    boxes do not read as expected is left for libavif to name: 0.
    """
    try:
        top = islice(_isobmff_boxes(data, 0, len(data)), 16)
        meta = next((box for box in top if box[0] == b"meta"), None)
        if meta is None:
            return 0
        inside = islice(_isobmff_boxes(data, meta[1] + 4, meta[2]), 64)  # after version, flags
        boxes = {kind: (body, end) for kind, body, end in inside}
        if b"iinf" not in boxes or b"iloc" not in boxes:
            return 0
        return _avif_item_bytes(data, _avif_exif_ids(data, *boxes[b"iinf"]), *boxes[b"iloc"])
    except IndexError:  # a box cut short
        return 0


def _avif_exif_ids(data: bytes, body: int, end: int) -> set[int]:
    """Return the IDs of the EXIF items an item information box (iinf) lists."""
    entries = body + (6 if data[body] == 0 else 8)  # version and flags, then a count
    ids = set()
    for number, (kind, at, _end) in enumerate(_isobmff_boxes(data, entries, end)):
        if number >= _AVIF_MAX_ITEMS:
            raise _too_many("AVIF", _AVIF_MAX_ITEMS, "items")
        version = data[at]
        if kind == b"infe" and version >= 2:  # version and flags, ID, protection index, type
            width = 2 if version == 2 else 4
            if data[at + 6 + width : at + 10 + width] == b"Exif":
                ids.add(int.from_bytes(data[at + 4 : at + 4 + width], "big"))
    return ids


def _avif_item_bytes(data: bytes, ids: set[int], body: int, end: int) -> int:
    """Return the bytes the item location box (iloc) gives the items `ids`, extents summed."""
    if not ids:
        return 0
    version = data[body]
    at = body + 4  # after version and flags
    offset_size, length_size = data[at] >> 4, data[at] & 15
    base_size, index_size = data[at + 1] >> 4, (data[at + 1] & 15) if version in (1, 2) else 0
    id_size = 4 if version == 2 else 2
    count = int.from_bytes(data[at + 2 : at + 2 + id_size], "big")
    at += 2 + id_size
    total = pieces = 0
    for _item in range(count):
        item_id = int.from_bytes(data[at : at + id_size], "big")
        at += id_size + (2 if version in (1, 2) else 0) + 2 + base_size  # method, ref, base
        extents = int.from_bytes(data[at : at + 2], "big")
        at += 2
        pieces += 1 + extents
        if pieces > _AVIF_MAX_ITEMS:
            raise _too_many("AVIF", _AVIF_MAX_ITEMS, "items")
        for _extent in range(extents):
            at += index_size + offset_size
            length = int.from_bytes(data[at : at + length_size], "big")
            at += length_size
            if item_id in ids:
                total += length or len(data)  # 0: to the end of the file
        if at > end:
            break
    return total


def _too_many(name: str, limit: int, pieces: str) -> MediaError:
    return MediaError(
        422,
        f"This {name} is stored in more than {limit:,} {pieces}, far more than an encoder "
        "writes; save it again.",
    )


def _count_png_chunks(data: bytes) -> None:
    """Refuse a PNG of more than PNG_MAX_CHUNKS chunks (each: length, type, data, checksum),
    or more than PNG_MAX_INFLATED of them compressed (a colour profile or a text)."""
    at, chunks, inflated = 8, 0, 0
    while at + 8 <= len(data):
        chunks += 1
        if chunks > PNG_MAX_CHUNKS:
            raise _too_many("PNG", PNG_MAX_CHUNKS, "chunks")
        kind = data[at + 4 : at + 8]
        if kind == b"IEND":
            return
        if kind in (b"iCCP", b"zTXt", b"iTXt"):
            inflated += 1
            if inflated > PNG_MAX_INFLATED:
                raise _too_many("PNG", PNG_MAX_INFLATED, "compressed profiles and texts")
        at += 12 + int.from_bytes(data[at : at + 4], "big")


def _count_jpeg_markers(data: bytes) -> None:
    """Refuse a JPEG with more than JPEG_MAX_MARKERS markers and junk bytes before its pixels,
    or with more than MAX_JPEG_SCANS scans.

    Counted as Pillow reads them: a marker, with its segment (or each item of a segment it
    reads item by item: _JPEG_ITEM_BYTES, Photoshop's resources); a padding 0xFF; a junk byte.
    """
    at, pieces = 2, 0
    while at + 1 < len(data) and pieces <= JPEG_MAX_MARKERS:
        if data[at] != 0xFF:  # junk: Pillow reads it a byte at a time
            found = data.find(b"\xff", at)
            end = len(data) if found < 0 else found
            pieces, at = pieces + end - at, end
            continue
        marker = data[at + 1]
        pieces += 1
        if marker == 0xDA:  # start of scan: the pixels, read in C
            _count_jpeg_scans(data, at)
            return
        if marker == 0xFF:  # padding
            at += 1
        elif marker in (0x00, 0x01) or 0xD0 <= marker <= 0xD9:  # no segment follows
            at += 2
        else:
            length = int.from_bytes(data[at + 2 : at + 4], "big")
            if marker == 0xED and data.startswith(b"Photoshop 3.0\x00", at + 4):
                pieces += data.count(b"8BIM", at + 4, at + 2 + length)
            else:
                pieces += length // _JPEG_ITEM_BYTES.get(marker, length or 1)
            at += 2 + length
    if pieces > JPEG_MAX_MARKERS:
        raise _too_many("JPEG", JPEG_MAX_MARKERS, "markers or stray bytes")


def _count_jpeg_scans(data: bytes, at: int) -> None:
    """Refuse a JPEG of more than MAX_JPEG_SCANS scans, counted from its first one (`at`).

    Each scan is decoded over the whole picture. Counted up to the end of the picture, as the
    bytes after it are no scans of it: a phone's motion photo appends its video there, and
    0xFFDA anywhere in it counted (a 10 MB one was "107 scans"); an MPO its next picture.
    """
    scans = 0
    while (found := _JPEG_MARKER.search(data, at)) is not None:
        at, marker = found.start(), data[found.start() + 1]
        if marker == 0xD9:  # the end of the picture
            return
        if marker == 0xDA:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise MediaError(
                    422,
                    f"This JPEG has over {MAX_JPEG_SCANS} scans, the most we decode (a "
                    "progressive JPEG has about ten); save it again as an ordinary JPEG.",
                )
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")  # past the marker's segment


def _gif_canvas(data: bytes) -> tuple[int, int]:
    """Return the size a GIF's canvas grows to, read from its blocks' headers alone.

    A frame may lie past the screen the file declares; Pillow then grows the canvas, and fills
    a buffer of the frame's size in seek(), before a check after it could run (a grown frame
    was refused after 0.18 s and 430 MB). The blocks are counted on the way (empty extensions
    and stray bytes too): past GIF_MAX_BLOCKS the file is refused before Pillow walks them. A
    file damaged here is left for Pillow to name.
    """
    width, height = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    at, blocks = 13, 0
    if len(data) > 10 and data[10] & 0x80:  # a global colour table follows the screen
        at += 3 << ((data[10] & 7) + 1)
    while at < len(data) and blocks <= GIF_MAX_BLOCKS:
        if data[at] == 0x21:  # an extension: its label, then data blocks
            at += 2
        elif data[at] == 0x2C and at + 10 <= len(data):  # a frame: where it lies, then data
            x, y, w, h = (int.from_bytes(data[at + i : at + i + 2], "little") for i in (1, 3, 5, 7))
            width, height = max(width, x + w), max(height, y + h)
            flags = data[at + 9]
            at += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1  # and the code size
        elif data[at] == 0x3B:  # the trailer
            break
        else:  # a byte Pillow does not know: it skips it, one loop each
            at, blocks = at + 1, blocks + 1
            continue
        blocks += 1
        # Data blocks, each led by its length, up to an empty one.
        while at < len(data) and data[at] and blocks <= GIF_MAX_BLOCKS:
            at += data[at] + 1
            blocks += 1
        at += 1
    if blocks > GIF_MAX_BLOCKS:
        raise _too_many("GIF", GIF_MAX_BLOCKS, "blocks")
    return width, height


def _stored_format(image: Image.Image) -> str:
    """Return the format an image is stored in: its own, or the one STORED_AS names for it."""
    return STORED_AS.get(str(image.format), str(image.format))


def _frames(image: Image.Image) -> int:
    """Return how many frames an image shows: an MPO's pictures after the first are not shown.

    They are never decoded or stored, so they count against no limit of an animation.
    """
    return 1 if image.format in STORED_AS else getattr(image, "n_frames", 1)


def _without_metadata(image: Image.Image) -> Image.Image:
    """Keep only what drawing needs (colour profile, transparency, timing); drop EXIF and GPS."""
    image.info = {k: v for k, v in image.info.items() if k in KEPT_INFO}
    return image


def _encode(image: Image.Image, pillow_format: str, animated: bool = False) -> bytes:
    """Write an image in a format with our settings, and never any EXIF (no `exif=` given)."""
    out = io.BytesIO()
    options: dict = {}
    if pillow_format == "JPEG":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        # optimize (Huffman tables) costs little; progressive cost six times a plain save.
        options = {"quality": JPEG_QUALITY, "optimize": True}
    elif pillow_format == "PNG":
        # Level 6 (the default) took 10 s for an 18 MP PNG of grey noise and 3.2 s for a 7 MP
        # photo; zlib's fast levels (1-3) bound the match search: 1.0 s and 0.8 s, for files
        # 5-10 % larger (a page shows the WebP copies). optimize=True tripled the time for ~5 %.
        options = {"compress_level": 3}
    elif pillow_format == "WEBP":
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if _has_alpha(image) else "RGB")
        # method 3 took twice as long as 2 (a 12-megapixel photo 1.2 s, 0.56 s) for files
        # 2 % (a photo) to 12 % (a long screenshot) smaller.
        options = {"quality": WEBP_QUALITY, "method": 2}
    elif pillow_format == "AVIF":
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if _has_alpha(image) else "RGB")
        # The default speed (6) took 5.7 s for a 12-megapixel photo; 10, the fastest, 1.1 s
        # for a file 5 % larger. The original is rarely served: the page shows the WebP copies.
        options = {"quality": 60, "speed": 10}
    if animated:
        options.update(save_all=True)
    icc = image.info.get("icc_profile")
    if icc and pillow_format != "GIF":
        options["icc_profile"] = icc
    image.save(out, pillow_format, **options)
    return out.getvalue()


def _in_rgb(image: Image.Image) -> Image.Image:
    """Return a CMYK picture in RGB, through its colour profile to sRGB when lcms reads it.

    Every format is stored in RGB; its CMYK profile was kept on the RGB picture and its copies,
    where a browser would read RGB values through a CMYK profile. Other modes are returned as
    they are (_encode converts them where a format needs it, keeping an RGB profile).
    """
    if image.mode != "CMYK":
        return image
    info = {key: value for key, value in image.info.items() if key != "icc_profile"}
    profile = image.info.get("icc_profile")
    converted = None
    if profile and features.check("littlecms2"):
        from PIL import ImageCms

        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            srgb = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(image, source, srgb, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            converted = None  # a profile lcms cannot read or use: as if there were none
    if converted is None:
        converted = image.convert("RGB")
    converted.info = info
    return converted


# How to turn a picture upright for each EXIF orientation (1, or none: it is upright).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _upright(image: Image.Image) -> Image.Image:
    """Return the picture turned as its EXIF orientation says (the image itself if upright).

    Only the orientation is read. Pillow's exif_transpose writes the whole EXIF again, which is
    dropped after anyway: a RATIONAL 0/0 there was a 500, and 10 MB of them took 5.4 s.
    """
    try:
        with warnings.catch_warnings():  # one per damaged tag: 65,000 of them flooded the log
            warnings.simplefilter("ignore")
            orientation = image.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - any damage to untrusted EXIF: leave the picture as it is
        return image
    method = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    return image if method is None else image.transpose(method)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def process(data: bytes) -> Processed:
    """Decode, check and re-encode an upload; raise MediaError with a message when refused."""
    if not data:
        raise MediaError(422, "The file is empty.")
    if len(data) > max_bytes():
        raise MediaError(413, f"The file is larger than {max_bytes():,} bytes.")
    try:
        return _process(data)
    except MediaError:
        raise
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - Pillow on a damaged file raises nearly anything
        # A fuzzer found struct.error, UnboundLocalError, ZeroDivisionError and SyntaxError,
        # from decoding and from writing again (a second walk over the frames): each was a 500.
        log.warning("an image Pillow could not read or write again", exc_info=True)
        raise MediaError(
            422, "This image is damaged: it could not be read or written again."
        ) from None


def _process(data: bytes) -> Processed:
    """Decode, check and write again: process() without its guard against Pillow's errors."""
    image = _decode(data)
    pillow_format = _stored_format(image)
    animated = _frames(image) > 1
    if animated:
        # Every frame re-encoded as it is (an animation has no orientation to apply).
        clean = _without_metadata(image)
    else:
        clean = _without_metadata(_in_rgb(_upright(image)))
    original = _encode(clean, pillow_format, animated=animated)
    width, height = clean.size
    processed = Processed(
        sha256=hashlib.sha256(original).hexdigest(),
        ext=FORMATS[pillow_format],
        data=original,
        width=width,
        height=height,
    )
    if not animated:
        # Widest first, each scaled from the one before: far less work than from the original.
        source = clean
        for target in sorted(variant_widths(width, height), reverse=True):
            scaled = source
            if target < source.width:
                size = (target, max(1, round(height * target / width)))
                # A gap of 2 (thumbnail()'s) halves the work from 8000 pixels wide (0.47 s to
                # 0.2 s), and differs from a full Lanczos by under one level in 255.
                scaled = source.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
            if scaled is clean and pillow_format == "WEBP":
                # The same picture, encoder and settings: the original's very bytes.
                processed.variants[target] = original
            else:
                processed.variants[target] = _encode(scaled, "WEBP")
            source = scaled
        processed.variants = dict(sorted(processed.variants.items()))
    return processed


def variant_widths(width: int, height: int) -> list[int]:
    """Return the WebP widths made for an image this size: never upscaled, never too tall.

    A copy taller than WebP holds is made narrower instead, the widest that fits: srcset lists
    each copy by its width, so a copy must be exactly the width it is listed at and keep the
    picture's shape. A long picture gets no copies at all (past MAX_COPY_PIXELS they would cost
    as much as the picture, and offering only narrow ones would blur it on every screen), nor
    does one too thin for even a copy one pixel wide; the page shows the original.
    """
    fits = WEBP_MAX_SIDE * width // height  # the widest copy whose height WebP holds
    widths = sorted({w for target in WIDTHS if (w := min(target, width, fits)) >= 1})
    if sum(w * max(1, round(height * w / width)) for w in widths) > MAX_COPY_PIXELS:
        return []  # a long picture: copies would cost as much as the picture itself
    return widths


def variant_key(sha256: str, width: int) -> str:
    """Return the storage key of a WebP variant."""
    return f"{sha256}-{width}.webp"


def save(processed: Processed, uploaded_by_id: int | None, article_id: int | None = None) -> Media:
    """Store a processed image and its uploader's row (not committed); return that row.

    Kept apart from process() so a view can decode (slow) outside any database transaction.
    Each uploader has a row of their own (Media says why); the files are shared. A row can
    outlive its files (the database copied to a new server or bucket without them), so
    uploading a known picture again writes back whichever of its files are missing: its
    uploader's obvious remedy then works.
    """
    rows = picture_rows(processed.sha256)
    storage = media_storage()
    # Files first, row second: a row never points at files that are not there (a crash between
    # leaves unreferenced files, harmless and content-addressed).
    files = [
        (variant_key(processed.sha256, width), variant, CONTENT_TYPES["webp"])
        for width, variant in processed.variants.items()
    ]
    files.append((processed.key, processed.data, CONTENT_TYPES[processed.ext]))
    for key, data, kind in files:
        # Content-addressed, so a file that is there is the right one: asking is cheaper than
        # sending the bytes again.
        if not rows or not storage.exists(key):
            storage.put(key, data, kind)
    for row in rows:
        if row.uploaded_by_id == uploaded_by_id:
            return row
    # The same person may be adding the same picture at this moment (two tabs, a retried
    # request: it looked and found no row too): the first one in keeps its row, and this one
    # gets it.
    insert_unless_taken(
        Media,
        [
            {
                "sha256": processed.sha256,
                "ext": processed.ext,
                "width": processed.width,
                "height": processed.height,
                "bytes": len(processed.data),
                "widths": ",".join(str(w) for w in processed.variants),
                "uploaded_by_id": uploaded_by_id,
                "article_id": article_id,
            }
        ],
    )
    mine = select(Media).where(  # == None is IS NULL: an import's pictures
        Media.sha256 == processed.sha256, Media.uploaded_by_id == uploaded_by_id
    )
    return db.session.scalars(mine.order_by(Media.id).limit(1)).one()


def picture_rows(sha256: str) -> list[Media]:
    """Take the picture's turn (to the end of the transaction), then return its rows.

    Uploads and deletes of one picture must not interleave: a delete of its last row removes
    its files, and an upload in between either found the row and skipped writing them, or
    wrote them just before they went. Each then left a row whose image was broken.
    """
    take_turns(f"media:{sha256}")
    return list(db.session.scalars(select(Media).filter_by(sha256=sha256).order_by(Media.id)))


def media_keys(media: Media) -> list[str]:
    """Return every stored key of one image: the original and its variants."""
    return [media.key] + [variant_key(media.sha256, w) for w in media.variant_widths]


def delete_files(media: Media) -> None:
    """Remove an image's files from storage (after its row is gone)."""
    storage = media_storage()
    for key in media_keys(media):
        storage.delete(key)


def unseen_images(markdown: str) -> list[str]:
    """Return the addresses of this site's images in a body that no upload answers, in order.

    An image's address is the hash of its file, which anyone can work out without uploading
    it: approved while it answers nothing, the picture would appear on the approved page once
    someone uploads it, never seen by the reviewer. Read from the parsed body, so an address
    spelled with character references counts as the one it renders to.
    """
    from .content import body_images, media_path

    wanted: dict[str, str] = {}  # hash: the address as written, first one of each
    for image in body_images(markdown):
        if match := media_path(str(image.attrGet("src"))):
            wanted.setdefault(match["hash"], match.group(0))
    if not wanted:
        return []
    known: set[str] = set()
    for chunk in in_chunks(list(wanted)):
        known.update(db.session.scalars(select(Media.sha256).where(Media.sha256.in_(chunk))))
    return [address for digest, address in wanted.items() if digest not in known]
