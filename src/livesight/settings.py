"""The one reader of environment variables and the config file.

Precedence: explicit arguments > `LIVESIGHT_*` environment variables > the TOML config file
(`--config PATH` or `LIVESIGHT_CONFIG`) > defaults.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from livesight.core.errors import ConfigError as ConfigError  # re-exported: the CLI and tests import it from here
from livesight.core.jsontypes import JsonObject
from livesight.core.outbound import OutboundPolicy, parse_networks

_config_file: ContextVar[Path | None] = ContextVar("livesight_config_file", default=None)


OnnxVariant = Literal["fp32", "fp16", "int8", "uint8", "quantized", "q4", "q4f16", "bnb4"]
BuiltinModel = Literal["livesight/ocr", "livesight/smolvlm-256m", "livesight/smolvlm-500m"]
BUILTIN_MODELS: tuple[BuiltinModel, ...] = ("livesight/ocr", "livesight/smolvlm-256m", "livesight/smolvlm-500m")


class ReplicaConfig(BaseModel):
    """One upstream replica of an `openai` model (`[[models.replicas]]`): the same model served elsewhere."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(
        min_length=1, description="OpenAI-compatible base URL of this replica, e.g. http://gpu2:8000/v1"
    )
    name: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="Shown in GET /models and the key streams are hashed on (default: the base URL's host:port); "
        "keep it stable, renaming a replica moves the streams hashed to it.",
    )
    api_key: str | None = Field(None, description="This replica's upstream key (default: the model's).")
    api_key_env: str | None = Field(None, description="Read this replica's key from this variable.")

    @property
    def label(self) -> str:
        """`name`, or the base URL's host:port (never its user info)."""
        if self.name:
            return self.name
        parts = urlsplit(self.base_url)
        host = parts.hostname or self.base_url
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{parts.port}" if parts.port else host


class ModelConfig(BaseModel):
    """One entry of `[[models]]`: a model id clients use, and the backend that serves it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, description="Model id clients send, case-sensitive.")
    backend: Literal["openai", "builtin", "transformers"] = "openai"
    base_url: str | None = Field(None, description="OpenAI-compatible base URL, e.g. http://gpu:8000/v1")
    replicas: list[ReplicaConfig] = Field(
        default_factory=list,
        description="openai: several upstreams serving this model (instead of base_url); the requests of one "
        "stream stick to one replica (rendezvous hashing on the stream id over the healthy ones).",
    )
    replica_down_s: float = Field(
        10.0,
        gt=0,
        description="replicas: how long a replica that failed (connection error, 5xx, failed probe) gets no "
        "requests while another is up; its streams move to their next replica meanwhile.",
    )
    upstream_model: str | None = Field(None, description="Model name sent upstream (default: id).")
    api_key: str | None = None
    api_key_env: str | None = Field(None, description="Read the upstream API key from this variable.")
    profile: Literal["vllm", "mp4", "frames"] = Field(
        "frames",
        description="How a segment is sent: vllm (JPEG frame-list video + fps metadata), mp4 (H.264 data URL), "
        "frames (one image part per frame, each after a text part with its stream time).",
    )
    image: bool = True
    video: bool = True
    max_frames: int = Field(32, ge=1, description="Most frames one video part may carry to this model.")
    max_images: int | None = Field(
        None,
        ge=1,
        description="Most image parts one request may send this model (e.g. vLLM's --limit-mm-per-prompt), "
        "counted as sent: a segment in the `frames` profile is one image per frame; unset = no limit.",
    )
    timeout_s: float = Field(120.0, gt=0, description="Upstream request timeout (connect, read, write, pool).")
    max_connections: int = Field(100, ge=1, description="Pooled HTTP connections to the upstream.")
    owned_by: str | None = None
    extra_body: JsonObject = Field(
        default_factory=dict, description="Fields merged into every upstream request body (request fields win)."
    )
    min_score: float = Field(0.9, ge=0, le=1, description="livesight/ocr: drop text read with a lower score.")
    # backend "transformers": a vision-language model run in this process (backends/vlm, docs/local-models.md)
    weights: str | None = Field(
        None,
        description="transformers: the Hugging Face model id whose weights are pulled into <data_dir>/models "
        "(e.g. HuggingFaceTB/SmolVLM-256M-Instruct), or the path of a directory that holds them.",
    )
    revision: str = Field("main", description="transformers: the branch, tag or commit of `weights` to pull.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="transformers: auto = CUDA when present.")
    runtime: Literal["auto", "transformers", "onnxruntime"] = Field(
        "auto",
        description="transformers: what runs the model. auto = onnxruntime on a CPU when the repository has "
        "the ONNX export (SmolVLM, SmolVLM2), transformers + torch otherwise (docs/local-models.md).",
    )
    onnx_variant: OnnxVariant = Field(
        "fp32",
        description="transformers, runtime onnxruntime: which precision of the ONNX export to pull and run "
        "(the hub's file suffix: q4 = onnx/*_q4.onnx).",
    )
    queue_limit: int = Field(
        2, ge=0, description="transformers: requests that may wait while one runs; more get 503 model_busy."
    )
    default_max_tokens: int = Field(256, ge=1, description="transformers: max_tokens when a request sets none.")
    max_output_tokens: int = Field(1024, ge=1, description="transformers: the most tokens one answer may have.")

    @model_validator(mode="after")
    def _one_upstream_form(self) -> ModelConfig:
        if self.replicas:
            if self.backend != "openai":
                raise ValueError(f"model {self.id!r}: replicas are for backend 'openai'")
            if self.base_url:
                raise ValueError(f"model {self.id!r}: set base_url or replicas, not both")
            labels = [r.label for r in self.replicas]
            if len(set(labels)) != len(labels):
                raise ValueError(
                    f"model {self.id!r}: two replicas are both named {_first_repeat(labels)!r}; give each a name"
                )
        return self


def _first_repeat(values: list[str]) -> str:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return ""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIVESIGHT_", extra="forbid", validate_default=True)

    # server
    host: str = "127.0.0.1"
    port: int = Field(7880, ge=0, le=65535)
    public_url: str | None = Field(
        None,
        description="ws(s)://host:port publishers should use; default: derived from the request's Host.",
    )
    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("livesight")))
    db_path: Path | None = Field(
        None, description="SQLite file for API keys and stream records; default <data_dir>/livesight.db"
    )
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    metrics_token: str | None = Field(
        None,
        description="Bearer token GET /metrics requires; unset: /metrics answers loopback clients only "
        "(docs/metrics.md)",
    )
    log_level: str = "info"
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="Log lines on stderr: auto = readable text on a terminal, JSON otherwise."
    )
    log_json: bool | None = Field(
        None, description="Deprecated (use log_format): true = json, false = text; when set it wins."
    )

    # connections (api/server.py; docs/architecture.md "Connection limits")
    http_keep_alive_timeout_s: int = Field(
        5, ge=1, description="Close a keep-alive connection that sends nothing this many seconds after a response."
    )
    http_header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Close a connection whose request headers are not complete this long after it opened "
        "(or after the first byte of its next request).",
    )
    http_max_connections: int = Field(
        1000,
        ge=1,
        description="Open HTTP connections (websockets not counted) past which requests get 503 server_busy "
        "(health checks and /rtc signalling excepted); lowered to fit half the open-file limit.",
    )
    http_backlog: int = Field(
        2048, ge=1, description="Connections the kernel queues before the server accepts them (listen backlog)."
    )

    # streams (CONTRACT §3)
    stream_ttl_seconds: int = Field(300, ge=1)
    tombstone_seconds: int = Field(3600, ge=0)
    max_tombstones: int = Field(
        10_000, ge=0, description="Most ended streams kept for GET (oldest forgotten first), besides tombstone_seconds"
    )
    persist_streams: bool = Field(
        True, description="Keep stream records in the SQLite store so a restart continues active streams"
    )
    max_active_streams_per_key: int = Field(20, ge=1)
    reaper_interval_ms: int = Field(200, ge=10, le=1000)

    # cluster (docs/scale-out.md): shared state in Redis; unset = one node, everything in this process
    redis_url: str | None = Field(
        None,
        description="Redis URL (redis://host:port/db, rediss://…, unix:///path.sock) of the state shared by "
        "livesight nodes; unset: a single node with in-process state",
    )
    node_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="This node's id in the cluster (default: the host name); unique per node",
    )
    owner_lease_ms: int = Field(
        6000,
        ge=500,
        description="How long a node's claim on its streams lasts unrenewed; a node that cannot renew stops "
        "serving them after it, and reaping waits this long after Redis comes back (the grace rule)",
    )
    cluster_tick_ms: int = Field(
        500, ge=50, le=5000, description="Period of heartbeats, claim renewals and the cluster-wide reaper"
    )
    cluster_secret: str | None = Field(
        None,
        min_length=16,
        description="Shared secret every node of a cluster sends on its internal port (forwarding to a stream's "
        "owner, remote frames); unset: no internal port, no placement on other nodes",
    )
    internal_host: str | None = Field(
        None, description="Address the internal (node-to-node) port binds; default: `host`"
    )
    internal_port: int = Field(7881, ge=0, le=65535, description="The internal (node-to-node) port; 0: any free port")
    internal_url: str | None = Field(
        None,
        description="http://host:port other nodes reach this node's internal port at; default: "
        "http://<internal_host>:<internal_port> (required when that host is a wildcard address)",
    )
    node_max_streams: int = Field(
        500, ge=1, description="Active streams this node takes before placement sends new ones elsewhere"
    )
    forward_timeout_s: float = Field(
        300.0, gt=0, description="How long a request forwarded to a stream's owner may take (chat included)"
    )
    admin_key_ids: list[str] = Field(
        default_factory=list,
        description="API key ids (`key_…`, from `livesight keys list`) allowed to call admin endpoints "
        "(GET /v1/cluster); empty: none is",
    )

    # LiveKit tokens and rooms
    livekit_api_key: str = "livesight"
    livekit_api_secret: str | None = Field(
        None, description="HS256 secret; default: generated once and kept in <data_dir>/livekit.secret"
    )
    livekit_url: str | None = Field(
        None,
        description="A LiveKit server (or cluster) you run, ws:// or wss://: publishers and viewers are sent "
        "there, and the stream's node joins each stream's room as a hidden subscriber (docs/ingest.md, 'Your "
        "LiveKit server'). Needs `livekit_api_key` and `livekit_api_secret` set to that server's. Unset: "
        "livesight's embedded endpoint.",
    )
    publish_token_ttl_seconds: int = Field(600, ge=10)

    # buffer (CONTRACT §4)
    retention_seconds: int = Field(600, ge=1)
    stream_buffer_mb: int = Field(
        512,
        ge=1,
        description="Bytes of stored video one stream may keep (WebRTC video is kept as its bitstream: 10 "
        "minutes at 2 Mbit/s are ~150 MB; see docs/frame-store.md).",
    )
    global_buffer_mb: int = Field(4096, ge=1, description="Bytes of stored video all streams together may keep.")

    # ingest
    frame_max_side: int = Field(1280, ge=16)
    jpeg_quality: int = Field(80, ge=1, le=100)
    decode_workers: int = Field(
        2, ge=1, description="Threads that decode stored frames on demand (and JPEG pulled-source frames)."
    )
    decode_queue_limit: int = Field(
        256,
        ge=1,
        description="Decode jobs (one per GOP a read touches) that may wait; a read past it gets 503 decoder_busy.",
    )
    decode_cache_mb: int = Field(64, ge=0, description="Recently read frames kept as JPEG, all streams together.")
    live_decode_warm_seconds: float = Field(
        10.0,
        ge=0,
        description="A stream whose newest frame was read keeps a decoder at its live edge this long, so the next "
        "read of the newest frame costs only its JPEG (0: never).",
    )
    ingest_udp_receive_buffer_kb: int = Field(
        2048,
        ge=0,
        description="Kernel receive buffer of each UDP socket WebRTC media arrives on (capped by "
        "net.core.rmem_max; 0: the kernel's default). Keyframe bursts overflow small ones.",
    )
    keyframe_interval_seconds: float = Field(
        2.0,
        gt=0,
        description="Ask WebRTC publishers for a keyframe (RTCP PLI) when the last one is this old: a read "
        "decodes from the keyframe before it, so this bounds the work of one read.",
    )
    ingest_v1: bool = Field(True, description="Serve LiveKit's /rtc/v1 (single peer connection) besides /rtc.")
    ingest_no_frame_timeout_seconds: float = Field(
        5.0, gt=0, description="Report a stream error when a published video track sends no frame this long."
    )
    ingest_remb_bps: int = Field(
        8_000_000, ge=0, description="Fixed bitrate estimate sent to publishers (0: aiortc's own estimator)."
    )
    source_allowed_hosts: list[str] | None = Field(
        None,
        description="Host names pulled rtsp/hls sources may name, on every hop (as written in the URL, checked "
        "before any lookup), in addition to the outbound address policy; unset = any name.",
    )
    source_max_failures: int = Field(
        5, ge=1, description="End a pulled source's stream (source_failed) after this many failed opens in a row."
    )

    # outbound connections made on a user's behalf (docs/outbound.md)
    outbound_allow_cidrs: list[str] | None = Field(
        None,
        description="When set, outbound connections may reach only these networks (CIDR). Loopback, link-local "
        "and other refused-by-default ranges need an entry inside them, e.g. 127.0.0.1/32. Unset: any address "
        "but the refused-by-default ones (private LAN ranges are allowed).",
    )
    outbound_deny_cidrs: list[str] = Field(
        default_factory=list, description="Networks (CIDR) outbound connections never reach, on top of the defaults."
    )
    source_file_dir: Path | None = Field(
        None, description="Directory that pulled `file` sources may read; file sources are refused when unset."
    )
    ingest_simulcast: Literal["top", "reject"] = Field(
        "top", description="Simulcast publishers: receive the top layer only, or refuse them."
    )

    # chat
    rate_limit_rps: float | None = Field(None, gt=0, description="Per-key requests/s on chat; off if unset.")
    max_segment_frames: int = Field(256, ge=1)
    max_request_frames: int | None = Field(
        None,
        ge=1,
        description="Most frames one chat request may send, all image and video parts together (a frame "
        "referenced by several parts counts each time); default: max_segment_frames.",
    )
    upstream_inflight_mb: int = Field(
        512,
        ge=1,
        description="Most MiB of request bodies being built or sent to upstream models at once (all requests); "
        "a request that would pass it waits up to upstream_inflight_wait_s, then gets 503 upstream_busy.",
    )
    upstream_inflight_wait_s: float = Field(
        2.0, ge=0, description="How long a request waits for room under upstream_inflight_mb before its 503."
    )
    models: list[ModelConfig] = Field(default_factory=list)
    builtin_models: list[BuiltinModel] = Field(
        default_factory=lambda: list(BUILTIN_MODELS),
        description="Built-in offline models served without configuration ([] for none).",
    )
    preload_builtin_models: bool = Field(
        True, description="Load built-in models in the background at startup (else on first use)."
    )
    model_probe_ttl_s: float = Field(5.0, ge=0, description="How long GET /models reuses a backend health probe.")

    # watches (docs/watches.md)
    max_active_watches_per_key: int = Field(
        20, ge=1, description="Most watches one key may have that have not ended (active or paused); more is 429."
    )
    persist_watches: bool = Field(
        True, description="Keep watches and their recent results in the SQLite store; a restart resumes them."
    )
    watch_max_concurrent_calls: int = Field(
        4,
        ge=1,
        description="Most model calls from watches in flight at once (all keys together), shared round-robin "
        "between keys; interactive /chat/completions requests go first.",
    )
    watch_results_kept: int = Field(1000, ge=1, description="Most recorded results kept per watch (oldest go first).")
    watch_results_max_age_s: int = Field(86_400, ge=1, description="Recorded results older than this are dropped.")
    watch_ended_retention_s: int = Field(
        86_400, ge=0, description="How long an ended watch (and its results) still answers GET before it is forgotten."
    )
    webhook_timeout_s: float = Field(10.0, gt=0, description="One webhook attempt fails after this long.")
    webhook_first_backoff_s: float = Field(1.0, gt=0, description="Wait before the first webhook retry (doubles).")
    webhook_max_backoff_s: float = Field(300.0, gt=0, description="Longest wait between webhook retries.")
    webhook_give_up_s: float = Field(
        86_400.0, gt=0, description="Stop retrying a webhook delivery this long after its first attempt."
    )

    # local engines found by themselves (backends/discovery.py, docs/local-models.md)
    discover_local_engines: bool = Field(
        True, description="List the vision models of an Ollama / llama.cpp server on this machine without config."
    )
    ollama_url: str | None = Field(
        "http://127.0.0.1:11434", description="Where to look for Ollama (its native API, not /v1); unset: never."
    )
    llamacpp_url: str | None = Field(
        "http://127.0.0.1:8080",
        description="Where to look for a llama.cpp llama-server; listed only when its /props reports vision.",
    )
    discovery_ttl_s: float = Field(
        30.0, ge=0, description="How long the list of discovered local models is reused before asking again."
    )

    # model weights (backends/weights.py, `livesight models pull`)
    auto_pull_models: bool = Field(
        True,
        description="Download an in-process model's weights on its first request (503 model_loading with the "
        "progress until they are in); false: only `livesight models pull` downloads.",
    )
    vlm_threads: int | None = Field(
        None,
        ge=1,
        description="Threads for in-process models (torch or onnxruntime); default: the CPU cores this process "
        "may use, less one "
        "(kept for video decode and the event loop).",
    )
    hf_endpoint: str = Field(
        "https://huggingface.co", description="Hugging Face Hub (or a mirror) that `livesight models pull` uses."
    )
    hf_token: str | None = Field(
        None,
        validation_alias=AliasChoices("LIVESIGHT_HF_TOKEN", "hf_token"),
        description="Bearer token for gated or private repositories; also read from HF_TOKEN.",
    )

    @field_validator("outbound_allow_cidrs", "outbound_deny_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            parse_networks(value)  # ValueError names the bad entry
        return value

    def outbound_policy(self, hosts: list[str] | None = None) -> OutboundPolicy:
        """The outbound-address policy (core/outbound.py) of this server, narrowed to `hosts` if given."""
        return OutboundPolicy.build(
            allow=self.outbound_allow_cidrs,
            deny=self.outbound_deny_cidrs,
            hosts=hosts,
            own_endpoints=[(self.host, self.port)],
        )

    @field_validator("livekit_url")
    @classmethod
    def _livekit_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("ws://", "wss://")):
            raise ValueError("livekit_url must be the LiveKit server's ws:// or wss:// URL")
        return value or None

    @model_validator(mode="after")
    def _livekit_server_keys(self) -> Settings:
        if self.livekit_url and not self.livekit_api_secret:
            raise ValueError(
                "livekit_url needs livekit_api_key and livekit_api_secret: the API key and secret of that LiveKit "
                "server (its tokens are signed with them)"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def effective_log_format(self) -> Literal["auto", "json", "text"]:
        if self.log_json is None:
            return self.log_format
        return "json" if self.log_json else "text"

    @property
    def resolved_db_path(self) -> Path:
        return self.db_path or self.data_dir / "livesight.db"


def load_settings(config: Path | str | None = None, **overrides: Any) -> Settings:
    """Settings from arguments, environment and an optional TOML file; ConfigError if invalid.

    `overrides` are Settings fields as raw values (pydantic validates them), hence untyped: the constructor
    types each of its parameters differently (one per field), and only a TypedDict copy of every field
    would say more."""
    path = Path(config) if config else None
    if path is None and os.environ.get("LIVESIGHT_CONFIG"):
        path = Path(os.environ["LIVESIGHT_CONFIG"])
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    token = _config_file.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        where = f" (config file {path})" if path else ""
        raise ConfigError("invalid settings" + where + ":\n" + "\n".join(lines)) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    finally:
        _config_file.reset(token)
