"""Cassettes: how recorded HTTP traffic is stored, matched and explained.

* Format: JSON, bodies stored *decoded* (a JSON body as a JSON value under ``"json"``, a
  multipart upload part by part, JSON Lines line by line, anything else as text; see
  :mod:`.bodies`), lists of numbers and strings on one line: readable in review and
  compact.
* Matching: method, path (host and port are ignored: the local server's port changes
  every run) and the canonical body (JSON keys sorted; a multipart upload by its decoded
  parts, never its random boundary). Identical requests (a batch's repeated status polls)
  are played back once each, in recorded order. Each body is canonicalised once,
  and recorded interactions are indexed by that key: a lookup runs vcrpy's matchers only on
  the interactions with the same key instead of on every interaction of the cassette
  (vcrpy alone costs O(n) matcher calls per request, O(n^2) for a replayed cassette).
* Secrets: authorization / api-key / organization / project headers and cookies are
  dropped from requests and responses; of the remaining headers only ``content-type`` is
  kept. Every body is checked for key-shaped strings before it is written.
* Writes are atomic (temporary file, then rename): parallel workers never leave a torn
  file.
* A cassette that cannot be read raises :class:`CassetteCorruptError` (which file, where
  it is broken) instead of vcrpy's default of treating it as empty.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from ..errors import LogprobEvalError
from ..redact import KEY_PATTERN, SECRET_HEADERS
from .bodies import BOUNDARY, canonical, decode_body, encode_body, structured
from .cassette_reader import read_interactions

__all__ = [
    "SERIALIZER",
    "CassetteCorruptError",
    "CassetteMissError",
    "NoCassetteError",
    "RecordingFailedError",
    "body_key",
    "explain_miss",
    "make_vcr",
    "use_cassette",
]

SERIALIZER = "logprob-eval-json"
_KEEP_HEADERS = {"content-type"}


class CassetteCorruptError(LogprobEvalError):
    """A cassette file exists but is not a readable recording (truncated, invalid JSON,
    wrong structure). ``path`` is the file, ``where`` the position of the damage."""

    def __init__(self, message: str, *, path: str = "", where: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.where = where


class NoCassetteError(LogprobEvalError):
    """A case has no recording and may not record now (the plugin skips it)."""


class CassetteMissError(LogprobEvalError):
    """A request of a case has no recording: the cassette is stale (the plugin fails it;
    ``cassette`` names it and ``case`` is its case, for the run's closing line)."""

    def __init__(self, *args: Any, case: Any = None, cassette: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.case = case
        self.cassette = cassette


class RecordingFailedError(LogprobEvalError):
    """Recording a case failed; its committed cassette, if any, was left unchanged."""


def _damage(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"line {exc.lineno} column {exc.colno}: {exc.msg}"
    if isinstance(exc, KeyError):
        return f"a recorded interaction lacks the field {exc.args[0]!r}"
    return f"{type(exc).__name__}: {exc}"


# -- serializer ---------------------------------------------------------------------------


def _dump(obj: Any, indent: int = 0) -> str:
    """JSON with objects broken over lines and lists of scalars kept on one line."""
    pad = " " * indent
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [
            f"{pad} {json.dumps(k, ensure_ascii=False)}: {_dump(v, indent + 1)}"
            for k, v in obj.items()
        ]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(obj, list) and any(isinstance(v, dict | list) for v in obj):
        items = [f"{pad} {_dump(v, indent + 1)}" for v in obj]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class JsonSerializer:
    """vcrpy serializer module interface: ``serialize(dict) -> str``, ``deserialize``."""

    @staticmethod
    def serialize(cassette: dict[str, Any]) -> str:
        out = {"version": cassette.get("version", 1), "interactions": []}
        for it in cassette.get("interactions", []):
            req, resp = dict(it["request"]), dict(it["response"])
            req["body"] = decode_body(req.get("body"))
            if "multipart" in req["body"]:  # stored re-encoded with a fixed boundary
                req["headers"] = {
                    **req.get("headers", {}),
                    "content-type": [f"multipart/form-data; boundary={BOUNDARY}"],
                }
            body = resp.get("body") or {}
            resp["body"] = decode_body(body.get("string") if isinstance(body, dict) else body)
            out["interactions"].append({"request": req, "response": resp})
        text = _dump(out) + "\n"
        leaked = KEY_PATTERN.search(text)
        if leaked:
            raise ValueError(
                "refusing to write a cassette holding a key-shaped string "
                f"({leaked.group(0)[:6]}...); scrub it first"
            )
        return text

    @staticmethod
    def deserialize(text: str) -> dict[str, Any]:
        data = json.loads(text)
        for it in data.get("interactions", []):
            it["request"]["body"] = encode_body(it["request"].get("body"))
            it["response"]["body"] = {"string": encode_body(it["response"].get("body"))}
        return data


def _load_compact(fh: TextIO) -> tuple[list[Any], list[Any]]:
    """vcrpy's (requests, responses) of a cassette, each interaction parsed and turned into
    vcrpy's form (bodies as bytes) before the next is read: the parsed tree of the whole
    file never exists (:mod:`.cassette_reader`)."""
    from vcr.request import Request
    from vcr.serializers.compat import convert_to_bytes

    requests, responses = [], []
    for it in read_interactions(fh):
        request, response = it["request"], it["response"]
        request["body"] = encode_body(request.get("body"))
        response["body"] = {"string": encode_body(response.get("body"))}
        requests.append(Request._from_dict(request))
        responses.append(convert_to_bytes(response))
    return requests, responses


class AtomicPersister:
    """vcrpy persister: read as usual, write to a temporary file and rename."""

    @classmethod
    def load_cassette(
        cls, cassette_path: str | os.PathLike[str], serializer: Any
    ) -> tuple[list[Any], list[Any]]:
        from vcr.persisters.filesystem import CassetteNotFoundError
        from vcr.serialize import deserialize

        path = Path(cassette_path)
        if not path.is_file():
            raise CassetteNotFoundError()
        try:
            if serializer is not JsonSerializer:
                return deserialize(path.read_text(encoding="utf-8"), serializer)  # type: ignore[no-any-return]
            with path.open(encoding="utf-8") as fh:
                return _load_compact(fh)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # not vcrpy's CassetteDecodeError: vcrpy would treat the file as empty and the
            # case would fail later as a "changed prompt"; say what is broken instead
            where = _damage(exc)
            raise CassetteCorruptError(
                f"cassette {path} is corrupt ({where})", path=str(path), where=where
            ) from None

    @staticmethod
    def save_cassette(
        cassette_path: str | os.PathLike[str], cassette_dict: dict[str, Any], serializer: Any
    ) -> None:
        from vcr.serialize import serialize

        path = Path(cassette_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = serialize(cassette_dict, serializer)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# -- matching ---------------------------------------------------------------------------------


def body_key(request: Any) -> str:
    """The canonical body of a request, computed once and kept on the request object."""
    cached = getattr(request, "_logprob_eval_body", None)
    if cached is not None:
        return str(cached)
    key = canonical(request.body)
    with contextlib.suppress(AttributeError):  # vcrpy requests accept attributes
        request._logprob_eval_body = key
    return key


def match_path(r1: Any, r2: Any) -> None:
    if urlsplit(r1.uri).path != urlsplit(r2.uri).path:
        raise AssertionError(f"path {urlsplit(r1.uri).path} != {urlsplit(r2.uri).path}")


def match_canonical_body(r1: Any, r2: Any) -> None:
    if body_key(r1) != body_key(r2):
        raise AssertionError("bodies differ")


def _scrub_request(request: Any) -> Any:
    for name in list(request.headers):
        if name.lower() not in _KEEP_HEADERS:
            del request.headers[name]
    return request


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers", {})
    response["headers"] = {k: v for k, v in headers.items() if k.lower() in _KEEP_HEADERS}
    return response


def make_vcr(cassette_dir: str | Path, record_mode: str) -> Any:
    """A configured ``vcr.VCR``."""
    import vcr

    v = vcr.VCR(
        cassette_library_dir=str(cassette_dir),
        record_mode=record_mode,
        serializer=SERIALIZER,
        match_on=("method", "logprob_eval_path", "logprob_eval_body"),
        filter_headers=list(SECRET_HEADERS),
        decode_compressed_response=True,
        before_record_request=_scrub_request,
        before_record_response=_scrub_response,
    )
    v.register_serializer(SERIALIZER, JsonSerializer)
    v.register_persister(AtomicPersister)
    v.register_matcher("logprob_eval_path", match_path)
    v.register_matcher("logprob_eval_body", match_canonical_body)
    return v


# -- explaining a miss ---------------------------------------------------------------------------


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(obj, list) and obj and all(isinstance(v, str | dict) for v in obj):
        out = {}
        for i, v in enumerate(obj):  # strings and objects by index (prompts, messages, lines)
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: obj}


def _words(value: Any) -> set[str]:
    return set(str(value).split())


def _recorded(stored: Any) -> Any:
    if isinstance(stored, dict):
        for kind in ("json", "multipart"):
            if kind in stored:
                return stored[kind]
    return None


def explain_miss(
    cassette_path: str | Path,
    request_body: str | bytes | None,
    *,
    method: str = "",
    uri: str = "",
) -> str:
    """What differs between an unmatched request and the closest recorded one."""
    path = Path(cassette_path)
    if not path.is_file():
        return f"there is no cassette {path}"
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))["interactions"]
    except (OSError, ValueError, KeyError):
        return f"the cassette {path} cannot be read"
    value = structured(request_body)
    if value is None:
        return _explain_bodiless(recorded, method, uri)
    new = _flatten(value)
    best: tuple[int, int] | None = None
    new_words: dict[str, set[str]] = {}
    for it in recorded:
        old = _flatten(_recorded(it["request"].get("body")) or {})
        diffs = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        if best is not None and len(diffs) > best[0]:
            continue
        # among requests that differ in as many fields, the closest is the one whose values
        # differ in the fewest words: a reworded template or label keeps the text's words,
        # so a miss is shown against the same text, not the cassette's first
        for k in diffs:
            if k not in new_words:
                new_words[k] = _words(new.get(k))
        distance = sum(len(_words(old.get(k)) ^ new_words[k]) for k in diffs)
        if best is None or (len(diffs), distance) < best:
            best = (len(diffs), distance)
            best_old, best_diffs = old, diffs
    if best is None:
        return f"the cassette {path} holds no interaction"
    lines = []
    for key in best_diffs[:3]:
        a, b = str(best_old.get(key, "<absent>")), str(new.get(key, "<absent>"))
        if len(a) + len(b) > 160:
            d = [
                ln
                for ln in difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=0)
                if ln[:1] in "+-" and ln[:3] not in ("+++", "---")
            ]
            lines.append(f"{key}: " + " | ".join(d[:4]))
        else:
            lines.append(f"{key}: recorded {a!r}, now {b!r}")
    more = f" (+{len(best_diffs) - 3} more fields)" if len(best_diffs) > 3 else ""
    return "closest recorded request differs in " + "; ".join(lines) + more


def _explain_bodiless(recorded: list[Any], method: str, uri: str) -> str:
    """A request without a JSON body (a GET) that has no recording left to play."""
    if not method:
        return "the request body is not JSON"
    where = urlsplit(uri).path
    same = sum(
        it["request"].get("method") == method
        and urlsplit(it["request"].get("uri", "")).path == where
        for it in recorded
    )
    if same:
        return (
            f"{method} {where} is recorded {same} time(s), all played already: this run "
            "sent it more often than the recording did"
        )
    return f"{method} {where} was never recorded"


# -- indexed lookups ------------------------------------------------------------------------


def _request_key(request: Any) -> tuple[str, str, str]:
    return (request.method, urlsplit(request.uri).path, body_key(request))


def _indexed_cassette_class() -> Any:
    from vcr.cassette import Cassette
    from vcr.matchers import requests_match
    from vcr.record_mode import RecordMode

    class IndexedCassette(Cassette):  # type: ignore[misc]
        """vcrpy's Cassette whose lookups go through an index of the recorded requests.

        vcrpy filters a request (a deep copy, then the header filters) before each of its
        lookups, three per replayed request, and each filtered copy's canonical body was
        computed anew: here a request is filtered once and its copy kept on it."""

        def can_play_response_for(self, request: Any) -> bool:
            # vcrpy's filters the request, then `in` filters that copy again
            return bool(
                request in self
                and self.record_mode != RecordMode.ALL
                and (self.rewound or self.allow_playback_repeats)
            )

        def _filtered(self, request: Any) -> Any:
            if "_lpe_filtered" not in request.__dict__:
                request.__dict__["_lpe_filtered"] = self._before_record_request(request)
            return request.__dict__["_lpe_filtered"]

        def _responses(self, request: Any) -> Any:
            request = self._filtered(request)
            if not request:
                return
            index: dict[tuple[str, str, str], list[int]] = self.__dict__.setdefault(
                "_lpe_index", {}
            )
            done = self.__dict__.get("_lpe_done", 0)
            for i in range(done, len(self.data)):  # recorded since the last lookup
                index.setdefault(_request_key(self.data[i][0]), []).append(i)
            self.__dict__["_lpe_done"] = len(self.data)
            for i in index.get(_request_key(request), ()):
                stored, response = self.data[i]
                if requests_match(request, stored, self._match_on):
                    yield i, response

    return IndexedCassette


def use_cassette(vcr_obj: Any, path: str) -> Any:
    """``vcr_obj.use_cassette(path)`` with indexed lookups (see the module docstring)."""
    import functools

    cls = _indexed_cassette_class()
    return cls.use_arg_getter(functools.partial(vcr_obj.get_merged_config, path=path))
