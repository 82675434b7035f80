"""`.env` files as python-dotenv reads them: quotes with inline comments, multi-line values,
${VAR} expansion; a bad line names its number, never a value."""

from __future__ import annotations

import pytest

from lambdaship.deploy.env import parse_env_file
from lambdaship.errors import ConfigError


def test_quotes_comments_multiline_and_expansion(tmp_path, monkeypatch):
    monkeypatch.setenv("FROM_HOST", "host-value")
    env = tmp_path / ".env"
    env.write_text(
        'A="bar" # note\n'
        "B='single # not a comment'\n"
        "C=plain # trailing comment\n"
        'export D="line one\nline two"\n'
        "E=${A}-suffix\n"
        "F=${FROM_HOST}\n"
        "G=${MISSING:-fallback}\n"
        "# a comment line\n\n"
        'H="escaped \\"quote\\""\n'
    )
    assert parse_env_file(env) == {
        "A": "bar", "B": "single # not a comment", "C": "plain", "D": "line one\nline two",
        "E": "bar-suffix", "F": "host-value", "G": "fallback", "H": 'escaped "quote"',
    }


def test_bad_line_names_the_line_not_the_value(tmp_path):
    env = tmp_path / ".env"
    env.write_text("GOOD=1\nthis is s3cr3t garbage\n")
    with pytest.raises(ConfigError) as info:
        parse_env_file(env)
    assert info.value.one_line() == f"{env}:2: not a NAME=value line; fix or remove the line"
    assert "s3cr3t" not in info.value.one_line()


def test_name_without_value_is_refused(tmp_path):
    env = tmp_path / ".env"
    env.write_text("A=1\nLONELY\n")
    with pytest.raises(ConfigError, match=r":2: not a NAME=value line"):
        parse_env_file(env)
