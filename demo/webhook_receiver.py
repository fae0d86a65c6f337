"""A stand-in for a chat/incident webhook in the demo: prints every alert the notify plugin POSTs.

Usage: python3 webhook_receiver.py [HOST] [PORT]   (default 127.0.0.1 18080)
``GET /health`` answers 200, which the demo's http_observer checks. Point the notify plugin's
``webhook_url`` at a real Slack/Mattermost incoming webhook (or set ``email_to``) instead.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 18080


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        print(f"alert <- {body.get('text')}", flush=True)
        self.send_response(204)
        self.end_headers()

    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format, *args):
        pass


server = ThreadingHTTPServer((host, port), Handler)
print(f"webhook receiver listening on http://{host}:{port}", flush=True)
server.serve_forever()
