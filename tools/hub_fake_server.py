#!/usr/bin/env python3
"""hub_fake_server.py — a loopback stand-in for the Hugging Face hub, for `ragd pull` tests.

Serves the repositories under --root (ROOT/owner/name/...) in the hub's URL layout with the same JSON and
headers huggingface_hub relies on (stdlib only; CI has no extra packages):
  GET  /api/models/{owner}/{name}/revision/{rev}[?blobs=true]
       → {"id", "sha", "siblings": [{"rfilename", "size", "blobId", "lfs": {"sha256", "size", "pointerSize"}}]}
  GET|HEAD /{owner}/{name}/resolve/{rev}/{path}
       LFS files (.safetensors .gguf .bin): 302 to http://localhost:PORT/cdn/... (another host name than
       127.0.0.1, like the hub's CDN, so the client must drop the token) with X-Linked-Etag (sha256), X-Linked-Size,
       X-Repo-Commit, ETag; other files: 200 with ETag (git blob sha1), X-Repo-Commit.
  GET  /cdn/{owner}/{name}/{path}   the bytes, with Range support (206 + Content-Range).
Revisions: "main", "v1.0" and the repository's commit sha (sha1 of its id); others → 404 RevisionNotFound.
Errors carry X-Error-Code / X-Error-Message like the hub's: unknown repository → 401 RepoNotFound without a
token, 404 RepoNotFound with one; --private REPO needs "Authorization: Bearer TOKEN" (--token), a wrong token
→ 401; --gated REPO → 403 GatedRepo.

Failure injection, --fail PATH:MODE (repeatable; PATH is the file path inside its repository):
  drop_once      first content request: all headers, half the body, then the connection is cut
  drop_always    every content request is cut at half
  wrong_sha      the listing advertises a wrong sha256 (LFS) or blobId (git file)
  no_lfs_info    the listing omits lfs/blobId/size (the client must use the resolve headers)
  no_range       Range is ignored: always 200 with the whole file
  status=NNN     resolve answers NNN (404 → X-Error-Code EntryNotFound)
  flaky_once     the first resolve answers 500
Every request is appended to --log as a JSON line {"method", "path", "range", "auth"}. The chosen port is
printed as "PORT <n>" on stdout (and written to --port-file).
"""
import argparse
import hashlib
import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlparse

LFS_EXT = (".safetensors", ".gguf", ".bin")


def git_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256, size):
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


class Hub:
    def __init__(self, args):
        self.root = os.path.abspath(args.root)
        self.token = args.token
        self.private = set(args.private or [])
        self.gated = set(args.gated or [])
        self.fail = {}
        for spec in args.fail or []:
            path, mode = spec.rsplit(":", 1)
            self.fail.setdefault(path, set()).add(mode)
        self.count = {}
        self.lock = threading.Lock()
        self.log_path = args.log
        self.cdn_host = args.cdn_host

    def log(self, rec):
        if self.log_path:
            with self.lock, open(self.log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")

    def bump(self, key):
        with self.lock:
            self.count[key] = self.count.get(key, 0) + 1
            return self.count[key]

    def repo_dir(self, repo):
        d = os.path.join(self.root, repo)
        return d if os.path.isdir(d) and os.path.abspath(d).startswith(self.root + os.sep) else None

    def commit(self, repo):
        return hashlib.sha1(repo.encode()).hexdigest()

    def files(self, repo):
        d = self.repo_dir(repo)
        out = []
        for base, _, names in os.walk(d):
            for n in sorted(names):
                full = os.path.join(base, n)
                out.append(os.path.relpath(full, d).replace(os.sep, "/"))
        return sorted(out)

    def modes(self, path):
        return self.fail.get(path, set())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub = None

    def log_message(self, fmt, *args):  # quiet
        pass

    # -- helpers
    def send(self, code, body=b"", headers=None, ctype="application/json"):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code, err_code=None, msg=""):
        h = {}
        if err_code:
            h["X-Error-Code"] = err_code
        if msg:
            h["X-Error-Message"] = msg
        self.send(code, json.dumps({"error": msg or err_code or str(code)}).encode(), h)

    def auth_ok(self, repo):
        """None when allowed, else (status, code, message) of the refusal."""
        auth = self.headers.get("Authorization", "")
        has = auth.startswith("Bearer ")
        good = has and self.hub.token is not None and auth[7:] == self.hub.token
        if has and not good:
            return (401, None, "Invalid credentials in Authorization header")
        if not self.hub.repo_dir(repo):
            return (404, "RepoNotFound", "Repository not found") if good else (401, "RepoNotFound", "Repository not found")
        if repo in self.hub.private and not good:
            return (401, "RepoNotFound", "Repository not found")
        if repo in self.hub.gated:
            return (403, "GatedRepo", "Access to model %s is restricted" % repo)
        return None

    def rev_ok(self, repo, rev):
        return rev in ("main", "v1.0", self.hub.commit(repo))

    # -- routes
    def do_HEAD(self):
        self.route()

    def do_GET(self):
        self.route()

    def route(self):
        u = urlparse(self.path)
        parts = [unquote(p) for p in u.path.split("/")[1:]]
        self.hub.log({"method": self.command, "path": u.path, "range": self.headers.get("Range"),
                      "auth": self.headers.get("Authorization")})
        try:
            if len(parts) >= 6 and parts[0] == "api" and parts[1] == "models" and parts[4] == "revision":
                return self.api(parts[2] + "/" + parts[3], "/".join(parts[5:]), "blobs=true" in (u.query or ""))
            if len(parts) >= 5 and parts[2] == "resolve":
                return self.resolve(parts[0] + "/" + parts[1], parts[3], "/".join(parts[4:]))
            if len(parts) >= 4 and parts[0] == "cdn":
                return self.content(parts[1] + "/" + parts[2], "/".join(parts[3:]))
            self.error(404, None, "no route")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def api(self, repo, rev, blobs):
        refusal = self.auth_ok(repo)
        if refusal:
            return self.error(*refusal)
        if not self.rev_ok(repo, rev):
            return self.error(404, "RevisionNotFound", "Invalid rev id: %s" % rev)
        d = self.hub.repo_dir(repo)
        sib = []
        for p in self.hub.files(repo):
            data = open(os.path.join(d, p), "rb").read()
            e = {"rfilename": p}
            modes = self.hub.modes(p)
            if blobs and "no_lfs_info" not in modes:
                if p.endswith(LFS_EXT):
                    sha = hashlib.sha256(data).hexdigest()
                    if "wrong_sha" in modes:
                        sha = hashlib.sha256(data + b"x").hexdigest()
                    ptr = lfs_pointer(sha, len(data))
                    e.update({"size": len(data), "blobId": git_sha1(ptr),
                              "lfs": {"sha256": sha, "size": len(data), "pointerSize": len(ptr)}})
                else:
                    e.update({"size": len(data), "blobId": git_sha1(data + (b"x" if "wrong_sha" in modes else b""))})
            sib.append(e)
        body = {"_id": "fake", "id": repo, "modelId": repo, "sha": self.hub.commit(repo), "private": repo in self.hub.private,
                "gated": repo in self.hub.gated, "siblings": sib}
        self.send(200, json.dumps(body).encode())

    def resolve(self, repo, rev, path):
        refusal = self.auth_ok(repo)
        if refusal:
            return self.error(*refusal)
        if not self.rev_ok(repo, rev):
            return self.error(404, "RevisionNotFound", "Invalid rev id: %s" % rev)
        d = self.hub.repo_dir(repo)
        full = os.path.join(d, path)
        modes = self.hub.modes(path)
        for m in modes:
            if m.startswith("status="):
                code = int(m[7:])
                return self.error(code, "EntryNotFound" if code == 404 else None, "injected %d" % code)
        if "flaky_once" in modes and self.hub.bump(("flaky", path)) == 1:
            return self.error(500, None, "injected flaky 500")
        if not os.path.isfile(full) or not os.path.abspath(full).startswith(d + os.sep):
            return self.error(404, "EntryNotFound", "%s does not exist on %s" % (path, rev))
        data = open(full, "rb").read()
        h = {"X-Repo-Commit": self.hub.commit(repo), "Accept-Ranges": "bytes"}
        if path.endswith(LFS_EXT):
            sha = hashlib.sha256(data).hexdigest()
            h.update({"X-Linked-Etag": '"%s"' % sha, "X-Linked-Size": str(len(data)), "ETag": '"%s"' % sha,
                      "Location": "http://%s:%d/cdn/%s/%s?sha=%s" % (self.hub.cdn_host, self.server.server_address[1],
                                                                     repo, quote(path), sha)})
            return self.send(302, b"", h)
        h["ETag"] = '"%s"' % git_sha1(data)
        return self.serve_bytes(path, data, h)

    def content(self, repo, path):
        d = self.hub.repo_dir(repo)
        full = os.path.join(d, path) if d else ""
        if not d or not os.path.isfile(full):
            return self.error(404, None, "no such object")
        data = open(full, "rb").read()
        return self.serve_bytes(path, data, {"ETag": '"cdn-%s"' % hashlib.md5(data).hexdigest()})

    def serve_bytes(self, path, data, headers):
        modes = self.hub.modes(path)
        start = 0
        rng = self.headers.get("Range")
        code = 200
        if rng and "no_range" not in modes and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                return self.error(416, None, "range not satisfiable")
            code = 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
        body = data[start:]
        drop = False
        if self.command == "GET":
            n = self.hub.bump(("get", path))
            drop = "drop_always" in modes or ("drop_once" in modes and n == 1)
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if drop:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--token")
    ap.add_argument("--private", action="append")
    ap.add_argument("--gated", action="append")
    ap.add_argument("--fail", action="append")
    ap.add_argument("--log")
    ap.add_argument("--cdn-host", default="localhost",
                    help="host name of LFS redirects: another name than the API's, as on the real hub")
    args = ap.parse_args()
    Handler.hub = Hub(args)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    port = srv.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(port))
        os.replace(args.port_file + ".tmp", args.port_file)
    print("PORT %d" % port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
