"""A Hugging Face hub stand-in on 127.0.0.1, speaking the file-resolve protocol huggingface_hub uses.

    with serve_hub({"org/name": {"main": {"config.json": b"...", ...}}}) as endpoint:
        # HF_ENDPOINT=endpoint: hf_hub_download fetches, caches and resolves revisions for real

HEAD/GET /{repo}/resolve/{revision}/{file} answer with the file and the X-Repo-Commit and ETag headers the
client caches by; unknown repos, revisions and files answer 404 with the hub's X-Error-Code.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _handler(repos: dict[str, dict[str, dict[str, bytes]]]):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def do_HEAD(self):
            self._answer(body=False)

        def do_GET(self):
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            path = urllib.parse.unquote(urllib.parse.urlparse(self.path).path)
            repo_part, sep, rest = path.lstrip("/").partition("/resolve/")
            if not sep or repo_part not in repos:
                return self._error("RepoNotFound")
            revisions = repos[repo_part]
            revision = next((r for r in sorted(revisions, key=len, reverse=True) if rest.startswith(r + "/")), None)
            if revision is None:
                return self._error("RevisionNotFound")
            filename = rest[len(revision) + 1:]
            if filename not in revisions[revision]:
                return self._error("EntryNotFound")
            data = revisions[revision][filename]
            self.send_response(200)
            self.send_header("X-Repo-Commit", hashlib.sha1(f"{repo_part}@{revision}".encode()).hexdigest())
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

        def _error(self, code: str) -> None:
            self.send_response(404)
            self.send_header("X-Error-Code", code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@contextlib.contextmanager
def serve_hub(repos: dict[str, dict[str, dict[str, bytes]]]):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(repos))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
