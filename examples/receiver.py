"""A tiny webhook receiver for trying firehook: prints each delivery and verifies its signature.

    .venv/bin/python examples/receiver.py --port 9000 --key s3cret

It uses only the standard library and firehook.receiver (the verifier receivers can use).
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, HTTPServer

from firehook import receiver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--key", help="the integration's shared key; signatures are checked when given")
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            verdict = "unsigned"
            if args.key:
                try:
                    receiver.verify(body, self.headers.get("X-JWS-Signature"), args.key)
                    verdict = "signature verified"
                except receiver.SignatureError as exc:
                    verdict = f"signature REFUSED: {exc}"
            doc = json.loads(body)
            print(f"{self.headers.get('X-Firehook-Delivery')}: {doc.get('type')} {doc.get('state')} "
                  f"{doc.get('result')} ({verdict})", flush=True)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    print(f"listening on http://127.0.0.1:{args.port}/", flush=True)
    HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
