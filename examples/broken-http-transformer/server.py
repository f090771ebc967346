#!/usr/bin/env python3
"""A Firehose transformer behind plain HTTP, with a bug seen in the wild.

It parses each record as JSON and *skips* records that are not JSON, instead of answering them
`ProcessingFailed`. Firehose then fails the whole batch with Lambda.MissingRecordId.

Run it, then point firehose-harness at it:

    python3 examples/broken-http-transformer/server.py 8081 &
    firehose-harness check --target http://127.0.0.1:8081/ --cases 50 --seed 1 --report-dir R

Expect exit 1, `no_missing_record_ids` failing, and a minimal case under R/cases/ that holds one
non-JSON record. The fix: answer `{"recordId": id, "result": "ProcessingFailed"}` for such records.
"""
import base64
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def transform(event):
    out = []
    for record in event["records"]:
        try:
            doc = json.loads(base64.b64decode(record["data"]))
        except ValueError:
            continue  # BUG: the record vanishes from the response
        line = (json.dumps(doc) + "\n").encode()
        out.append({"recordId": record["recordId"], "result": "Ok",
                    "data": base64.b64encode(line).decode()})
    return {"records": out}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = json.dumps(transform(json.loads(body))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8081
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
