"""theme.yaml: the landing pages' look, checked so nothing in it can break out of the page's CSS."""

from __future__ import annotations

import pytest

from leadflow.domain.definitions.models import ConfigProblem
from leadflow.domain.definitions.theme import Theme

pytestmark = pytest.mark.unit


def test_defaults_and_a_valid_theme():
    assert Theme().primary_color == "#3451d1"
    theme = Theme.model_validate({"brand": "Acme", "primary_color": "#AA3300", "font_family": "Inter, sans-serif"})
    assert theme.brand == "Acme" and theme.font_family == "Inter, sans-serif"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("primary_color", "red"),
        ("background_color", "#fff;} body{display:none"),
        ("font_family", "x;} *{color:red"),
        ("font_family", "</style><script>"),
        ("logo_url", "http://example.com/logo.png"),
        ("logo_url", 'https://example.com/a" onerror="x'),
    ],
)
def test_values_that_could_break_out_are_refused(field, value):
    with pytest.raises((ConfigProblem, Exception)) as refused:
        Theme.model_validate({field: value})
    assert field in str(refused.value)
