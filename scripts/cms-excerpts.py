#!/usr/bin/env python3
"""Regenerates data/cms/ (claimline's shipped CMS table excerpts) from the
CMS files in shared/cms (see that folder's README.md for where each came
from).

    python3 scripts/cms-excerpts.py [SHARED_CMS_DIR]

SHARED_CMS_DIR defaults to ../shared/cms relative to the repository root.
Standard library only. Writes, in data/cms/:

  PPRRVU2025_Oct.therapy-excerpt.csv                  (+ .provenance.md)
  PPRRVU2026_Jul_nonQPP.therapy-excerpt.csv           (+ .provenance.md)
  MCR_MUE_PractitionerServices_Eff_04-01-2026.therapy-excerpt.csv
                                                      (+ .provenance.md)
  ccipra-v323r0-therapy-subset-DERIVED.txt            (+ .provenance.md)
  README.md

Rules: rows are kept only for the codes of data/catalogue.json. Every kept
row of a CMS file is copied byte for byte except its DESCRIPTION cell (CPT
descriptors are AMA copyright), which is replaced by an empty cell; the
file's notice and header lines are copied byte for byte. The script checks
this itself (every column but DESCRIPTION of every kept row equals the
source's, parsed with the csv module) and stops on any difference. Output
is deterministic: running it twice gives the same bytes.
"""

import csv
import hashlib
import io
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "data", "cms")
CATALOGUE = os.path.join(REPO, "data", "catalogue.json")

# Where the shared files came from (copied from shared/cms/README.md).
SRC_PFS25 = "PPRRVU2025_Oct.csv"
SRC_PFS26 = "PPRRVU2026_Jul_nonQPP.therapy-excerpt.csv"
SRC_MUE = "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv"
SRC_PTP = "ptp_practitioner_v323_2026q4_therapy_subset_derived.csv"

OUT_PFS25 = "PPRRVU2025_Oct.therapy-excerpt.csv"
OUT_PFS26 = "PPRRVU2026_Jul_nonQPP.therapy-excerpt.csv"
OUT_MUE = "MCR_MUE_PractitionerServices_Eff_04-01-2026.therapy-excerpt.csv"
OUT_PTP = "ccipra-v323r0-therapy-subset-DERIVED.txt"

CREDENTIALDOMD = (
    "github.com/stormchaser-creator/CredentialDOMD "
    "`scripts/data/PPRRVU2026_Jul_nonQPP.csv` "
    "@ af55107fe7e4b96ea5dec0fa03d1cd36ff70a436"
)

# CMS's July 2026 (RVU26C) rows for the catalogue codes the shared excerpt
# lacks, read from CREDENTIALDOMD's PPRRVU2026_Jul_nonQPP.csv with the
# lookup tool read_file (repo stormchaser-creator/CredentialDOMD, that path,
# file id 60938976086, total_chars 2622166, pages of 16,000 characters):
# the page at offset 1604000 (next_offset 1620000) holds 92597 and
# 92609-92612; the page at offset 1744000 (next_offset 1760000) holds
# 97169-97172. Each is the only row of its code there (no -26/-TC rows).
# Copied character for character, except the DESCRIPTION cell (3rd),
# which is left empty here as everywhere in data/cms/. Sanity: for each,
# work + non-facility PE + MP = non-facility total and work + facility PE
# + MP = facility total (checked below).
ADDED_2026 = [
    # (code, read_file offset of the page it is on, row with DESCRIPTION emptied)
    ("92597", 1604000, "92597,,,A,,1.23,0.88,,0.88,NA,0.02,2.13,2.13,7,XXX,0.00,0.00,0.00,5,0,0,0,0,9,,33.4009,09,0,99,0.00,0.00,0.00"),
    ("92609", 1604000, "92609,,,A,,1.50,1.56,,1.56,NA,0.01,3.07,3.07,7,XXX,0.00,0.00,0.00,5,0,0,0,0,9,,33.4009,09,0,99,0.00,0.00,0.00"),
    ("92610", 1604000, "92610,,,A,,1.30,1.23,,0.42,,0.01,2.54,1.73,7,XXX,0.00,0.00,0.00,0,0,0,0,0,9,,33.4009,09,0,99,0.00,0.00,0.00"),
    ("92611", 1604000, "92611,,,A,,1.31,1.38,,1.38,NA,0.05,2.74,2.74,7,XXX,0.00,0.00,0.00,0,0,0,0,0,9,,33.4009,09,0,99,0.00,0.00,0.00"),
    ("92612", 1604000, "92612,,,A,,1.24,4.69,,0.33,,0.05,5.98,1.62,0,XXX,0.00,0.00,0.00,0,0,0,0,0,9,,33.4009,09,0,99,0.00,0.00,0.00"),
    ("97169", 1744000, "97169,,,N,,0.00,0.00,,0.00,,0.00,0.00,0.00,9,XXX,0.00,0.00,0.00,9,9,9,9,9,9,,33.4009,09,0,99,0.00,0.00,0.00"),
    ("97170", 1744000, "97170,,,N,,0.00,0.00,,0.00,,0.00,0.00,0.00,9,XXX,0.00,0.00,0.00,9,9,9,9,9,9,,33.4009,09,0,99,0.00,0.00,0.00"),
    ("97171", 1744000, "97171,,,N,,0.00,0.00,,0.00,,0.00,0.00,0.00,9,XXX,0.00,0.00,0.00,9,9,9,9,9,9,,33.4009,09,0,99,0.00,0.00,0.00"),
    ("97172", 1744000, "97172,,,N,,0.00,0.00,,0.00,,0.00,0.00,0.00,9,XXX,0.00,0.00,0.00,9,9,9,9,9,9,,33.4009,09,0,99,0.00,0.00,0.00"),
]
READ_FILE_ID_2026 = "60938976086"

# The PTP layout (the header lines 3-6 of CMS's own ccipra-v322r0-f1.TXT, kept verbatim in tests/fixtures/cms/ptp-layout/ccipra-v322r0-f1.excerpt.txt).
PTP_COPYRIGHT = (
    "CPT codes and descriptions only are copyright American Medical "
    "Association. All rights reserved. DERIVED FILE: not CMS's; see the "
    ".provenance.md beside it."
)
PTP_TITLE = "Column1/Column2 Edits"
PTP_HEADER = [
    "Column 1\tColumn 2\t*=in existence\tEffective\tDeletion\tModifier\tPTP Edit Rationale",
    "\t\tprior to 1996\tDate\tDate\t0=not allowed\t",
    "\t\t\t\t*=no data\t1=allowed\t",
    "\t\t\t\t\t9=not applicable\t",
]
PTP_RATIONALE = "not in source (derived from a third-party rewrite)"
# PriorPath's list (shared/cms/README.md): the therapy codes it covers.
PRIORPATH_THERAPY = ["97110", "97112", "97116", "97140", "97161", "97162",
                     "97163", "97530", "97597", "97598"]


def fail(msg):
    sys.exit("cms-excerpts.py: " + msg)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def catalogue_codes():
    with open(CATALOGUE, encoding="utf-8") as f:
        codes = [e["code"] for e in json.load(f)["codes"]]
    if len(codes) != len(set(codes)):
        fail("duplicate codes in data/catalogue.json")
    return codes


# ---- byte-exact CSV records ------------------------------------------------

def records(data):
    """The file's CSV records as raw bytes, each with its line end (a line
    break inside a quoted cell stays inside its record)."""
    out, start, quoted = [], 0, False
    for i, b in enumerate(data):
        if b == 0x22:  # "
            quoted = not quoted
        elif b == 0x0A and not quoted:
            out.append(data[start:i + 1])
            start = i + 1
    if start < len(data):
        out.append(data[start:])
    return out


def body(rec):
    """The record without its line end."""
    if rec.endswith(b"\r\n"):
        return rec[:-2]
    if rec.endswith(b"\n"):
        return rec[:-1]
    return rec


def cell_spans(rec):
    """(start, end) of each cell of the record, quotes included."""
    b = body(rec)
    spans, start, quoted = [], 0, False
    for i, c in enumerate(b):
        if c == 0x22:
            quoted = not quoted
        elif c == 0x2C and not quoted:
            spans.append((start, i))
            start = i + 1
    spans.append((start, len(b)))
    return spans


def parse(rec):
    """The record's cells, as the csv module reads them (Latin-1: one
    character per byte)."""
    rows = list(csv.reader(io.StringIO(rec.decode("latin-1"), newline="")))
    if len(rows) != 1:
        fail("a record did not parse as one CSV row: %r" % rec[:60])
    return rows[0]


def without_description(rec, column=2):
    """The record with its DESCRIPTION cell (3rd) replaced by an empty
    cell; every other byte unchanged."""
    s, e = cell_spans(rec)[column]
    return rec[:s] + rec[e:]


def check_row(out_rec, src_rec, description_emptied=True):
    """(b): every column but DESCRIPTION equals the source's."""
    o, s = parse(out_rec), parse(src_rec)
    if len(o) != len(s):
        fail("column count differs for %s" % s[0])
    for i, (a, b) in enumerate(zip(o, s)):
        if description_emptied and i == 2:
            if a != "":
                fail("DESCRIPTION not emptied for %s" % s[0])
            continue
        if a != b:
            fail("column %d differs for %s: %r vs %r" % (i + 1, s[0], a, b))
    if not description_emptied and out_rec != src_rec:
        fail("row %s is not byte-identical" % s[0])
    # line end unchanged
    if out_rec[len(body(out_rec)):] != src_rec[len(body(src_rec)):]:
        fail("line end changed for %s" % s[0])


def first_cell(rec):
    return parse(rec)[0].strip()


def is_code(cell):
    return len(cell) == 5 and cell.isalnum()


# ---- the four files ---------------------------------------------------------

def pfs_excerpt(data, cat, header_lines=10):
    recs = records(data)
    header = recs[:header_lines]
    if parse(header[-1])[:3] != ["HCPCS", "MOD", "DESCRIPTION"]:
        fail("line %d of the PPRRVU file is not the HCPCS,MOD,DESCRIPTION header" % header_lines)
    kept = []
    for rec in recs[header_lines:]:
        if first_cell(rec) in cat:
            out = without_description(rec)
            check_row(out, rec)
            kept.append((rec, out))
    return header, kept, len(recs) - header_lines


def build_pfs25(src, cat):
    data = src[SRC_PFS25]
    header, kept, n = pfs_excerpt(data, cat)
    for rec, _ in kept:
        if not rec.endswith(b"\r\n"):
            fail("a kept PPRRVU2025 row does not end with CRLF")
    out = b"".join(header) + b"".join(o for _, o in kept)
    return out, {"rows": len(kept), "source_rows": n,
                 "codes": [first_cell(o) for _, o in kept]}


def row_sort_key(rec):
    cells = parse(rec)
    return (cells[0], cells[1])


def build_pfs26(src, cat):
    data = src[SRC_PFS26]
    if b"\r" in data:
        fail("the shared 2026 excerpt was expected with LF line ends")
    header, kept, n = pfs_excerpt(data, cat)
    rows = [o for _, o in kept]
    if [row_sort_key(r) for r in rows] != sorted(row_sort_key(r) for r in rows):
        fail("the shared 2026 excerpt is not in HCPCS order")
    present = {first_cell(r) for r in rows}
    added, shared_has = [], []
    width = len(parse(header[-1]))
    for code, offset, line in ADDED_2026:
        rec = (line + "\n").encode("ascii")
        cells = parse(rec)
        if cells[0] != code or cells[2] != "" or len(cells) != width:
            fail("ADDED_2026 row for %s is malformed" % code)
        if cells[25] != "33.4009":
            fail("ADDED_2026 row for %s: CONV FACTOR is not 33.4009" % code)
        work, pe_nf, pe_f, mp = (float(cells[i]) for i in (5, 6, 8, 10))
        if abs(work + pe_nf + mp - float(cells[11])) > 0.0051 or \
                abs(work + pe_f + mp - float(cells[12])) > 0.0051:
            fail("ADDED_2026 row for %s: totals do not add up" % code)
        if code not in cat:
            fail("ADDED_2026 code %s is not in the catalogue" % code)
        if code in present:
            # The shared excerpt has it now: it must agree, and it wins.
            shared = [r for r in rows if first_cell(r) == code]
            if shared != [rec]:
                fail("shared excerpt's row for %s differs from ADDED_2026" % code)
            shared_has.append(code)
            continue
        added.append((code, offset, rec))
    rows = sorted(rows + [r for _, _, r in added], key=row_sort_key)  # stable
    out = b"".join(header) + b"".join(rows)
    missing = [c for c in cat if c not in {first_cell(r) for r in rows}]
    return out, {"rows": len(rows), "from_shared": len(kept),
                 "source_rows": n, "added": added, "missing": missing,
                 "codes": [first_cell(r) for r in rows]}


def build_mue(src, cat):
    data = src[SRC_MUE]
    recs = records(data)
    first = next(i for i, r in enumerate(recs) if is_code(first_cell(r)))
    header = recs[:first]
    if parse(header[-1])[0] != "HCPCS/\nCPT Code":
        fail("the MUE header cell is not 'HCPCS/<LF>CPT Code'")
    kept = []
    for rec in recs[first:]:
        if first_cell(rec) in cat:
            check_row(rec, rec, description_emptied=False)
            kept.append(rec)
    out = b"".join(header) + b"".join(kept)
    return out, {"rows": len(kept), "source_rows": len(recs) - first,
                 "header_records": first,
                 "header_lines": b"".join(header).count(b"\n"),
                 "codes": [first_cell(r) for r in kept],
                 "missing": [c for c in cat if c not in {first_cell(r) for r in kept}]}


def yyyymmdd(iso):
    y, m, d = iso.split("-")
    if not (len(y) == 4 and len(m) == 2 and len(d) == 2 and (y + m + d).isdigit()):
        fail("not a YYYY-MM-DD date: %r" % iso)
    return y + m + d


def build_ptp(src, cat):
    text = src[SRC_PTP].decode("utf-8")
    lines = text.split("\n")
    if not lines[0].startswith("# source: DERIVED"):
        fail("the PTP subset's first line is not its '# source:' note")
    rows = list(csv.reader(io.StringIO("\n".join(lines[1:]), newline="")))
    if rows[0][:2] != ["Column 1", "Column 2"]:
        fail("unexpected PTP subset header")
    data = [r for r in rows[1:] if r]
    kept = []
    for r in data:
        if len(r) != 6:
            fail("PTP subset row with %d cells" % len(r))
        c1, c2, eff, dele, mi, _version = r
        if c1 in cat and c2 in cat:
            if mi not in ("0", "1", "9"):
                fail("modifier indicator %r" % mi)
            d = yyyymmdd(dele) if dele else "*"
            if d != "*" and d < yyyymmdd(eff):
                fail("deletion before effective date: %s/%s" % (c1, c2))
            kept.append([c1, c2, "", yyyymmdd(eff), d, mi, PTP_RATIONALE])
    out_lines = [PTP_COPYRIGHT, PTP_TITLE] + PTP_HEADER + ["\t".join(k) for k in kept]
    out = "".join(l + "\r\n" for l in out_lines).encode("ascii")
    subset_codes = sorted({c for r in data for c in r[:2]})
    return out, {"rows": len(kept), "source_rows": len(data), "kept": kept,
                 "codes_in_rows": sorted({c for k in kept for c in k[:2]}),
                 "subset_codes": subset_codes}


# ---- provenance -------------------------------------------------------------

CLAIMLINE_LOADER_NOTE = (
    "What the name alone would give `claimline rules import`: {how}. As a "
    "shipped table, src/cms/shipped.rs sets the dates above instead (an "
    "imported table of the same kind wins from its own start)."
)


def provenance(name, out, src_name, src, facts):
    return "\n".join(facts).format(
        name=name, out_sha=sha256(out), src_name=src_name,
        src_sha=sha256(src[src_name]), size=len(out),
    ) + "\n"


def prov_pfs25(out, src, info, cat):
    return provenance(OUT_PFS25, out, SRC_PFS25, src, [
        "# {name}: provenance",
        "",
        "- **CMS table**: Medicare Physician Fee Schedule national relative value file (PPRRVU), all codes, "
        "release **RVU25D** (\"2025 National Physician Fee Schedule Relative Value File October Release\", "
        "\"RELEASED 09/11/2025\"), conversion factor 32.3465 in every row.",
        "- **Source file**: shared/cms/`{src_name}` (sha256 `{src_sha}`), verbatim whole file as CMS publishes it "
        "(CRLF line ends, 10 notice and header lines, %d data rows), from github.com/alex-bea/cms_api "
        "`sample_data/rvu25d_0/PPRRVU2025_Oct.csv` @ 3261f4d9a97220b829d4efc64e7ffbcbab261aee "
        "(shared/cms/README.md)." % info["source_rows"],
        "- **This file**: `{name}`, {size} bytes, sha256 `{out_sha}`; regenerated by `scripts/cms-excerpts.py`.",
        "",
        "## What is verbatim, what was changed",
        "- Lines 1-10 (CMS's notice lines and the two header lines) are byte-for-byte the source's.",
        "- Rows filtered: only the data rows whose HCPCS (first cell) is one of the %d codes of "
        "`data/catalogue.json`, in the source's order: **%d rows**, one per catalogue code (the source has "
        "no modifier rows for them)." % (len(cat), info["rows"]),
        "- In each kept row the **DESCRIPTION cell (3rd column) is emptied** (CPT descriptors are AMA "
        "copyright); every other byte of the row, its CRLF included, is the source's. The script checks "
        "this for every row (csv-parsed, every column but the 3rd equal) and stops otherwise.",
        "- Nothing else: no rows added, no values changed. The file ends after the last kept row's CRLF.",
        "",
        "## Dates of service claimline applies it to",
        "**2025-01-01 to 2025-12-31.** This is an approximation: RVU25D is the October 2025 release; "
        "the earlier 2025 releases (RVU25A, B, C) are not in reach (shared/cms/README.md, \"What these "
        "files do not tell\"), so the October values stand for the whole year.",
        "",
        CLAIMLINE_LOADER_NOTE.format(how="`PPRRVU2025_Oct` names release 2025D, in force from "
                                     "2025-10-01"),
    ])


def prov_pfs26(out, src, info, cat):
    added = info["added"]
    added_lines = [
        "  - `%s`: read_file id %s, page at offset %d" % (code, READ_FILE_ID_2026, off)
        for code, off, _ in added
    ]
    missing = info["missing"]
    return provenance(OUT_PFS26, out, SRC_PFS26, src, [
        "# {name}: provenance",
        "",
        "- **CMS table**: Medicare Physician Fee Schedule relative value file, non-QP "
        "(`PPRRVU2026_Jul_nonQPP.csv`), release **RVU26C** (\"2026 National Physician Fee Schedule Relative "
        "Value File July Release\", \"RELEASED 06/30/2026\"), conversion factor 33.4009 in every row.",
        "- **Source file**: shared/cms/`{src_name}` (sha256 `{src_sha}`): the 10 header lines and %d therapy "
        "rows of CMS's file, verbatim (LF line ends), the other ~17,000 rows left out, from %s (read through "
        "the lookup tools; shared/cms/README.md)." % (info["source_rows"], CREDENTIALDOMD),
        "- **This file**: `{name}`, {size} bytes, sha256 `{out_sha}`; regenerated by `scripts/cms-excerpts.py`.",
        "",
        "## What is verbatim, what was changed",
        "- Lines 1-10 (notice and header lines) are byte-for-byte the shared excerpt's.",
        "- Rows filtered to the %d catalogue codes of `data/catalogue.json`: %d of the shared excerpt's %d rows "
        "are kept, in its order, each byte-for-byte except the **DESCRIPTION cell (3rd column), emptied** "
        "(AMA copyright); the script checks every column but the 3rd against the source row and stops on a "
        "difference." % (len(cat), info["from_shared"], info["source_rows"]),
        "- **%d rows added** that the shared excerpt lacks, CMS's own RVU26C rows for them, read from the same "
        "file (%s) with the lookup tool `read_file` (repository stormchaser-creator/CredentialDOMD, path "
        "`scripts/data/PPRRVU2026_Jul_nonQPP.csv`, file id %s, total 2,622,166 characters, pages of 16,000 "
        "characters, LF line ends as stored):" % (len(added), CREDENTIALDOMD, READ_FILE_ID_2026),
    ] + added_lines + [
        "  Each was copied character for character with its DESCRIPTION cell emptied, and inserted in HCPCS "
        "order (the file's own order). The rows are in `ADDED_2026` in the script; the read was done once, "
        "by hand, and is not repeated by the script. Check, done by the script: for each, work + PE + MP "
        "equals the non-facility and the facility totals. Checked at the time of reading: on the same pages, "
        "the rows of 97124, 97140, 97150, 97161-97168, 97530-97542 and 97750-97763 show the same work, PE and "
        "MP values as the shared excerpt, and the whole lines of 97161 and 97530 are identical to its lines "
        "(so the shared excerpt and these rows are the same file). 97169-97172 (athletic "
        "trainer evaluations) have status N (not covered by Medicare) and zero RVUs, as in 2025.",
        "- Total: **%d data rows**. Catalogue codes without a row: %s." % (
            info["rows"], ", ".join(missing) if missing else "none"),
        "",
        "## Dates of service claimline applies it to",
        "**2026-01-01 to 2026-12-31.** This is an approximation: RVU26C is the July 2026 release; the "
        "January (RVU26A) and April (RVU26B) releases are not in reach (shared/cms/README.md), so the July "
        "values stand for the whole year.",
        "",
        CLAIMLINE_LOADER_NOTE.format(how="`PPRRVU2026_Jul` names release 2026C, in force from 2026-07-01"),
    ])


def prov_mue(out, src, info, cat):
    return provenance(OUT_MUE, out, SRC_MUE, src, [
        "# {name}: provenance",
        "",
        "- **CMS table**: NCCI Medically Unlikely Edits, practitioner services, all codes, "
        "**effective 2026-04-01** (2026 Q2).",
        "- **Source file**: shared/cms/`{src_name}` (sha256 `{src_sha}`), verbatim whole file as CMS publishes it "
        "(a Latin-1 byte in the notice, a header cell with a line break; %d data rows), from "
        "github.com/Ramachandran-Kumar/mediaguard-ai `data/MCR_MUE_PractitionerServices_Eff_04-01-2026.csv` "
        "@ 19137298f5159b2424a679f22a576eb87c5a7955 (removed from that repo later; shared/cms/README.md)."
        % info["source_rows"],
        "- **This file**: `{name}`, {size} bytes, sha256 `{out_sha}`; regenerated by `scripts/cms-excerpts.py`.",
        "",
        "## What is verbatim, what was changed",
        "- Everything before the first data row (the quoted AMA notice, with its Latin-1 byte 0xAE, and the "
        "header row whose first cell `\"HCPCS/<LF>CPT Code\"` spans two lines: %d CSV records, %d lines) is "
        "byte-for-byte the source's. LF line ends, as in the source." % (info["header_records"], info["header_lines"]),
        "- Rows filtered to the codes of `data/catalogue.json`: **%d rows**, in the source's order, each "
        "byte-for-byte (this table has no DESCRIPTION column: nothing in a row is changed). Checked by the "
        "script, row by row." % info["rows"],
        "- Catalogue codes without a row in CMS's table: %s." % (", ".join(info["missing"]) or "none"),
        "",
        "## Dates of service claimline applies it to",
        "**From 2026-04-01 on**, until a later MUE table is imported. Earlier dates of service are not MUE-checked "
        "(no 2025 or 2026 Q1 MUE table is in reach). For Q3 and Q4 2026, shared/cms/README.md confirms the "
        "values equal Q2's only for the 19 codes of PriorPath's derived subset.",
        "",
        CLAIMLINE_LOADER_NOTE.format(how="`Eff_04-01-2026` names 2026Q2, in force from 2026-04-01 (the same)"),
    ])


def prov_ptp(out, src, info, cat):
    cat_set = set(cat)
    covered = [c for c in PRIORPATH_THERAPY if c in cat_set]
    not_cat = [c for c in PRIORPATH_THERAPY if c not in cat_set]
    uncovered = [c for c in cat if c not in covered]
    live = [k for k in info["kept"] if k[5] != "9"]
    return provenance(OUT_PTP, out, SRC_PTP, src, [
        "# {name}: provenance",
        "",
        "**DERIVED FILE, not CMS's.** It has the layout of CMS's NCCI practitioner PTP file, but its rows "
        "come from a third party's rewrite, and it covers only a few codes (see COVERAGE LIMIT).",
        "",
        "- **CMS table**: NCCI procedure-to-procedure edits, practitioner, **version 32.3 (2026 Q4, effective "
        "2026-10-01)**, CMS files ccipra-v323r0-f1.TXT ... f4.txt, as re-written by a third party.",
        "- **Source file**: shared/cms/`{src_name}` (sha256 `{src_sha}`), not verbatim: github.com/Ttheegela/PriorPath "
        "`data/reference/subset/ptp.csv` @ a31f679fffb1532dd7e7cbb5af3f0cc56b8a8bab, re-written by PriorPath "
        "(dates as YYYY-MM-DD, the rationale and pre-1996 flag dropped, a blank deletion date where CMS had `*`, "
        "only the first character of the modifier cell) and **limited to pairs where both codes are among "
        "PriorPath's 100 codes**; then cut further by whoever made the shared file (%d rows; its first line "
        "says how) (shared/cms/README.md)." % info["source_rows"],
        "- **This file**: `{name}`, {size} bytes, sha256 `{out_sha}`; regenerated by `scripts/cms-excerpts.py`.",
        "",
        "## How it was made",
        "- CRLF lines. Line 1 a copyright line written here (not CMS's): \"%s\"; line 2 \"%s\"; lines 3-6 the "
        "four header lines exactly as CMS's own ccipra-v322r0-f1.TXT has them (kept verbatim in tests/fixtures/cms/ptp-layout/ccipra-v322r0-f1.excerpt.txt)."
        % (PTP_COPYRIGHT, PTP_TITLE),
        "- Then one tab-separated row per source row where **both** Column 1 and Column 2 are codes of "
        "`data/catalogue.json`, in the source's order: **%d rows**. Columns: Column 1 and Column 2 as in the "
        "source; the prior-to-1996 cell **empty** (the source dropped it: whether CMS marks the edit `*` is "
        "not known); effective date rewritten YYYY-MM-DD to YYYYMMDD; deletion date likewise, or `*` where "
        "the source's is blank; the modifier indicator digit as in the source; as rationale the text \"%s\" "
        "(CMS's rationale is not in the source)." % (info["rows"], PTP_RATIONALE),
        "- Nothing is verbatim CMS text except what the third party kept (codes, dates, indicator digit).",
        "- Of the %d rows, %d have indicator 9 (CMS's way of recording an edit deleted the day it started: "
        "no edit); the others: %s." % (
            info["rows"], info["rows"] - len(live),
            "; ".join("%s/%s %s-%s indicator %s" % (k[0], k[1], k[3], k[4], k[5]) for k in live)),
        "",
        "## Codes",
        "- Catalogue codes that appear in the rows: %s." % " ".join(info["codes_in_rows"]),
        "- Therapy codes PriorPath's subset covers (shared/cms/README.md): %s; of these, catalogue codes: "
        "**%s** (%s not in the catalogue)." % (" ".join(PRIORPATH_THERAPY), " ".join(covered), " ".join(not_cat)),
        "",
        "## COVERAGE LIMIT",
        "PriorPath kept only pairs whose two codes are both in its own list of 100 codes. Of the therapy codes, "
        "that list holds 97110 97112 97116 97140 97161 97162 97163 97530 97597 97598 and the office E/M codes. "
        "**A pair with any other code (97150, 97164-97172, 97535, 97750, 97755, 97760-97763, 97012-97039, "
        "92507-92610, G0281, G0283, ...) is simply not in it: absence there is not evidence that CMS has no "
        "edit.** (shared/cms/README.md, verbatim.) So this file says something only about pairs of two of: "
        "%s. For every pair involving one of the other %d catalogue codes (%s) it says nothing: "
        "claimline must treat such a pair as not checked against CMS's table, never as \"no edit\"."
        % (" ".join(covered), len(uncovered), " ".join(uncovered)),
        "",
        "Within what it covers, shared/cms/README.md notes: v32.3 has no edit in force between 97530 and "
        "97110, 97112, 97116, 97140, 97161-97163; 97140/97530 was deleted on 2019-12-31; 97530/97116 on "
        "2019-12-31 (its 2020-10-01 reinstatement withdrawn: indicator 9); the evaluation/97140 edits of "
        "2020 likewise (indicator 9).",
        "",
        "## Dates of service claimline applies it to",
        "**Every date of service**: each row carries CMS's own effective and deletion dates, and an edit "
        "applies only between them. (This is the edit history as v32.3 records it in Q4 2026: an edit CMS "
        "later withdrew retroactively shows as indicator 9 here even if an earlier quarter's table had it.)",
        "",
        CLAIMLINE_LOADER_NOTE.format(how="`ccipra-v323r0` names 2026Q4, in force from 2026-10-01, and a "
                                     "PTP table replaces the whole PTP edit set of its dates"),
    ])


def readme(meta):
    rows = [
        ("`%s`" % OUT_PFS25, "PFS relative value file (PPRRVU), therapy rows", "RVU25D (Oct 2025, released 09/11/2025), CF 32.3465",
         "verbatim rows, DESCRIPTION emptied; %d rows" % meta[OUT_PFS25]["rows"],
         "2025-01-01 to 2025-12-31 (approximation: October release for the whole year)"),
        ("`%s`" % OUT_PFS26, "PFS relative value file, non-QP, therapy rows", "RVU26C (Jul 2026, released 06/30/2026), CF 33.4009",
         "verbatim rows, DESCRIPTION emptied; %d rows (%d of them read separately from the same CMS file, see provenance)"
         % (meta[OUT_PFS26]["rows"], len(meta[OUT_PFS26]["added"])),
         "2026-01-01 to 2026-12-31 (approximation: July release for the whole year)"),
        ("`%s`" % OUT_MUE, "NCCI practitioner services MUEs, therapy rows", "effective 2026-04-01 (2026 Q2)",
         "verbatim (notice, header and rows byte for byte); %d rows" % meta[OUT_MUE]["rows"],
         "from 2026-04-01 on, until a later MUE table is imported; earlier dates not MUE-checked"),
        ("`%s`" % OUT_PTP, "NCCI practitioner PTP edits, in CMS's layout", "v32.3 (2026 Q4)",
         "**derived** (third-party rewrite, both codes in a small code list; rationale and pre-1996 flag not in source); %d rows"
         % meta[OUT_PTP]["rows"],
         "every date (each row's own effective and deletion dates); **covers only pairs of %s**: other pairs are not checked, not \"no edit\""
         % " ".join(c for c in PRIORPATH_THERAPY if c in meta["cat"])),
    ]
    lines = [
        "# CMS tables shipped with claimline",
        "",
        "Excerpts of CMS's own billing tables, reduced to the codes of `data/catalogue.json`. Regenerate with "
        "`python3 scripts/cms-excerpts.py [path/to/shared/cms]` (default `../shared/cms` from the repository "
        "root); it checks each kept row against its source and is deterministic. CPT codes and descriptors are "
        "AMA copyright: the DESCRIPTION column is emptied everywhere; codes and numbers are CMS's.",
        "",
        "| file | CMS table | release | verbatim or derived | dates of service claimline applies it to | provenance |",
        "|---|---|---|---|---|---|",
    ]
    for f, t, r, v, d in rows:
        lines.append("| %s | %s | %s | %s | %s | `%s.provenance.md` |" % (f, t, r, v, d, f.strip("`")))
    # Copied as is (not generated here): CMS's own text of the 2026 KX
    # thresholds, which data/payers.json cites.
    lines.append("| `kx_threshold_2026_cms_therapy_page.csv` | KX and targeted medical review thresholds "
                 "(CMS \"Therapy Services\" page) | CY2026 | page text verbatim, amounts read from it | "
                 "calendar year 2026 (`data/payers.json`) | `kx_threshold_2026_cms_therapy_page.csv.provenance.md` |")
    lines += [
        "",
        "Each `.provenance.md` names the source file (repository, path, commit), its sha256 and the file's own, "
        "and exactly what was kept and changed.",
        "",
        "Not here: a 2025 MUE table, the January/April releases of either year's fee schedule, any whole PTP "
        "quarter (see shared/cms/README.md, \"What these files do not tell\").",
        "",
    ]
    return "\n".join(lines)


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(__doc__)
        return 0 if len(argv) == 2 else 2
    shared = argv[1] if len(argv) == 2 else os.path.join(REPO, "..", "shared", "cms")
    shared = os.path.normpath(shared)
    src = {}
    for name in (SRC_PFS25, SRC_PFS26, SRC_MUE, SRC_PTP):
        with open(os.path.join(shared, name), "rb") as f:
            src[name] = f.read()
    cat = catalogue_codes()
    cat_set = set(cat)

    outputs, meta = {}, {"cat": cat_set}
    for out_name, build, prov in (
        (OUT_PFS25, build_pfs25, prov_pfs25),
        (OUT_PFS26, build_pfs26, prov_pfs26),
        (OUT_MUE, build_mue, prov_mue),
        (OUT_PTP, build_ptp, prov_ptp),
    ):
        data, info = build(src, cat_set)
        meta[out_name] = info
        outputs[out_name] = data
        outputs[out_name + ".provenance.md"] = prov(data, src, info, cat).encode("utf-8")
    outputs["README.md"] = readme(meta).encode("utf-8")

    os.makedirs(OUT, exist_ok=True)
    for name, data in outputs.items():
        path = os.path.join(OUT, name)
        old = None
        if os.path.exists(path):
            with open(path, "rb") as f:
                old = f.read()
        if old != data:
            with open(path, "wb") as f:
                f.write(data)
        print("%s  %s  %s" % (sha256(data), "unchanged" if old == data else "written  ", name))
    for name in (OUT_PFS25, OUT_PFS26, OUT_MUE, OUT_PTP):
        print("%s: %d rows" % (name, meta[name]["rows"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
