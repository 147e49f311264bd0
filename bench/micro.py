"""Per-request costs of the sidecar's hot-path pieces, each timed alone (microseconds per call).

Uses the sidecar's own modules unchanged, with the same inputs one small GET gives them.
"""

from __future__ import annotations

import contextlib
import io
import json
import secrets
import time
from collections.abc import Callable

import structlog
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from multidict import CIMultiDict, CIMultiDictProxy

from sidecar.auth.model import SessionRecord, TokenSet
from sidecar.auth.seal import Sealer
from sidecar.auth.tokens import SessionRef
from sidecar.config import LogSettings
from sidecar.log import configure_logging
from sidecar.metrics import Metrics
from sidecar.proxy.headers import request_headers, response_headers
from sidecar.proxy.targets import has_dot_segment


def per_call_us(fn: Callable[[], object], n: int = 20000) -> float:
    for _ in range(min(n, 1000)):
        fn()
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def run() -> list[tuple[str, float]]:
    sealer = Sealer((secrets.token_urlsafe(32).encode(),))
    ref = SessionRef.new()
    record = SessionRecord(None, None, (), (), time.time(), time.time(), time.time())
    sealed_record = sealer.seal(
        json.dumps(record.to_dict()).encode(), secret=ref.secret, context=ref.key("s").encode()
    )
    tokens = TokenSet("a" * 900, "r" * 300, time.time() + 3600, ("read:jira-work",))
    sealed_tokens = sealer.seal(tokens.to_json(), secret=ref.secret, context=ref.key("t").encode())
    cookie = ref.cookie_value
    key = AESGCM(AESGCM.generate_key(bit_length=256))
    nonce = secrets.token_bytes(12)
    blob = key.encrypt(nonce, b"x" * 1200, b"ctx")
    incoming = CIMultiDictProxy(
        CIMultiDict(
            {
                "Host": "127.0.0.1:8080",
                "User-Agent": "Mozilla/5.0",
                "Accept": "application/json",
                "Accept-Language": "en",
                "Cookie": f"sidecar_session={cookie}",
                "Sec-Fetch-Mode": "cors",
                "Connection": "keep-alive",
            }
        )
    )
    upstream = CIMultiDictProxy(
        CIMultiDict(
            {
                "Server": "nginx",
                "Date": "Thu, 03 Dec 2026 14:00:00 GMT",
                "Content-Type": "application/json",
                "Content-Length": "600",
                "Connection": "keep-alive",
                "ETag": '"abc"',
                "Last-Modified": "x",
            }
        )
    )
    metrics = Metrics(with_process_collectors=False)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):  # the sidecar's lines are written to stdout as bound
        configure_logging(LogSettings(format="json", level="info"))
    log = structlog.get_logger("sidecar.access")

    def access_line() -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id="0123456789abcdef", route="jira")
        log.info("request", method="GET", path="/jira/x/rest/api/3/myself", status=200,
                 duration_ms=1.23)  # fmt: skip
        sink.seek(0)
        sink.truncate()

    def metric_calls() -> None:
        metrics.http_requests.labels("jira", "GET", "200").inc()
        metrics.http_duration.labels("jira").observe(0.002)
        metrics.upstream_requests.labels("jira", "200").inc()
        metrics.upstream_duration.labels("jira").observe(0.001)

    rows = [
        ("Sealer.open of the session record (HKDF + AES-GCM)",
         lambda: sealer.open(sealed_record, secret=ref.secret, context=ref.key("s").encode())),
        ("Sealer.open of the token pair (HKDF + AES-GCM)",
         lambda: sealer.open(sealed_tokens, secret=ref.secret, context=ref.key("t").encode())),
        ("  of which AES-GCM decrypt with a cached key", lambda: key.decrypt(nonce, blob, b"ctx")),
        ("SessionRef.parse(cookie)", lambda: SessionRef.parse(cookie)),
        ("SessionRecord.from_dict(json.loads(...))",
         lambda: SessionRecord.from_dict(json.loads(json.dumps(record.to_dict())))),
        ("request_headers + response_headers", lambda: (request_headers(incoming, "t" * 900, None),
                                                        response_headers(upstream))),
        ("has_dot_segment(path)", lambda: has_dot_segment("/jira/x/rest/api/3/myself")),
        ("access log line (structlog JSON, redaction)", access_line),
        ("4 prometheus label().inc()/observe()", metric_calls),
    ]  # fmt: skip
    return [(name, per_call_us(fn, 5000)) for name, fn in rows]


def main() -> None:
    for name, us in run():
        print(f"    {us:8.1f} us  {name}")


if __name__ == "__main__":
    main()
