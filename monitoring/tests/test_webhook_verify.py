"""A webhook receiver's check (monitoring.notify.verify_webhook) refuses, never raises, on
headers in other scripts' digits or characters."""

from __future__ import annotations

import time

import pytest

from monitoring.notify import sign, verify_webhook

SECRET = "webhook-secret-for-tests"
BODY = b'{"event": "firing"}'


def _to(digits: str, text: str) -> str:
    return text.translate(str.maketrans("0123456789", digits))


@pytest.mark.parametrize(
    "digits",
    [
        "٠١٢٣٤٥٦٧٨٩",  # Arabic-Indic: int() reads them, a second spelling of the same time
        "０１２３４５６７８９",  # fullwidth
        "⁰¹²³⁴⁵⁶⁷⁸⁹",  # superscripts: isdigit() is true, int() raises
    ],
)
def test_a_timestamp_in_other_digits_is_refused(digits):
    now = int(time.time())
    signature = sign(BODY, SECRET, now)
    assert verify_webhook(body=BODY, timestamp=str(now), signature=signature, secret=SECRET, now=now)
    assert not verify_webhook(body=BODY, timestamp=_to(digits, str(now)), signature=signature, secret=SECRET, now=now)


def test_a_signature_with_other_characters_is_refused():
    now = int(time.time())
    signature = sign(BODY, SECRET, now)
    forged = signature[:-1] + "é"
    assert not verify_webhook(body=BODY, timestamp=str(now), signature=forged, secret=SECRET, now=now)
