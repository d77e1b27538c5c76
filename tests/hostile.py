"""Hostile inputs, written byte by byte: a PDF whose form XObjects draw each other (10^9
drawing operations in 4 KB) and images whose headers claim huge sizes in a few bytes."""

import struct
import zlib


def xobject_bomb_pdf(depth: int = 9, fanout: int = 10) -> bytes:
    """A one-page PDF whose page draws form XObject 1, which draws XObject 2 ``fanout`` times,
    and so on ``depth`` levels down: ``fanout ** (depth - 1)`` drawings of the leaf's text."""
    objs = {1: b"<< /Type /Catalog /Pages 2 0 R >>", 2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            5: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"}
    first = 10
    objs[3] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /X %d 0 R >> "
               b"/Font << /F1 5 0 R >> >> /Contents 4 0 R >>" % first)
    objs[4] = b"<< /Length 9 >>\nstream\nq /X Do Q\nendstream"
    for i in range(depth):
        if i < depth - 1:
            body = b" ".join([b"q /X Do Q"] * fanout)
            res = b"<< /XObject << /X %d 0 R >> /Font << /F1 5 0 R >> >>" % (first + i + 1)
        else:
            body = b"BT /F1 12 Tf 10 10 Td (ab) Tj ET 0 0 1 1 re f"
            res = b"<< /Font << /F1 5 0 R >> >>"
        objs[first + i] = (b"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources %s /Length %d >>\n"
                           b"stream\n%s\nendstream" % (res, len(body), body))
    return pdf_from_objects(objs)


def pdf_from_objects(objs: dict[int, bytes], root: int = 1, broken_xref: bool = False) -> bytes:
    """A PDF file of numbered objects, with its cross-reference table (``broken_xref``: every
    offset and ``startxref`` a few bytes off, which MuPDF must repair)."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = {}
    for k in sorted(objs):
        offsets[k] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (k, objs[k])
    size = max(objs) + 1
    xref = len(out)
    off = 7 if broken_xref else 0
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for k in range(1, size):
        out += (b"%010d 00000 n \n" % (offsets[k] + off)) if k in offsets else b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, root, xref + (3 if broken_xref
                                                                                                   else 0))
    return bytes(out)


def tiff_claiming(width: int, height: int, bits: int = 1) -> bytes:
    """A little-endian TIFF whose one IFD claims ``width x height`` (one strip of zeros)."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, bits), (259, 3, 1, 1), (262, 3, 1, 0),
               (273, 4, 1, 0), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, 64)]
    ifd = 8
    data_at = ifd + 2 + 12 * len(entries) + 4
    entries[5] = (273, 4, 1, data_at)
    out = b"II*\x00" + struct.pack("<I", ifd) + struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        out += struct.pack("<HHII", tag, typ, count, value) if typ == 4 else struct.pack("<HHIHH", tag, typ, count,
                                                                                         value, 0)
    return out + struct.pack("<I", 0) + bytes(64)


def gif_claiming(width: int, height: int) -> bytes:
    """A GIF whose logical screen and first image claim ``width x height``."""
    head = b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return head + image + b"\x3b"


def bmp_claiming(width: int, height: int) -> bytes:
    """A 24-bit BMP header claiming ``width x height`` with a few bytes of pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + 16, 0, 0, 14 + len(info)) + info + bytes(16)


def webp_claiming(width: int, height: int) -> bytes:
    """A lossless WebP (VP8L) header claiming ``width x height``."""
    bits = (width - 1) | ((height - 1) << 14)
    chunk = b"\x2f" + struct.pack("<I", bits) + bytes(8)
    return b"RIFF" + struct.pack("<I", 4 + 8 + len(chunk)) + b"WEBP" + b"VP8L" + struct.pack("<I", len(chunk)) + chunk


def png_claiming(width: int, height: int) -> bytes:
    """A grey PNG header claiming ``width x height`` with one tiny IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
