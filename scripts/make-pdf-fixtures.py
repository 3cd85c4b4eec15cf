#!/usr/bin/env python3
"""Writes the small PDF fixtures of the end-to-end tests (tests/fixtures/pdf/), by hand,
with no PDF library: a 3-page document with known text on known pages, and a truncated
copy of it. Run from the repository root: python3 scripts/make-pdf-fixtures.py"""

import pathlib

PAGES = [
    ["Cairn field guide", "", "Cairns mark trails above the tree line."],
    ["Building a cairn", "", "Stack flat stones with the widest at the bottom."],
    ["Winter travel", "", "Snow covered cairns guide the ptarmigan expedition home."],
]


def escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def content(lines):
    ops = ["BT", "/F1 12 Tf", "14 TL", "72 760 Td"]
    for line in lines:
        ops.append(f"({escape(line)}) Tj T*")
    ops.append("ET")
    return "\n".join(ops).encode("latin-1")


def pdf(pages, title):
    objs = {}
    n_pages = len(pages)
    # 1 catalog, 2 pages, 3 font, 4 info, then (page, content) pairs
    kids = [5 + 2 * i for i in range(n_pages)]
    objs[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objs[2] = (
        "<< /Type /Pages /Kids [%s] /Count %d /MediaBox [0 0 595 842] "
        "/Resources << /Font << /F1 3 0 R >> >> >>"
        % (" ".join(f"{k} 0 R" for k in kids), n_pages)
    ).encode()
    objs[3] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    objs[4] = f"<< /Title ({escape(title)}) /Producer (cairn fixture script) >>".encode()
    for i, lines in enumerate(pages):
        page, stream = kids[i], kids[i] + 1
        objs[page] = f"<< /Type /Page /Parent 2 0 R /Contents {stream} 0 R >>".encode()
        data = content(lines)
        objs[stream] = b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for num in sorted(objs):
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + objs[num] + b"\nendobj\n"
    xref = len(out)
    size = max(objs) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for num in range(1, size):
        out += b"%010d 00000 n \n" % offsets[num]
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def main():
    folder = pathlib.Path("tests/fixtures/pdf")
    folder.mkdir(parents=True, exist_ok=True)
    good = pdf(PAGES, "Cairn Field Guide")
    (folder / "field-guide.pdf").write_bytes(good)
    (folder / "broken.pdf").write_bytes(good[: len(good) // 3])


if __name__ == "__main__":
    main()
