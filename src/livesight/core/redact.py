"""Take secrets and terminal escapes out of text bound for a log, and shorten long blobs.

`core.logs` runs every log record through `redact` (message, exception text, `extra` values), whatever
logger made it (uvicorn prints request paths with `?access_token=`, httpx prints upstream URLs with
`user:password@`, exceptions quote URLs and headers). Patterns, not call sites, so a new log line
cannot leak by forgetting to call something. What is removed:

- URL credentials: `scheme://user:pass@host` → `scheme://***@host` (the user part can be a token too);
- livesight API keys `ovs-…` and JWTs (`eyJ….….…`, our publish tokens) anywhere in the text;
- `Authorization`/`Cookie`/`X-Api-Key` header values, also as Python reprs (`'authorization': '…'`,
  `(b'authorization', b'…')`), and any `Bearer …`/`Basic …` credential;
- values of query parameters and `name=value`/`"name": "value"` pairs whose name ends in token, key,
  secret, password, passwd, pwd, signature or credential(s) (`access_token`, `api_key`, `client_secret`…);
- ANSI escape sequences and control characters but tab and newline (a log line is data, not terminal
  control).

Over-redacting is the accepted failure mode: a log line losing a harmless value is better than a
secret in a file that outlives the key. Runs of 160+ URL/base64 characters (LiveKit's 2,000-character
`join_request`, data URLs) are cut to their first 24 characters and a count.

Every pattern starts at a literal or has bounded repeats, so the cost stays linear in the text (an
unbounded name prefix made a 60 KB base64 data URL take seconds).
"""

from __future__ import annotations

import re

MASK = "***"
LONG_RUN = 160  # characters of one URL/base64 run before it is shortened
KEEP = 24  # characters of a shortened run that stay

# CSI (colours), OSC (titles, links) and other escapes, then any other control character but tab/newline
_ANSI = re.compile(
    r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f]"
)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30}://)[^/\s@?#\"'<>]{1,1024}@")
_OVS_KEY = re.compile(r"\bovs-[A-Za-z0-9_-]{4,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){0,2}")
_SCHEME_CREDENTIAL = re.compile(r"\b([Bb]earer|BEARER|Basic|BASIC|Digest)(\s+)[A-Za-z0-9._~+/=-]{4,}")
# `': '`, `', b'` (a tuple of bytes) and `="` need quotes; `: ` and `=` alone do not
_HEADER_SEP = r"(b?['\"]\s*[:=,]\s*b?['\"]?|\s*[:=]\s*['\"]?)"
_HEADER = re.compile(
    r"(?i)(\b(?:proxy-)?authorization|\bx-api-key|\bapi-key)" + _HEADER_SEP + r"((?:bearer|basic|digest|token)\s+)?"
    r"([^\s'\",;)}\]]+)"
)
_COOKIE = re.compile(r"(?i)(\b(?:set-)?cookie)" + _HEADER_SEP + r"([^'\"\r\n]+)")  # every pair, to the line's end
_SECRET_WORD = r"(?:token|key|secret|password|passwd|pwd|signature|credentials?)"  # noqa: S105 (a pattern)
_SECRET_NAME = r"[A-Za-z0-9_.-]{0,40}" + _SECRET_WORD
# name=value (query strings, kwargs reprs, `k=v` extras); the value ends at &, #, ;, space, quote or bracket.
# Anchored on the word before `=` (any prefix: access_token, X-Amz-Signature), never on the prefix: an
# unbounded name prefix made the search quadratic on long base64 runs.
_NAME_EQ = re.compile(rf"(?i)({_SECRET_WORD}=)(['\"]?)([^&#;\s'\",)}}\]]+)")
# "name": "value" / 'name': 'value' (JSON, dict reprs): needs the quotes, so prose like "token: expired" stays
_NAME_COLON = re.compile(rf"(?i)(['\"]{_SECRET_NAME}['\"]\s*:\s*)(['\"])([^\n]{{0,4096}}?)(\2)")
_LONG = re.compile(rf"[A-Za-z0-9+/_%=-]{{{LONG_RUN},}}")


def _shorten(match: re.Match[str]) -> str:
    run = match.group(0)
    return f"{run[:KEEP]}…(+{len(run) - KEEP} chars)"


def redact(text: str) -> str:
    """`text` without secrets, terminal escapes or long blobs (idempotent)."""
    if not text:
        return text
    text = _ANSI.sub("", text)
    text = _URL_USERINFO.sub(rf"\1{MASK}@", text)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{MASK}", text)
    text = _COOKIE.sub(rf"\1\2{MASK}", text)
    text = _SCHEME_CREDENTIAL.sub(rf"\1\2{MASK}", text)
    text = _NAME_EQ.sub(rf"\1\2{MASK}", text)
    text = _NAME_COLON.sub(rf"\1\2{MASK}\4", text)
    text = _OVS_KEY.sub(f"ovs-{MASK}", text)
    text = _JWT.sub(f"eyJ{MASK}", text)
    return _LONG.sub(_shorten, text)


def is_secret_name(name: str) -> bool:
    """A field whose name says it holds a secret (an `extra` key, a settings field)."""
    return re.fullmatch(rf"(?i){_SECRET_NAME}|authorization|cookie", name) is not None
