"""Shared pieces of the SQS interop tests: a boto3 client on a running switchboard, the
attribute MD5 computed independently of the server, and raw Query/JSON requests.

Debian's botocore (1.29) speaks the Query protocol and its SQS model predates the message
move task actions (2023). `client_with_move_tasks` adds those three operations to a copy of
the installed model, shaped as AWS documents them, so boto3 can call them through the same
Query serializer and parser.
"""

import copy
import glob
import hashlib
import http.client
import json
import os
import struct
import subprocess

import boto3
import botocore.session

DUMMY = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "dummy-secret"}


def client(port, **kw):
    return boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        **DUMMY, **kw)


def attr_md5(attrs):
    """MD5OfMessageAttributes as AWS documents it (sorted names; length-prefixed name, type
    and value; transport byte 1 for strings, 2 for binary)."""
    h = hashlib.md5()
    for name in sorted(attrs):
        a = attrs[name]
        for field in (name.encode(), a["DataType"].encode()):
            h.update(struct.pack(">I", len(field)) + field)
        if "BinaryValue" in a:
            h.update(b"\x02")
            v = a["BinaryValue"]
        else:
            h.update(b"\x01")
            v = a["StringValue"].encode()
        h.update(struct.pack(">I", len(v)) + v)
    return h.hexdigest()


def _model_with_move_tasks(dest_dir):
    src = glob.glob("/usr/lib/python3/dist-packages/botocore/data/sqs/*/service-2.json")[0]
    version = os.path.basename(os.path.dirname(src))
    with open(src) as f:
        m = json.load(f)
    if "StartMessageMoveTask" in m["operations"]:
        return None
    s = m["shapes"]
    s.setdefault("Long", {"type": "long"})
    s["StartMessageMoveTaskRequest"] = {"type": "structure", "required": ["SourceArn"], "members": {
        "SourceArn": {"shape": "String"}, "DestinationArn": {"shape": "String"},
        "MaxNumberOfMessagesPerSecond": {"shape": "Integer"}}}
    s["StartMessageMoveTaskResult"] = {"type": "structure", "members": {
        "TaskHandle": {"shape": "String"}}}
    s["ListMessageMoveTasksRequest"] = {"type": "structure", "required": ["SourceArn"], "members": {
        "SourceArn": {"shape": "String"}, "MaxResults": {"shape": "Integer"}}}
    s["ListMessageMoveTasksResultEntry"] = {"type": "structure", "members": {
        "TaskHandle": {"shape": "String"}, "Status": {"shape": "String"},
        "SourceArn": {"shape": "String"}, "DestinationArn": {"shape": "String"},
        "MaxNumberOfMessagesPerSecond": {"shape": "Integer"},
        "ApproximateNumberOfMessagesMoved": {"shape": "Long"},
        "ApproximateNumberOfMessagesToMove": {"shape": "Long"},
        "FailureReason": {"shape": "String"}, "StartedTimestamp": {"shape": "Long"}}}
    s["ListMessageMoveTasksResultEntryList"] = {
        "type": "list", "flattened": True,
        "member": {"shape": "ListMessageMoveTasksResultEntry",
                   "locationName": "ListMessageMoveTasksResultEntry"}}
    s["ListMessageMoveTasksResult"] = {"type": "structure", "members": {
        "Results": {"shape": "ListMessageMoveTasksResultEntryList"}}}
    s["CancelMessageMoveTaskRequest"] = {"type": "structure", "required": ["TaskHandle"],
                                         "members": {"TaskHandle": {"shape": "String"}}}
    s["CancelMessageMoveTaskResult"] = {"type": "structure", "members": {
        "ApproximateNumberOfMessagesMoved": {"shape": "Long"}}}
    for op in ("StartMessageMoveTask", "ListMessageMoveTasks", "CancelMessageMoveTask"):
        m["operations"][op] = {
            "name": op, "http": {"method": "POST", "requestUri": "/"},
            "input": {"shape": f"{op}Request"},
            "output": {"shape": f"{op}Result", "resultWrapper": f"{op}Result"},
            "errors": []}
    out = os.path.join(dest_dir, "sqs", version)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "service-2.json"), "w") as f:
        json.dump(m, f)
    return dest_dir


def client_with_move_tasks(port, tmp_path):
    session = botocore.session.get_session()
    extra = _model_with_move_tasks(str(tmp_path / "botocore-data"))
    if extra:
        session.get_component("data_loader").search_paths.insert(0, extra)
    return boto3.session.Session(botocore_session=session).client(
        "sqs", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1", **DUMMY)


def raw(port, body, headers=None, path="/", method="POST"):
    """One raw request; returns (status, headers dict lower-cased, body text)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"content-type": "application/x-www-form-urlencoded"}
    h.update({k.lower(): v for k, v in (headers or {}).items()})
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read().decode("utf-8", "replace")
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    c.close()
    return out


def raw_json(port, action, payload):
    return raw(port, json.dumps(payload).encode(), {
        "content-type": "application/x-amz-json-1.0", "x-amz-target": f"AmazonSQS.{action}"})


def refused_start(data_dir, *flags):
    """Runs `switchboard serve` with flags that must keep it from starting; returns its exit
    code and output. (Leak checks are off: a refused start leaves what it set up.)"""
    p = subprocess.run([os.environ["SB_BIN"], "serve", "--http", "127.0.0.1:0",
                        "--data", str(data_dir), *flags], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    return p.returncode, p.stdout + p.stderr


def deep_copy(x):
    return copy.deepcopy(x)
