"""An image file's structure, read before Pillow reads it: what would cost seconds is refused.

Pillow reads some of a file's structure piece by piece in Python (a GIF's blocks, a PNG's
chunks, a JPEG's header markers) and does some work in proportion to what a file declares (a
JPEG's scans, a GIF frame that grows the canvas, an AVIF's EXIF written again). A 10 MB upload
made of tiny pieces took seconds to minutes however few its pixels. Everything here is read
with counts bounded, before blog.media hands the bytes to Pillow; a file whose structure does
not read as expected is left for Pillow to name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import islice


class Refused(ValueError):
    """A file whose structure would cost too much to read; the message says why, for people."""


# A progressive JPEG's scans are each decoded over the whole picture, so their number bounds
# the work as frames do: encoders write about ten, and a 2 MB file of 150,000 tiny scans took
# 83 s to decode.
MAX_JPEG_SCANS = 100
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


def walk(data: bytes) -> tuple[int, int] | None:
    """Read a file's structure before Pillow does; refuse what would cost it seconds.

    Counts the pieces of a GIF, PNG or JPEG (and a JPEG's scans) and measures an AVIF's EXIF;
    returns the size a GIF's frames grow its canvas to (None for the others). Formats are
    recognised by their signatures, as Pillow recognises them; WebP is read in C.
    """
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return _gif_canvas(data)
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        _count_png_chunks(data)
    elif data.startswith(b"\xff\xd8\xff"):
        _count_jpeg_markers(data)
    elif data[4:8] == b"ftyp" and (exif := _avif_exif_bytes(data)) > AVIF_MAX_EXIF_BYTES:
        raise Refused(
            f"This AVIF's EXIF is {exif:,} bytes, more than the {AVIF_MAX_EXIF_BYTES:,} bytes "
            "we read; save it again with less metadata."
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


def _too_many(name: str, limit: int, pieces: str) -> Refused:
    return Refused(
        f"This {name} is stored in more than {limit:,} {pieces}, far more than an encoder "
        "writes; save it again."
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
            _count_jpeg_scans(data, at, pieces)
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


def _count_jpeg_scans(data: bytes, at: int, pieces: int) -> None:
    """Refuse a JPEG of more than MAX_JPEG_SCANS scans, counted from its first one (`at`), or
    with more than JPEG_MAX_MARKERS markers in all (`pieces` of them before it).

    Each scan is decoded over the whole picture. Counted up to the end of the picture, as the
    bytes after it are no scans of it: a phone's motion photo appends its video there, and
    0xFFDA anywhere in it counted (a 10 MB one was "107 scans"); an MPO its next picture. The
    markers between scans are read one by one here: 9 MB of empty comments took 1.8 s.
    """
    scans = 0
    while (found := _JPEG_MARKER.search(data, at)) is not None:
        at, marker = found.start(), data[found.start() + 1]
        if marker == 0xD9:  # the end of the picture
            return
        pieces += 1
        if pieces > JPEG_MAX_MARKERS:
            raise _too_many("JPEG", JPEG_MAX_MARKERS, "markers or stray bytes")
        if marker == 0xDA:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise Refused(
                    f"This JPEG has over {MAX_JPEG_SCANS} scans, the most we decode (a "
                    "progressive JPEG has about ten); save it again as an ordinary JPEG."
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
