"""Behaviour of the GS1 layer: check digits, scans in every form a scanner gives, EPC URIs."""

import pytest

from hcnode.apps.drugs.gs1 import (
    Epc,
    GS1Error,
    Scan,
    check_sscc,
    gs1_date,
    gtin14,
    parse_epc,
    parse_scan,
    sgtin_uri,
    sscc_uri,
)

GS = "\x1d"
YEAR = 2026  # reference year for two-digit-year dates in these tests


# --------------------------------------------------------------------------- GTIN / SSCC


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("96385074", "00000096385074"),  # GTIN-8
        ("614141073467", "00614141073467"),  # GTIN-12 (UPC-A)
        ("9521568251204", "09521568251204"),  # GTIN-13
        ("09521568251204", "09521568251204"),  # GTIN-14
        ("10614141073464", "10614141073464"),  # GTIN-14 with indicator digit
    ],
)
def test_gtin_with_good_check_digit_is_normalised_to_14_digits(given, expected):
    assert gtin14(given) == expected


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ("09521568251205", "check digit"),
        ("96385075", "check digit"),
        ("0952156825120", "check digit"),
        ("123456789", "9 digits"),
        ("0952156825120A", "only the digits"),
        ("٠٩٥٢١٥٦٨٢٥١٢٠٤", "only the digits"),  # Arabic-Indic digits: isdecimal() but not GS1
        (" 9521568251204", "only the digits"),
        ("", "only the digits"),
        ("00000000000000", "all zeros"),
    ],
)
def test_bad_gtin_is_rejected_naming_the_problem(given, complaint):
    with pytest.raises(GS1Error, match=complaint):
        gtin14(given)


def test_gtin_of_wrong_type_is_rejected():
    with pytest.raises(GS1Error, match="must be a string"):
        gtin14(9521568251204)  # type: ignore[arg-type]


def test_sscc_with_good_check_digit_is_accepted():
    assert check_sscc("106141412345678908") == "106141412345678908"


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ("106141412345678909", "check digit"),
        ("10614141234567890", "17 digits"),
        ("10614141234567890X", "only the digits"),
    ],
)
def test_bad_sscc_is_rejected_naming_the_problem(given, complaint):
    with pytest.raises(GS1Error, match=complaint):
        check_sscc(given)


# --------------------------------------------------------------------------- dates


def test_gs1_date_day_00_means_last_day_of_month():
    assert gs1_date("260500", reference_year=YEAR) == "2026-05-31"
    assert gs1_date("280200", reference_year=YEAR) == "2028-02-29"  # leap year
    assert gs1_date("270200", reference_year=YEAR) == "2027-02-28"


def test_gs1_date_century_follows_sliding_window_around_reference_year():
    # GS1 General Specifications 7.12: 49 years back, 50 years ahead.
    assert gs1_date("760101", reference_year=2026) == "2076-01-01"
    assert gs1_date("770101", reference_year=2026) == "1977-01-01"
    assert gs1_date("770101", reference_year=2027) == "2077-01-01"
    assert gs1_date("010101", reference_year=2099) == "2101-01-01"


def test_gs1_date_does_not_depend_on_the_wall_clock():
    assert gs1_date("991231", reference_year=2000) == "1999-12-31"
    assert gs1_date("991231", reference_year=2060) == "2099-12-31"


@pytest.mark.parametrize(
    ("given", "complaint"), [("261301", "month 13"), ("260230", "no day 30"), ("2605", "6 digits")]
)
def test_bad_gs1_date_is_rejected(given, complaint):
    with pytest.raises(GS1Error, match=complaint):
        gs1_date(given, reference_year=YEAR)


# --------------------------------------------------------------------------- scans

EXPECTED = Scan(gtin="09521568251204", serial="1000001", lot="LOT42", expiry="2026-05-31")


@pytest.mark.parametrize(
    "text",
    [
        "(01)09521568251204(21)1000001(10)LOT42(17)260500",
        "(01) 09521568251204 (21) 1000001 (10) LOT42 (17) 260500",
        "(01)09521568251204(17)260500(10)LOT42(21)1000001",
        f"0109521568251204211000001{GS}10LOT42{GS}17260500",
        f"]d20109521568251204211000001{GS}10LOT42{GS}17260500",
        f"]d2{GS}0109521568251204211000001{GS}10LOT42{GS}17260500\r\n",
        f"]d2010952156825120417260500211000001{GS}10LOT42",  # fixed-length fields need no GS
        "https://id.gs1.org/01/09521568251204/10/LOT42/21/1000001?17=260500",
        "]d1https://example.com/01/09521568251204/10/LOT42/21/1000001?17=260500",
    ],
)
def test_scan_in_bracket_raw_and_digital_link_forms_gives_the_same_pack(text):
    assert parse_scan(text, reference_year=YEAR) == EXPECTED


def test_scan_without_lot_and_expiry_leaves_them_none():
    scan = parse_scan("(01)09521568251204(21)X", reference_year=YEAR)
    assert scan == Scan(gtin="09521568251204", serial="X", lot=None, expiry=None)


def test_scan_digital_link_with_gtin13_is_padded_to_14_digits():
    scan = parse_scan("https://id.gs1.org/01/9521568251204/21/X", reference_year=YEAR)
    assert scan.gtin == "09521568251204"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("(01)09521568251205(21)1", "check digit"),
        ("(21)1000001(10)LOT42", r"no GTIN \(AI 01\)"),
        ("(01)09521568251204(10)LOT42", r"no serial number \(AI 21\)"),
        ("(01)09521568251204(21)1(17)261301", r"AI \(17\)"),
        ("(01)09521568251204(21)1(17)260230", "no day 30"),
        ("(01)9521568251204(21)1", r"AI \(01\)"),  # AI 01 is always 14 digits
        ("(01)09521568251204(21)1(21)2", "twice"),
        ("]E00109521568251204", "not a GS1 symbology"),
        ("hello", "cannot read scan"),
        ("(99)", "cannot read scan"),
        ("", "empty"),
        ("(01)09521568251204(21)1" + "0" * 600, "at most"),
    ],
)
def test_bad_scan_is_rejected_naming_the_problem(text, complaint):
    with pytest.raises(GS1Error, match=complaint):
        parse_scan(text, reference_year=YEAR)


# --------------------------------------------------------------------------- EPC URIs


def test_sgtin_epc_urn_is_read_with_its_company_prefix_length():
    epc = parse_epc("urn:epc:id:sgtin:0614141.107346.2017")
    assert epc == Epc(kind="sgtin", gtin="10614141073464", serial="2017", company_prefix_len=7)
    assert epc.key == "https://id.gs1.org/01/10614141073464/21/2017"


def test_sscc_epc_urn_is_read_with_its_check_digit_computed():
    epc = parse_epc("urn:epc:id:sscc:0614141.1234567890")
    assert epc == Epc(kind="sscc", sscc="106141412345678908", company_prefix_len=7)
    assert epc.key == "https://id.gs1.org/00/106141412345678908"


def test_escaped_serial_in_epc_urn_is_unescaped():
    epc = parse_epc("urn:epc:id:sgtin:0614141.107346.A%2FB%25C")
    assert epc.serial == "A/B%C"
    assert epc.key == "https://id.gs1.org/01/10614141073464/21/A%2FB%25C"


@pytest.mark.parametrize("cpl", [6, 7, 8, 9, 10, 11, 12])
def test_sgtin_uri_round_trips_for_every_company_prefix_length(cpl):
    uri = sgtin_uri("10614141073464", "A/B", cpl)
    epc = parse_epc(uri)
    assert (epc.gtin, epc.serial, epc.company_prefix_len) == ("10614141073464", "A/B", cpl)


def test_sgtin_and_sscc_uri_write_the_published_forms():
    assert sgtin_uri("10614141073464", "2017", 7) == "urn:epc:id:sgtin:0614141.107346.2017"
    assert sscc_uri("106141412345678908", 7) == "urn:epc:id:sscc:0614141.1234567890"


def test_digital_link_sgtin_with_lot_and_expiry_is_read():
    epc = parse_epc(
        "https://id.gs1.org/01/09521568251204/10/L1/21/10?17=260500", reference_year=YEAR
    )
    assert epc == Epc(
        kind="sgtin", gtin="09521568251204", serial="10", lot="L1", expiry="2026-05-31"
    )


def test_digital_link_and_epc_urn_of_the_same_pack_have_the_same_key():
    urn = parse_epc("urn:epc:id:sgtin:0614141.107346.2017")
    dl = parse_epc("https://id.gs1.org/01/10614141073464/21/2017")
    custom_domain = parse_epc("https://brand.example.com/dl/01/10614141073464/21/2017?linkType=all")
    assert urn.key == dl.key == custom_domain.key


def test_digital_link_sscc_is_read():
    assert parse_epc("https://id.gs1.org/00/106141412345678908").sscc == "106141412345678908"


def test_digital_link_expiry_needs_a_reference_year():
    with pytest.raises(GS1Error, match="reference_year"):
        parse_epc("https://id.gs1.org/01/09521568251204/21/10?17=260500")


@pytest.mark.parametrize(
    ("uri", "complaint"),
    [
        ("urn:epc:id:sgtin:0614141.107346.a/b", "must escape"),
        ("urn:epc:id:sgtin:0614141.10734.1", "13 digits"),
        ("urn:epc:id:sgtin:06141.1073460.1", "6 to 12 digits"),
        ("urn:epc:id:sgtin:0614141.107346." + "1" * 21, "1 to 20 characters"),
        ("urn:epc:id:sgtin:0614141.107346", "must look like"),
        ("urn:epc:id:sscc:0614141.123456789", "17 digits"),
        ("urn:epc:id:sgln:0614141.07346.1234", "neither"),
        ("https://id.gs1.org/01/09521568251205/21/10", "check digit"),
        ("https://id.gs1.org/00/106141412345678909", "check digit"),
        ("https://id.gs1.org/01/09521568251204", "neither a serialized item"),
        ("https://id.gs1.org/414/0614141073467", "neither a serialized item"),
        ("https://id.gs1.org/01/09521568251204/21/10/10/lot", "qualifier"),
        ("ftp://id.gs1.org/00/106141412345678908", "neither"),
    ],
)
def test_bad_epc_is_rejected_naming_the_problem(uri, complaint):
    with pytest.raises(GS1Error, match=complaint):
        parse_epc(uri, reference_year=YEAR)
