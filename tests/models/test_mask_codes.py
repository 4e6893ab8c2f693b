"""Mask codes: the hex of ``np.packbits`` of an arm mask, fixed length per catalog, round trips and errors."""

from __future__ import annotations

import re

import numpy as np
import numpy.testing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sendwise.models import Catalog
from sendwise.models.domain.catalog import MaskCodeError, decode_mask, encode_mask, mask_code_length


@st.composite
def masks(draw: st.DrawFn) -> np.ndarray:
    n_arms = draw(st.integers(1, 200))
    n_rows = draw(st.integers(0, 6))
    return draw(arrays(np.bool_, (n_rows, n_arms)))


@given(masks())
def test_codes_round_trip_bit_for_bit_at_a_fixed_length(mask: np.ndarray) -> None:
    n_arms = mask.shape[1]
    codes = encode_mask(mask, n_arms)
    assert isinstance(codes, list) and len(codes) == mask.shape[0]
    assert all(re.fullmatch(f"[0-9a-f]{{{mask_code_length(n_arms)}}}", code) for code in codes)
    back = decode_mask(codes, n_arms)
    assert back.dtype == np.bool_ and back.shape == mask.shape
    npt.assert_array_equal(back, mask)
    npt.assert_array_equal(decode_mask([c.upper() for c in codes], n_arms), mask)


@given(st.integers(1, 200).flatmap(lambda n: arrays(np.bool_, (n,))))
def test_one_mask_gives_one_code_and_decodes_to_one_row(mask: np.ndarray) -> None:
    code = encode_mask(mask, mask.size)
    assert isinstance(code, str)
    npt.assert_array_equal(decode_mask(code, mask.size), mask[None, :])


def test_catalog_codes_are_packbits_hex_of_its_arms() -> None:
    catalog = Catalog()
    mask = np.zeros(catalog.n_arms, dtype=np.bool_)
    mask[[0, catalog.arm("push", 19), catalog.null_arm]] = True
    code = catalog.encode_mask(mask)
    assert len(code) == 44 == mask_code_length(169)
    assert code == np.packbits(mask).tobytes().hex()
    assert code.startswith("80") and code.endswith("80")  # arm 0 is the first bit; the no-message arm (168) too
    npt.assert_array_equal(catalog.decode_mask([code, code]), np.vstack([mask, mask]))
    assert catalog.decode_mask([]).shape == (0, 169)


FULL = "ff" * 21 + "80"
INVALID_CODES = [
    pytest.param(["ab"], "`codes[0]` must have 44 hex digits (a mask of 169 arms); got 'ab'", id="short"),
    pytest.param([FULL, FULL + "00"], f"`codes[1]` must have 44 hex digits (a mask of 169 arms); got '{FULL}00'",
                 id="long"),
    pytest.param([FULL, "zz" + FULL[2:]], f"`codes[1]` must contain only the hex digits 0-9 and a-f; got "
                 f"'zz{FULL[2:]}'", id="not-hex"),
    pytest.param(["0 " + FULL[2:]], f"`codes[0]` must contain only the hex digits 0-9 and a-f; got '0 {FULL[2:]}'",
                 id="space"),
    pytest.param(["ff" * 22], "`codes[0]` must not set the last 7 bits (padding beyond the 169 arms); got "
                 f"'{'ff' * 22}'", id="padding-bit"),
    pytest.param([FULL, None], "`codes[1]` must be a string of hex digits; got None", id="not-a-string"),
]


@pytest.mark.parametrize("codes, msg", INVALID_CODES)
def test_decode_rejects_bad_codes(codes: list[str], msg: str) -> None:
    with pytest.raises(MaskCodeError, match=f"^{re.escape(msg)}$") as info:
        Catalog().decode_mask(codes)
    assert isinstance(info.value, ValueError) and info.value.value == codes[info.value.row]


INVALID_MASKS = [
    pytest.param(np.ones(169, dtype=np.int64), TypeError, "`mask` must be a bool array; got dtype int64", id="int"),
    pytest.param(np.ones((2, 168), dtype=np.bool_), ValueError,
                 "`mask` must have shape (n_rows, 169) or (169,); got (2, 168)", id="width"),
    pytest.param(np.ones((1, 1, 169), dtype=np.bool_), ValueError,
                 "`mask` must have shape (n_rows, 169) or (169,); got (1, 1, 169)", id="3-d"),
]


@pytest.mark.parametrize("mask, err, msg", INVALID_MASKS)
def test_encode_rejects_bad_masks(mask: np.ndarray, err: type[Exception], msg: str) -> None:
    with pytest.raises(err, match=f"^{re.escape(msg)}$"):
        Catalog().encode_mask(mask)
