"""Unit tests for billingcenter.hessian._text (Java's UTF-16 view of text)."""

from __future__ import annotations

from billingcenter.hessian._text import cesu8, from_wire, to_units


class TestToUnits:
    """to_units: one Python character per UTF-16 unit."""

    def test_bmp_text_unchanged(self):
        """Text without non-BMP characters is returned as is."""
        text = "计费 héllo"
        assert to_units(text) is text

    def test_astral_character_split(self):
        """A non-BMP character becomes its high and low surrogate."""
        assert to_units("a😀") == "a\ud83d\ude00"


class TestCesu8:
    """cesu8: what Java's Hessian writers put on the wire."""

    def test_surrogates_are_three_bytes_each(self):
        """Each surrogate of a pair is encoded on its own in three bytes."""
        assert cesu8(to_units("😀")) == b"\xed\xa0\xbd\xed\xb8\x80"


class TestFromWire:
    """from_wire: bytes from Java back to Python text."""

    def test_pair_joined(self):
        """A CESU-8 surrogate pair becomes one character."""
        assert from_wire(b"\xed\xa0\xbd\xed\xb8\x80") == "😀"

    def test_four_byte_utf8(self):
        """Standard 4-byte UTF-8 is accepted too."""
        assert from_wire("😀".encode()) == "😀"

    def test_hangul_is_not_a_surrogate(self):
        """Characters whose UTF-8 starts with 0xed but are not surrogates stay as they are."""
        assert from_wire("퀀".encode()) == "퀀"
