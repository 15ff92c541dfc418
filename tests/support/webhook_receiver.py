"""A local webhook receiver for the tests: the outside service a product
runs. Every request to /hook/<name> is verified with the `standardwebhooks`
package (the reference implementation from PyPI, not Confab's code) against
the secret the test registered for <name>.

It also stands in for a product's backend answering the assistant's HTTP
tools: POST /tool/<name> is verified the same way (Confab signs tool calls
as it signs webhooks) and answered by the mode set for <name>: ok (200 and
{"tool": name, "arguments": ...}), fail (500), hold (as for hooks), big
(200 and 20 KiB).

Control API (JSON):
  POST /control/<name>   {"secret": "whsec_...", "mode": "ok" | "down" | "hold" | "fail" | "big"}
                         down: answer 503; hold: keep requests open until
                         the mode changes (then answer as the new mode says)
  GET  /control/received every request so far, in arrival order:
                         {name, id, timestamp, verified, error, body, at_ms,
                         down, held}; a held request is listed when it
                         arrives (held: true) and again when answered

Prints "listening <port>" once it accepts connections, and exits when its
stdin closes (the test process that started it is gone).
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

lock = threading.Condition()
endpoints = {}  # name -> {"secret": str, "mode": str}
received = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b""):
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n)

    def do_GET(self):
        if self.path == "/control/received":
            with lock:
                self.reply(200, json.dumps(received).encode())
        else:
            self.reply(404)

    def do_POST(self):
        parts = self.path.strip("/").split("/")
        if len(parts) != 2:
            return self.reply(404)
        kind, name = parts
        raw = self.body()
        if kind == "control":
            with lock:
                endpoints[name] = json.loads(raw)
                lock.notify_all()
            return self.reply(204)
        if kind == "tool":
            return self.tool(name, raw)
        if kind != "hook":
            return self.reply(404)
        with lock:
            ep = endpoints.get(name, {"secret": None, "mode": "ok"})
            if ep.get("mode") == "hold":
                received.append({"name": name, "held": True, "at_ms": time.time() * 1000,
                                 "id": self.headers.get("webhook-id")})
            while ep.get("mode") == "hold":
                lock.wait()
                ep = endpoints.get(name, ep)
        if ep.get("mode") == "down":
            with lock:
                received.append({"name": name, "down": True, "at_ms": time.time() * 1000,
                                 "id": self.headers.get("webhook-id"), "held": False})
            return self.reply(503, b'{"down":true}')
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = {"name": name, "id": headers.get("webhook-id"),
                 "timestamp": headers.get("webhook-timestamp"),
                 "traceparent": headers.get("traceparent"),
                 "at_ms": time.time() * 1000, "down": False, "held": False}
        try:
            Webhook(ep["secret"]).verify(raw, headers)
            entry["verified"] = True
            entry["body"] = json.loads(raw)
        except Exception as e:  # a bad signature, timestamp or header
            entry["verified"] = False
            entry["error"] = f"{type(e).__name__}: {e}"
        with lock:
            received.append(entry)
        self.reply(204 if entry["verified"] else 400)


    def tool(self, name, raw):
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = {"name": name, "tool": True, "id": headers.get("webhook-id"),
                 "at_ms": time.time() * 1000, "down": False, "held": False}
        with lock:
            ep = endpoints.get(name, {"secret": None, "mode": "ok"})
            received.append(entry)
            while ep.get("mode") == "hold":
                entry["held"] = True
                lock.wait()
                ep = endpoints.get(name, ep)
        try:
            Webhook(ep["secret"]).verify(raw, headers)
            entry["verified"] = True
            entry["body"] = json.loads(raw)
        except Exception as e:
            entry["verified"] = False
            entry["error"] = f"{type(e).__name__}: {e}"
            return self.reply(401, b'{"error":"bad signature"}')
        mode = ep.get("mode")
        if mode == "fail":
            return self.reply(500, b'{"error":"the order service is down"}')
        if mode == "big":
            return self.reply(200, json.dumps({"pad": "x" * 20480}).encode())
        answer = {"tool": name, "arguments": entry["body"].get("arguments")}
        return self.reply(200, json.dumps(answer).encode())


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A sender that gave up (Confab's timeout) closes the connection
        # under a held request: expected here, not worth a traceback.
        if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            super().handle_error(request, client_address)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = Server(("127.0.0.1", port), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
