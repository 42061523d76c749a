"""Runs upstream's sync.py as the oracle for kflite's hook, offline.

sync.py needs botocore and a SeaweedFS; both are replaced by a recording fake
(only its IAM/S3 calls are mocked). Input on stdin:
  {"sync_dir": DIR, "cases": [{"settings": {...}, "request": {...},
    "key": {"AccessKeyId": ..., "SecretAccessKey": ...}, "http": bool}]}
Output on stdout: {"results": [{"response": ..., "calls": [[op, kwargs], ...]}]}
sync.py's own prints go to stderr.
"""
import json
import sys
import threading
import types
import urllib.request

CALLS = []
CURRENT_KEY = {}


class FakeClient:
    def __init__(self, service):
        self.service = service

    def __getattr__(self, op):
        def call(**kwargs):
            CALLS.append([op, kwargs])
            if op == "create_access_key":
                return {"AccessKey": dict(CURRENT_KEY, UserName=kwargs["UserName"], Status="Active")}
            if op == "get_bucket_lifecycle_configuration":
                raise Exception("NoSuchLifecycleConfiguration")
            return {}
        return call


class FakeSession:
    def create_client(self, service, **kwargs):
        return FakeClient(service)


botocore = types.ModuleType("botocore")
botocore_session = types.ModuleType("botocore.session")
botocore_session.get_session = lambda: FakeSession()
botocore.session = botocore_session
sys.modules["botocore"] = botocore
sys.modules["botocore.session"] = botocore_session


def main():
    spec = json.load(sys.stdin)
    sys.path.insert(0, spec["sync_dir"])
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    import sync  # noqa: E402  (needs the fake botocore first)

    results = []
    for case in spec["cases"]:
        CALLS.clear()
        CURRENT_KEY.clear()
        CURRENT_KEY.update(case.get("key") or {})
        server = sync.server_factory(url="127.0.0.1", controller_port=0, **case["settings"])
        try:
            if case.get("http"):
                t = threading.Thread(target=server.serve_forever, daemon=True)
                t.start()
                port = server.server_address[1]
                body = json.dumps(case["request"]).encode()
                req = urllib.request.Request(f"http://127.0.0.1:{port}/sync", data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req) as r:
                    response = json.loads(r.read())
                server.shutdown()
            else:
                handler = server.RequestHandlerClass.__new__(server.RequestHandlerClass)
                req = case["request"]
                response = handler.sync(req["object"], req["attachments"])
        finally:
            server.server_close()
        results.append({"response": response, "calls": list(CALLS)})
    sys.stdout = real_stdout
    json.dump({"results": results}, sys.stdout)


main()
