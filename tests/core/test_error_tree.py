"""One error vocabulary: every exception class of ours is in core/errors.py, and every client-visible one
carries a status, type and code that api/errors.py renders in each envelope (CONTRACT §2)."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from collections.abc import Iterator
from typing import Any

import pytest

import livesight
from livesight.api import errors as api_errors
from livesight.core import errors
from livesight.core.errors import LivesightError, OperatorError

TYPES = {"validation_error", "stream_error", "provider_error", "upstream_error", "rate_limit_error", "internal_error"}
# Adapters that live next to the library they translate, inside the tree: a Starlette HTTPException.
ADAPTERS = {"livesight.api.errors._HTTPStatus"}


def all_modules() -> list[Any]:
    names = [m.name for m in pkgutil.walk_packages(livesight.__path__, "livesight.") if not m.name.endswith("__main__")]
    return [importlib.import_module(name) for name in names]


def our_exception_classes() -> Iterator[type[BaseException]]:
    for module in all_modules():
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                yield obj


def test_every_exception_class_of_ours_is_in_core_errors() -> None:
    outside = {
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in our_exception_classes()
        if cls.__module__ != errors.__name__ and f"{cls.__module__}.{cls.__qualname__}" not in ADAPTERS
    }
    assert not outside, f"exception classes outside livesight/core/errors.py: {sorted(outside)}"


def test_core_errors_has_two_roots() -> None:
    for _, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, BaseException) and cls.__module__ == errors.__name__:
            assert issubclass(cls, (LivesightError, OperatorError)), cls
            assert not issubclass(cls, LivesightError) or not issubclass(cls, OperatorError), cls


def client_error_classes() -> list[type[LivesightError]]:
    all_modules()  # every subclass defined anywhere is loaded
    found: list[type[LivesightError]] = []
    pending: list[type[LivesightError]] = [LivesightError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted({c for c in found if f"{c.__module__}.{c.__qualname__}" not in ADAPTERS}, key=lambda c: c.__name__)


def instance(cls: type[LivesightError]) -> LivesightError:
    kwargs: dict[str, Any] = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if param.kind is inspect.Parameter.KEYWORD_ONLY and param.default is inspect.Parameter.empty:
            kwargs[name] = {"stream_id": "s1", "provider": "gpu"}[name]
    if issubclass(cls, errors.UpstreamHTTPError):
        kwargs["upstream_status"] = 500
    return cls("a message safe to show", **kwargs)


CLASSES = client_error_classes()


def test_the_tree_holds_the_ingest_refusals() -> None:
    for cls in (errors.TokenRejected, errors.SignalError, errors.PublisherConflict, errors.PublisherUnauthorized):
        assert cls in CLASSES


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_each_client_error_has_status_type_code_and_renders_in_each_envelope(cls: type[LivesightError]) -> None:
    exc = instance(cls)
    status = exc.status_for_envelope()
    assert 400 <= status <= 599
    assert exc.type in TYPES
    assert exc.code_for_envelope() and exc.code_for_envelope() == exc.code_for_envelope().lower()

    chat = api_errors.error_response(exc, "/v1/chat/completions")
    assert chat.status_code == status
    error = json.loads(bytes(chat.body))["error"]
    assert (error["message"], error["type"], error["code"]) == (exc.message, exc.type, exc.code_for_envelope())

    detail = api_errors.error_response(exc, "/v1/models")
    body = json.loads(bytes(detail.body))
    if isinstance(exc, errors.StreamUnauthorized):  # never reveals another owner's stream
        assert (detail.status_code, body["detail"]) == (404, "stream s1 not found")
    else:
        assert (detail.status_code, body["detail"], body["message"]) == (status, exc.message, exc.message)

    rtc = api_errors.rtc_refusal_response(exc)
    assert (rtc.status_code, bytes(rtc.body).decode()) == (status, exc.message)
    assert rtc.headers["content-type"].startswith("text/plain")
