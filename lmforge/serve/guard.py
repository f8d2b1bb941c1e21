"""What stands between the socket and the routes: the API key, the body limit, and the last catch.

A plain ASGI middleware rather than a `BaseHTTPMiddleware`, so that it sees the body as it arrives:

- the key is checked from the headers alone, before a byte of the body is read;
- a body is counted as it streams in, so a chunked upload (which has no Content-Length) is cut at
  the limit with a 413 instead of being buffered whole; the 413 closes the connection, since the
  rest of the body is never read;
- an exception no route handled becomes a 500 with OpenAI's error object *sent by this layer*:
  Starlette's own last handler re-raises after answering, and uvicorn then drops the keep-alive
  connection without `Connection: close`, which breaks the client's next request on it.
"""

import hmac
import json
import logging

from lmforge.serve.protocol import APIError

log = logging.getLogger("lmforge.serve")


class BodyTooLarge(APIError):
    def __init__(self, limit: int):
        super().__init__(413, f"request body over {limit} bytes", code="body_too_large")


class Guard:
    def __init__(self, app, api_key: str | None, max_body: int, metrics_public: bool = False):
        self.app, self.api_key, self.max_body = app, api_key, max_body
        self.keyed = ("/v1/",) if metrics_public else ("/v1/", "/metrics")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"")
        has_body = b"transfer-encoding" in headers or (length.isdigit() and int(length) > 0)
        if self.api_key and scope["path"].startswith(self.keyed) and not self._authorised(headers):
            # the body is never read: closing spares draining whatever the caller meant to upload
            return await _send_error(
                send,
                APIError(401, "invalid or missing API key", "authentication_error", code="invalid_api_key"),
                close=has_body,
            )
        if length.isdigit() and int(length) > self.max_body:
            return await _send_error(send, BodyTooLarge(self.max_body), close=True)

        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(self.max_body)  # the route's body read fails; its handler answers 413
            return message

        started = False

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except Exception as e:  # noqa: BLE001 - the last catch: answer, log, keep the connection
            if started:
                raise  # a response is under way (a stream): nothing valid can follow it
            log.exception("request failed")
            await _send_error(send, APIError(500, f"internal error: {type(e).__name__}", "server_error"))

    def _authorised(self, headers: dict) -> bool:
        given = headers.get(b"authorization", b"")
        return hmac.compare_digest(given, f"Bearer {self.api_key}".encode())


async def _send_error(send, error: APIError, close: bool = False) -> None:
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
