#!/usr/bin/env python3
"""Write the seed corpus of fuzz_png (tests/fuzz/corpus/png/): small PNGs of
each colour type and bit depth, one interlaced, one with tRNS, gAMA and
sBIT. Plain Python (zlib, struct); the Adam7 passes are laid out here.

    python3 tests/fuzz/make_png_seeds.py tests/fuzz/corpus/png
"""
import os
import struct
import sys
import zlib

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
         (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]  # x0, y0, dx, dy
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def chunk(kind, data):
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def pack_row(samples, depth):
    """One scanline with filter byte 0: samples packed MSB first / big-endian."""
    out = bytearray([0])
    if depth == 16:
        for v in samples:
            out += struct.pack(">H", v)
    elif depth == 8:
        out += bytes(samples)
    else:
        bits = "".join(format(v, "0%db" % depth) for v in samples)
        bits += "0" * (-len(bits) % 8)
        out += bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
    return out


def image_data(w, h, ct, depth, pix, interlace):
    nch = CHANNELS[ct]
    if not interlace:
        return b"".join(pack_row(pix[y * w * nch:(y + 1) * w * nch], depth) for y in range(h))
    out = b""
    for x0, y0, dx, dy in ADAM7:
        for y in range(y0, h, dy):
            row = []
            for x in range(x0, w, dx):
                row += pix[(y * w + x) * nch:(y * w + x + 1) * nch]
            if row:
                out += pack_row(row, depth)
    return out


def png(w, h, ct, depth, interlace=0, extra=b""):
    nch = CHANNELS[ct]
    top = (1 << depth) - 1 if ct != 3 else min(15, (1 << depth) - 1)
    pix = [(i * 37 + (i // 5) * 11) % (top + 1) for i in range(w * h * nch)]
    head = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ct, 0, 0, interlace))
    if ct == 3:
        head += chunk(b"PLTE", bytes((i * 53 + c * 90) % 256 for i in range(16) for c in range(3)))
    data = zlib.compress(image_data(w, h, ct, depth, pix, interlace), 9)
    return (b"\x89PNG\r\n\x1a\n" + head + extra + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seeds = {
        "gray1_9x5.png": png(9, 5, 0, 1),
        "gray4_adam7_11x9.png": png(11, 9, 0, 4, interlace=1),
        "gray16_6x4.png": png(6, 4, 0, 16),
        "rgb8_adam7_10x7.png": png(10, 7, 2, 8, interlace=1),
        "rgb16_5x3.png": png(5, 3, 2, 16),
        "pal2_trns_7x6.png": png(7, 6, 3, 2, extra=chunk(b"tRNS", bytes([0, 128]))),
        "pal8_gama_8x8.png": png(8, 8, 3, 8, extra=chunk(b"gAMA", struct.pack(">I", 45455))),
        "ga16_4x4.png": png(4, 4, 4, 16),
        "rgba8_sbit_6x5.png": png(6, 5, 6, 8, extra=chunk(b"sBIT", bytes([5, 6, 5, 8]))),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
