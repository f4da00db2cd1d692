from pathlib import Path

import pytest

from livesight.settings import ConfigError, load_settings


def test_defaults() -> None:
    s = load_settings(None)
    assert (s.port, s.stream_ttl_seconds, s.retention_seconds, s.tombstone_seconds) == (7880, 300, 600, 3600)
    assert s.max_active_streams_per_key == 20 and s.publish_token_ttl_seconds == 600


def test_precedence_arguments_over_env_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "livesight.toml"
    cfg.write_text(
        'port = 9000\nstream_ttl_seconds = 60\nhost = "0.0.0.0"\n[[models]]\nid = "m"\nbase_url = "http://x/v1"\n'
    )
    monkeypatch.setenv("LIVESIGHT_STREAM_TTL_SECONDS", "120")
    s = load_settings(cfg, host="127.0.0.2")
    assert s.port == 9000  # file
    assert s.stream_ttl_seconds == 120  # env beats file
    assert s.host == "127.0.0.2"  # argument beats both
    assert [m.id for m in s.models] == ["m"]
    monkeypatch.setenv("LIVESIGHT_CONFIG", str(cfg))
    assert load_settings(None).port == 9000


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("port = 'abc'", "port"),
        ("stream_ttl_seconds = 0", "stream_ttl_seconds"),
        ("no_such_setting = 1", "no_such_setting"),
        ("[[models]]\nbackend = 'openai'", "models.0.id"),
        ("this is not toml", "cannot read"),
        ("livekit_url = 'wss://lk.example'", "livekit_api_secret"),
        ("livekit_url = 'https://lk.example'\nlivekit_api_secret = 's'", "ws:// or wss://"),
        # extra_body is sent as JSON: a TOML date cannot be, so it is refused here, not at the first request
        ("[[models]]\nid = 'm'\nbase_url = 'http://x/v1'\nextra_body = { since = 2024-01-01 }", "extra_body.since"),
    ],
)
def test_invalid_config_is_a_clear_error(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert needle in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
