"""GS1 identifiers for serialized medicines: GTIN, SSCC, SGTIN, scans and URIs.

This module owns the reading and checking of GS1 keys as they arrive from the
outside world: the text a scanner returns from a pack's DataMatrix (element
strings in bracket form or raw with group separators), EPC pure-identity URNs
(``urn:epc:id:sgtin:...``, ``urn:epc:id:sscc:...``) and GS1 Digital Link URIs
(``https://id.gs1.org/01/.../21/...``). Everything it returns is normalised:
GTINs as 14 digits, SSCCs as 18 digits, dates as ISO ``YYYY-MM-DD``, and one
canonical key per physical thing (:attr:`Epc.key`).

It is pure and deterministic: no I/O, no clock. It must not know about EPCIS
events, the ledger, transactions or the pharmacy verdict; those build on it.

Element-string and Digital Link parsing is delegated to ``biip`` (a maintained
GS1 library: it knows every Application Identifier's pattern and the
separator rules). One thing is deliberately *not* taken from biip: the century
of a two-digit year. GS1 General Specifications 7.12 resolves ``YY`` with a
sliding window around the *current* year and biip reads the wall clock for it,
so the same barcode could decode to a different date on a node replaying blocks
in another year. Here the caller passes ``reference_year`` (the block's year on
chain, today's year at the pharmacy counter) and :func:`gs1_date` applies the
same window to it.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote

from biip import ParseConfig, ParseError
from biip.checksums import gs1_standard_check_digit
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_element_strings import GS1ElementStrings
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin
from biip.sscc import Sscc

__all__ = [
    "Epc",
    "GS1Error",
    "Scan",
    "check_sscc",
    "gs1_date",
    "gtin14",
    "parse_epc",
    "parse_scan",
    "sgtin_uri",
    "sscc_uri",
]

GS = "\x1d"
"""ASCII group separator: what scanners emit for FNC1 between variable-length fields."""

MAX_SCAN_CHARS = 512
"""A GS1 DataMatrix on a pack carries well under this; longer input is not a scan."""

MAX_URI_CHARS = 2048

# Symbology identifiers (ISO/IEC 15424) that may prefix scanner output, with what they carry.
_ELEMENT_STRING_SYMBOLOGIES = frozenset({"]d2", "]C1", "]e0", "]Q3", "]J1"})
_DIGITAL_LINK_SYMBOLOGIES = frozenset({"]d1", "]Q1"})

_ASCII_DIGITS = re.compile(r"[0-9]+")
# GS1 AI encodable character set 82 (GS1 General Specifications 7.11, figure 7.11-1).
_CSET82 = re.compile(r"[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}")
# EPC Tag Data Standard: serials in pure-identity URNs use these characters,
# with the others of CSET 82 percent-escaped (upper-case hex).
_EPC_SERIAL = re.compile(r"(?:[A-Za-z0-9!'()*+,\-.:;=_]|%(?:22|25|26|2F|3C|3E|3F))+")
_EPC_ESCAPES = {'"': "%22", "%": "%25", "&": "%26", "/": "%2F", "<": "%3C", ">": "%3E", "?": "%3F"}
_SGTIN_URN = re.compile(r"urn:epc:id:sgtin:([0-9]+)\.([0-9]+)\.(.*)")
_SSCC_URN = re.compile(r"urn:epc:id:sscc:([0-9]+)\.([0-9]+)")

# biip must not check dates: its check resolves the century from the wall clock.
_BIIP_CONFIG = ParseConfig(gs1_element_strings_verify_date=False)


class GS1Error(ValueError):
    """A GS1 key, scan or URI that is malformed; the message says what and where."""


# --------------------------------------------------------------------------- keys


def _require_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise GS1Error(f"{what} must be a string, got {type(value).__name__}")
    return value


def gtin14(s: str) -> str:
    """Check a GTIN-8/12/13/14 and return it as 14 digits.

    Every GTIN is compared and stored as GTIN-14 so that the same product read
    from an EAN-13 and from a DataMatrix (01) is one key.
    """
    s = _require_str(s, "GTIN")
    if not _ASCII_DIGITS.fullmatch(s):
        raise GS1Error(f"GTIN {s!r} must contain only the digits 0-9")
    if len(s) not in (8, 12, 13, 14):
        raise GS1Error(f"GTIN {s!r} has {len(s)} digits; expected 8, 12, 13 or 14")
    if not s.strip("0"):
        raise GS1Error(f"GTIN {s!r} is all zeros, which is no GTIN")
    try:
        return Gtin.parse(s, config=_BIIP_CONFIG).as_gtin_14()
    except ParseError as exc:
        raise GS1Error(f"GTIN {s!r}: {exc}") from None


def check_sscc(s: str) -> str:
    """Check an SSCC (18 digits with check digit) and return it unchanged.

    An SSCC names one logistic unit (case, pallet); a wrong check digit means a
    misread or a forged label, never something to repair silently.
    """
    s = _require_str(s, "SSCC")
    if not _ASCII_DIGITS.fullmatch(s):
        raise GS1Error(f"SSCC {s!r} must contain only the digits 0-9")
    if len(s) != 18:
        raise GS1Error(f"SSCC {s!r} has {len(s)} digits; expected 18")
    try:
        Sscc.parse(s, config=_BIIP_CONFIG)
    except ParseError as exc:
        raise GS1Error(f"SSCC {s!r}: {exc}") from None
    return s


def _check_cset82(value: str, what: str) -> str:
    if not _CSET82.fullmatch(value):
        raise GS1Error(f"{what} {value!r} must be 1 to 20 characters of GS1 character set 82")
    return value


def gs1_date(yymmdd: str, *, reference_year: int) -> str:
    """Turn a GS1 ``YYMMDD`` date (AI 11-17) into ISO ``YYYY-MM-DD``.

    ``DD = 00`` means the last day of the month (GS1 General Specifications
    7.12). The century follows the specification's sliding window (49 years
    back, 50 ahead) around ``reference_year``, which the caller supplies so the
    answer never depends on when the code runs.
    """
    yymmdd = _require_str(yymmdd, "GS1 date")
    if not (len(yymmdd) == 6 and _ASCII_DIGITS.fullmatch(yymmdd)):
        raise GS1Error(f"GS1 date {yymmdd!r} must be 6 digits YYMMDD")
    if not (isinstance(reference_year, int) and 1 <= reference_year <= 9999):
        raise GS1Error(f"reference_year {reference_year!r} must be an int year")
    yy, mm, dd = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
    century = reference_year - reference_year % 100
    diff = yy - reference_year % 100
    if 51 <= diff <= 99:
        century -= 100
    elif -99 <= diff <= -50:
        century += 100
    year = century + yy
    if not 1 <= mm <= 12:
        raise GS1Error(f"GS1 date {yymmdd!r} has month {mm:02d}; expected 01-12")
    last = calendar.monthrange(year, mm)[1]
    if dd == 0:
        dd = last
    elif dd > last:
        raise GS1Error(f"GS1 date {yymmdd!r}: {year}-{mm:02d} has no day {dd:02d}")
    return f"{year:04d}-{mm:02d}-{dd:02d}"


# --------------------------------------------------------------------------- scans


@dataclass(frozen=True)
class Scan:
    """What a pharmacist's scanner read from a serialized pack."""

    gtin: str
    """GTIN-14."""
    serial: str
    lot: str | None
    expiry: str | None
    """ISO ``YYYY-MM-DD``."""


def _element_values(elements: GS1ElementStrings, source: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for es in elements:
        ai = es.ai.ai
        if ai in values and values[ai] != es.value:
            raise GS1Error(
                f"{source!r} gives AI ({ai}) twice with different values "
                f"{values[ai]!r} and {es.value!r}"
            )
        values[ai] = es.value
    return values


def parse_scan(text: str, *, reference_year: int) -> Scan:
    """Read a pack's scan: GTIN (01), serial (21), lot (10), expiry (17).

    Accepts what real scanners and people produce: bracketed human-readable
    form ``(01)...(21)...``, raw DataMatrix text with ASCII 29 group separators
    (with or without the ``]d2`` symbology identifier), or a GS1 Digital Link
    URI. A serialized pack must give both GTIN and serial, or there is nothing
    to verify. ``reference_year`` resolves the expiry's two-digit year.
    """
    text = _require_str(text, "scan")
    if len(text) > MAX_SCAN_CHARS:
        raise GS1Error(f"scan is {len(text)} characters; at most {MAX_SCAN_CHARS}")
    body = text.strip(" \t\r\n")
    symbology = None
    if body.startswith("]"):
        symbology = body[:3]
        if symbology not in _ELEMENT_STRING_SYMBOLOGIES | _DIGITAL_LINK_SYMBOLOGIES:
            raise GS1Error(
                f"scan {text!r} starts with symbology identifier {symbology!r}, "
                "which is not a GS1 symbology (expected e.g. ']d2' for GS1 DataMatrix)"
            )
        body = body[3:]
    body = body.lstrip(GS)  # some scanners pass the leading FNC1 through
    if not body:
        raise GS1Error(f"scan {text!r} is empty")
    try:
        if body.startswith(("http://", "https://")):
            elements = GS1DigitalLinkURI.parse(body, config=_BIIP_CONFIG).element_strings
        elif symbology in _DIGITAL_LINK_SYMBOLOGIES:
            raise GS1Error(f"scan {text!r}: symbology {symbology!r} should carry a URI")
        elif body.startswith("("):
            elements = GS1Message.parse_hri(body, config=_BIIP_CONFIG).element_strings
        else:
            elements = GS1Message.parse(body, config=_BIIP_CONFIG).element_strings
    except ParseError as exc:
        raise GS1Error(f"cannot read scan {text!r}: {exc}") from None
    values = _element_values(elements, text)
    if "01" not in values:
        raise GS1Error(f"scan {text!r} has no GTIN (AI 01)")
    if "21" not in values:
        raise GS1Error(f"scan {text!r} has no serial number (AI 21)")
    expiry = values.get("17")
    return Scan(
        gtin=gtin14(values["01"]),
        serial=_check_cset82(values["21"], "serial number (AI 21)"),
        lot=_check_cset82(values["10"], "lot (AI 10)") if "10" in values else None,
        expiry=gs1_date(expiry, reference_year=reference_year) if expiry else None,
    )


# --------------------------------------------------------------------------- EPCs


@dataclass(frozen=True)
class Epc:
    """One physical thing named in an EPCIS event: a serialized pack or a logistic unit.

    ``key`` is the one identity used everywhere in the ledger, whatever form
    (EPC URN, Digital Link on any domain, with or without lot) it arrived in.
    """

    kind: Literal["sgtin", "sscc"]
    gtin: str | None = None
    serial: str | None = None
    sscc: str | None = None
    lot: str | None = None
    expiry: str | None = None
    company_prefix_len: int | None = None
    """Known only from EPC URNs; needed to write one back."""

    @property
    def key(self) -> str:
        """Canonical GS1 Digital Link URI of the instance (no lot, no query)."""
        if self.kind == "sgtin":
            return f"https://id.gs1.org/01/{self.gtin}/21/{quote(self.serial or '', safe='')}"
        return f"https://id.gs1.org/00/{self.sscc}"


def _company_prefix_len(n: object) -> int:
    if not (isinstance(n, int) and not isinstance(n, bool) and 6 <= n <= 12):
        raise GS1Error(f"company prefix length {n!r} must be an int from 6 to 12")
    return n


def sgtin_uri(gtin: str, serial: str, company_prefix_len: int) -> str:
    """Write an SGTIN as an EPC pure-identity URN (EPC Tag Data Standard).

    The URN splits the GTIN at the company prefix, which the GTIN alone does
    not reveal, so the caller must say how long the prefix is.
    """
    g = gtin14(gtin)
    cpl = _company_prefix_len(company_prefix_len)
    serial = _check_cset82(_require_str(serial, "serial"), "serial")
    escaped = "".join(_EPC_ESCAPES.get(c, c) for c in serial)
    return f"urn:epc:id:sgtin:{g[1 : 1 + cpl]}.{g[0]}{g[1 + cpl : 13]}.{escaped}"


def sscc_uri(sscc: str, company_prefix_len: int) -> str:
    """Write an SSCC as an EPC pure-identity URN (EPC Tag Data Standard)."""
    s = check_sscc(sscc)
    cpl = _company_prefix_len(company_prefix_len)
    return f"urn:epc:id:sscc:{s[1 : 1 + cpl]}.{s[0]}{s[1 + cpl : 17]}"


def _parse_sgtin_urn(uri: str) -> Epc:
    m = _SGTIN_URN.fullmatch(uri)
    if not m:
        raise GS1Error(
            f"SGTIN URN {uri!r} must look like urn:epc:id:sgtin:CompanyPrefix.ItemRef.Serial"
        )
    cp, item, raw_serial = m.groups()
    if not 6 <= len(cp) <= 12:
        raise GS1Error(f"SGTIN URN {uri!r}: company prefix {cp!r} must have 6 to 12 digits")
    if len(cp) + len(item) != 13:
        raise GS1Error(
            f"SGTIN URN {uri!r}: company prefix and item reference must have 13 digits "
            f"together, got {len(cp) + len(item)}"
        )
    if not _EPC_SERIAL.fullmatch(raw_serial):
        raise GS1Error(
            f"SGTIN URN {uri!r}: serial {raw_serial!r} has characters an EPC URN must escape"
        )
    serial = _check_cset82(unquote(raw_serial), f"SGTIN URN {uri!r}: serial")
    payload = item[0] + cp + item[1:]
    return Epc(
        kind="sgtin",
        gtin=payload + str(gs1_standard_check_digit(payload)),
        serial=serial,
        company_prefix_len=len(cp),
    )


def _parse_sscc_urn(uri: str) -> Epc:
    m = _SSCC_URN.fullmatch(uri)
    if not m:
        raise GS1Error(f"SSCC URN {uri!r} must look like urn:epc:id:sscc:CompanyPrefix.SerialRef")
    cp, ref = m.groups()
    if not 6 <= len(cp) <= 12:
        raise GS1Error(f"SSCC URN {uri!r}: company prefix {cp!r} must have 6 to 12 digits")
    if len(cp) + len(ref) != 17:
        raise GS1Error(
            f"SSCC URN {uri!r}: company prefix and serial reference must have 17 digits "
            f"together, got {len(cp) + len(ref)}"
        )
    payload = ref[0] + cp + ref[1:]
    return Epc(
        kind="sscc",
        sscc=payload + str(gs1_standard_check_digit(payload)),
        company_prefix_len=len(cp),
    )


def _parse_digital_link(uri: str, reference_year: int | None) -> Epc:
    try:
        dl = GS1DigitalLinkURI.parse(uri, config=_BIIP_CONFIG)
    except ParseError as exc:
        raise GS1Error(f"Digital Link {uri!r}: {exc}") from None
    primary = dl.element_strings[0].ai.ai
    values = _element_values(dl.element_strings, uri)
    if primary == "00":
        return Epc(kind="sscc", sscc=check_sscc(values["00"]))
    if primary != "01" or "21" not in values:
        raise GS1Error(
            f"Digital Link {uri!r} names neither a serialized item (01 + 21) nor an SSCC (00)"
        )
    expiry = None
    if "17" in values:
        if reference_year is None:
            raise GS1Error(
                f"Digital Link {uri!r} has an expiry (17) with a two-digit year; "
                "reference_year is needed to read it"
            )
        expiry = gs1_date(values["17"], reference_year=reference_year)
    return Epc(
        kind="sgtin",
        gtin=gtin14(values["01"]),
        serial=_check_cset82(values["21"], f"Digital Link {uri!r}: serial (21)"),
        lot=_check_cset82(values["10"], f"Digital Link {uri!r}: lot (10)")
        if "10" in values
        else None,
        expiry=expiry,
    )


def parse_epc(uri: str, *, reference_year: int | None = None) -> Epc:
    """Read an SGTIN or SSCC given as EPC URN or GS1 Digital Link URI.

    EPCIS 2.0 allows both forms in ``epcList``/``childEPCs``/``parentID``; the
    ledger must see one identity for both. ``reference_year`` is needed only
    when a Digital Link carries an expiry ``?17=YYMMDD``.
    """
    uri = _require_str(uri, "EPC")
    if len(uri) > MAX_URI_CHARS:
        raise GS1Error(f"EPC URI is {len(uri)} characters; at most {MAX_URI_CHARS}")
    if uri.startswith("urn:epc:id:sgtin:"):
        return _parse_sgtin_urn(uri)
    if uri.startswith("urn:epc:id:sscc:"):
        return _parse_sscc_urn(uri)
    if uri.startswith(("https://", "http://")):
        return _parse_digital_link(uri, reference_year)
    raise GS1Error(
        f"EPC {uri!r} is neither an SGTIN/SSCC EPC URN (urn:epc:id:sgtin:..., "
        "urn:epc:id:sscc:...) nor a GS1 Digital Link URI (https://...)"
    )
