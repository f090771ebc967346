"""A Firehose transformer as Python users write one, run by AWS's own runtime client (awslambdaric).

It normalises records to newline-delimited JSON: a JSON record is re-serialised compactly, a text
record is kept as is, and both get exactly one trailing newline so the objects Firehose writes to S3
split into lines. Bytes that are not UTF-8 (binary or still-compressed payloads) are answered
ProcessingFailed, and Firehose keeps their originals under processing-failed/. Records that would
push the response past Lambda's 6 MB limit are answered ProcessingFailed too, rather than failing
the whole batch.

Run it locally against the embedded Lambda Runtime API, exactly as Lambda's Python runtime would:

    python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
    cd examples/python-transformer
    firehose-harness check --target 'exec:../../.venv/bin/python -m awslambdaric app.handler'

Expected: every check passes and the exit code is 0. `--instances 4` runs four copies at once.
"""

import base64
import json

# Lambda's response limit (6 MiB) less room for the JSON around the records.
RESPONSE_BUDGET = 6 * 1024 * 1024 - 64 * 1024


def transform(data):
    """One record's new bytes, or None when it cannot be read as text."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return (text.rstrip("\r\n") + "\n").encode("utf-8")
    line = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        return (line + "\n").encode("utf-8")
    except UnicodeEncodeError:
        # Producers write lone surrogate escapes ("\ud800", a string cut mid-pair). json.loads
        # accepts them, but such a str has no UTF-8 form: keep them escaped instead of crashing
        # the whole batch.
        return (json.dumps(value, separators=(",", ":")) + "\n").encode("ascii")


def handler(event, context):
    budget = RESPONSE_BUDGET
    records = []
    for record in event["records"]:
        data = transform(base64.b64decode(record["data"]))
        encoded = base64.b64encode(data).decode("ascii") if data is not None else None
        if encoded is not None and len(encoded) + 128 <= budget:
            budget -= len(encoded) + 128
            records.append({"recordId": record["recordId"], "result": "Ok", "data": encoded})
        else:
            budget -= 128
            records.append({"recordId": record["recordId"], "result": "ProcessingFailed", "data": ""})
    print(f"transformed {len(records)} records")
    return {"records": records}
