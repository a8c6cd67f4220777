#!/usr/bin/env python3
"""A round-robin HTTP proxy: each request goes to the next backend in turn.

Used to run IM's conformance suite against several infralog instances sharing
one PostgreSQL log, so that consecutive steps of one scenario land on
different instances (no sticky sessions).

    round_robin.py --listen 127.0.0.1:8900 --backend 127.0.0.1:8801 --backend ...
"""
import argparse
import http.client
import http.server
import itertools
import sys
import threading

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
              "te", "trailers", "transfer-encoding", "upgrade"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--backend", action="append", required=True)
    args = parser.parse_args()
    backends = itertools.cycle(args.backend)
    lock = threading.Lock()
    counts = {backend: 0 for backend in args.backend}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def forward(self):
            with lock:
                backend = next(backends)
                counts[backend] += 1
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            host, port = backend.rsplit(":", 1)
            connection = http.client.HTTPConnection(host, int(port), timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
            except OSError as error:
                self.send_error(502, f"backend {backend}: {error}")
                return
            finally:
                connection.close()
            self.send_response(answer.status, answer.reason)
            for key, value in answer.getheaders():
                if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Infralog-Backend", backend)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = forward

        def log_message(self, *args):
            pass

    host, port = args.listen.rsplit(":", 1)
    server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    print(f"round-robin proxy on {args.listen} over {', '.join(args.backend)}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        print("requests per backend: " + ", ".join(f"{b}={n}" for b, n in counts.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
