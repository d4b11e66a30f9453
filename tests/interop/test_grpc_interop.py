"""The gRPC interop cases (gRPC's interop test description), with Debian's Python grpcio as the
client and examples/interop (grpc.testing.TestService on switchboard) as the server.

Each test follows the description of the case of the same name. Where grpcio cannot do what a
case asks (per-message compression inside one stream), the test says what it does instead.
The server is checked at teardown: exit code 0 and no sanitizer report.
"""

import queue
import threading
import time

import grpc
import pytest

import grpc_stubs

empty_pb2, messages_pb2, test_pb2_grpc = grpc_stubs.interop()
Empty = empty_pb2.Empty
M = messages_pb2

TIMEOUT = 10  # seconds, per call; a hung server fails the test instead of hanging it


@pytest.fixture
def server(server_factory):
    return server_factory(kind="interop")


@pytest.fixture
def channel(server):
    ch = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    yield ch
    ch.close()


@pytest.fixture
def stub(channel):
    return test_pb2_grpc.TestServiceStub(channel)


def payload(n):
    return M.Payload(body=b"\0" * n)


def output_request(*sizes, status=None):
    req = M.StreamingOutputCallRequest(
        response_parameters=[M.ResponseParameters(size=s) for s in sizes])
    if status:
        req.response_status.code, req.response_status.message = status
    return req


class Requests:
    """A request iterator the test feeds one message at a time (None ends it)."""

    def __init__(self):
        self.q = queue.Queue()

    def put(self, msg):
        self.q.put(msg)

    def end(self):
        self.q.put(None)

    def __iter__(self):
        return self

    def __next__(self):
        msg = self.q.get(timeout=TIMEOUT)
        if msg is None:
            raise StopIteration
        return msg


def test_empty_unary(stub):
    assert stub.EmptyCall(Empty(), timeout=TIMEOUT) == Empty()


def test_large_unary(stub):
    res = stub.UnaryCall(M.SimpleRequest(response_size=314159, payload=payload(271828)),
                         timeout=TIMEOUT)
    assert res.payload.body == b"\0" * 314159


def test_completion_from_another_thread(stub):
    # CacheableUnaryCall answers from a thread of its own (sb_call_async_finish); many at once.
    futures = [stub.CacheableUnaryCall.future(M.SimpleRequest(response_size=n), timeout=TIMEOUT)
               for n in range(50)]
    assert [len(f.result().payload.body) for f in futures] == list(range(50))
    with pytest.raises(grpc.RpcError) as e:
        stub.CacheableUnaryCall(M.SimpleRequest(response_status=M.EchoStatus(code=9, message="x")),
                                timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_client_compressed_unary(stub):
    # The probe: the client claims compression but sends the message plain.
    probe = M.SimpleRequest(response_size=314159, payload=payload(271828))
    probe.expect_compressed.value = True
    with pytest.raises(grpc.RpcError) as e:
        stub.UnaryCall(probe, timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    res = stub.UnaryCall(probe, timeout=TIMEOUT, compression=grpc.Compression.Gzip)
    assert len(res.payload.body) == 314159
    plain = M.SimpleRequest(response_size=314159, payload=payload(271828))
    plain.expect_compressed.value = False
    res = stub.UnaryCall(plain, timeout=TIMEOUT)
    assert len(res.payload.body) == 314159


def test_server_compressed_unary(stub):
    for compressed in (True, False):
        req = M.SimpleRequest(response_size=314159, payload=payload(271828))
        req.response_compressed.value = compressed
        res, call = stub.UnaryCall.with_call(req, timeout=TIMEOUT)
        assert res.payload.body == b"\0" * 314159
        assert call.code() == grpc.StatusCode.OK


def test_client_streaming(stub):
    sizes = [27182, 8, 1828, 45904]
    res = stub.StreamingInputCall(iter(M.StreamingInputCallRequest(payload=payload(n))
                                       for n in sizes), timeout=TIMEOUT)
    assert res.aggregated_payload_size == 74922


def test_client_compressed_streaming(stub):
    probe = M.StreamingInputCallRequest(payload=payload(27182))
    probe.expect_compressed.value = True
    with pytest.raises(grpc.RpcError) as e:
        stub.StreamingInputCall(iter([probe]), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # grpcio compresses a whole call or nothing, so both messages go compressed (the
    # description sends the second one plain).
    second = M.StreamingInputCallRequest(payload=payload(45904))
    second.expect_compressed.value = True
    res = stub.StreamingInputCall(iter([probe, second]), timeout=TIMEOUT,
                                  compression=grpc.Compression.Gzip)
    assert res.aggregated_payload_size == 73086


def test_server_streaming(stub):
    sizes = [31415, 9, 2653, 58979]
    got = [len(r.payload.body) for r in stub.StreamingOutputCall(output_request(*sizes),
                                                                 timeout=TIMEOUT)]
    assert got == sizes


def test_server_compressed_streaming(stub):
    req = M.StreamingOutputCallRequest(response_parameters=[
        M.ResponseParameters(size=31415, compressed=M.BoolValue(value=True)),
        M.ResponseParameters(size=92653, compressed=M.BoolValue(value=False)),
    ])
    got = [len(r.payload.body) for r in stub.StreamingOutputCall(req, timeout=TIMEOUT)]
    assert got == [31415, 92653]


def test_ping_pong(stub):
    reqs = Requests()
    responses = stub.FullDuplexCall(reqs, timeout=TIMEOUT)
    for size, body in ((31415, 27182), (9, 8), (2653, 1828), (58979, 45904)):
        r = output_request(size)
        r.payload.body = b"\0" * body
        reqs.put(r)
        assert len(next(responses).payload.body) == size
    reqs.end()
    assert list(responses) == []
    assert responses.code() == grpc.StatusCode.OK


def test_empty_stream(stub):
    responses = stub.FullDuplexCall(iter([]), timeout=TIMEOUT)
    assert list(responses) == []
    assert responses.code() == grpc.StatusCode.OK


def test_timeout_on_sleeping_server(stub):
    reqs = Requests()
    r = M.StreamingOutputCallRequest(payload=payload(27182))
    reqs.put(r)
    responses = stub.FullDuplexCall(reqs, timeout=0.001)
    with pytest.raises(grpc.RpcError) as e:
        list(responses)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    reqs.end()


def test_timeout_enforced_by_server(stub, channel):
    # The server's own deadline: a stream that never completes is ended by grpc-timeout even
    # when the client keeps waiting (its own deadline is later than the server's).
    reqs = Requests()
    reqs.put(output_request())
    call = channel.stream_stream(
        "/grpc.testing.TestService/FullDuplexCall",
        request_serializer=M.StreamingOutputCallRequest.SerializeToString,
        response_deserializer=M.StreamingOutputCallResponse.FromString)
    responses = call(reqs, timeout=0.3)
    with pytest.raises(grpc.RpcError) as e:
        list(responses)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    reqs.end()


def test_cancel_after_begin(stub):
    reqs = Requests()
    fut = stub.StreamingInputCall.future(reqs, timeout=TIMEOUT)
    fut.cancel()
    assert fut.cancelled()
    with pytest.raises(grpc.FutureCancelledError):
        fut.result()
    reqs.end()
    # The server is still fine.
    assert stub.EmptyCall(Empty(), timeout=TIMEOUT) == Empty()


def test_cancel_after_first_response(stub):
    reqs = Requests()
    r = output_request(31415)
    r.payload.body = b"\0" * 27182
    reqs.put(r)
    responses = stub.FullDuplexCall(reqs, timeout=TIMEOUT)
    assert len(next(responses).payload.body) == 31415
    responses.cancel()
    with pytest.raises(grpc.RpcError) as e:
        next(responses)
    assert e.value.code() == grpc.StatusCode.CANCELLED
    reqs.end()
    assert stub.EmptyCall(Empty(), timeout=TIMEOUT) == Empty()


INITIAL = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
TRAILING = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")


def test_custom_metadata(stub):
    req = M.SimpleRequest(response_size=314159, payload=payload(271828))
    res, call = stub.UnaryCall.with_call(req, timeout=TIMEOUT, metadata=[INITIAL, TRAILING])
    assert len(res.payload.body) == 314159
    assert INITIAL in [(m.key, m.value) for m in call.initial_metadata()]
    assert TRAILING in [(m.key, m.value) for m in call.trailing_metadata()]

    responses = stub.FullDuplexCall(iter([output_request(314159)]), timeout=TIMEOUT,
                                    metadata=[INITIAL, TRAILING])
    assert [len(r.payload.body) for r in responses] == [314159]
    assert INITIAL in [(m.key, m.value) for m in responses.initial_metadata()]
    assert TRAILING in [(m.key, m.value) for m in responses.trailing_metadata()]


def check_status(stub, message):
    req = M.SimpleRequest(response_status=M.EchoStatus(code=2, message=message))
    with pytest.raises(grpc.RpcError) as e:
        stub.UnaryCall(req, timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.UNKNOWN
    assert e.value.details() == message
    responses = stub.FullDuplexCall(iter([output_request(status=(2, message))]), timeout=TIMEOUT)
    with pytest.raises(grpc.RpcError) as e:
        list(responses)
    assert e.value.code() == grpc.StatusCode.UNKNOWN
    assert e.value.details() == message


def test_status_code_and_message(stub):
    check_status(stub, "test status message")


def test_status_details_trailer(stub):
    # grpc-status-details-bin: a google.rpc.Status with the same code and message (field 1 the
    # code, field 2 the message), as set by the handler with sb_call_set_trailer().
    req = M.SimpleRequest(response_status=M.EchoStatus(code=5, message="gone"))
    with pytest.raises(grpc.RpcError) as e:
        stub.UnaryCall(req, timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    details = dict(e.value.trailing_metadata())["grpc-status-details-bin"]
    assert details == b"\x08\x05\x12\x04gone"


def test_long_client_stream(stub):
    # More bytes than the server's HTTP body limit (8 MiB): a stream is bounded per message.
    chunk = M.StreamingInputCallRequest(payload=payload(1 << 20))
    res = stub.StreamingInputCall(iter([chunk] * 10), timeout=30)
    assert res.aggregated_payload_size == 10 << 20


def test_special_status_message(stub):
    check_status(stub, "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP "
                       "\U0001f608\t\n")


def test_unimplemented_method(stub):
    with pytest.raises(grpc.RpcError) as e:
        stub.UnimplementedCall(Empty(), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_unimplemented_service(channel):
    with pytest.raises(grpc.RpcError) as e:
        test_pb2_grpc.UnimplementedServiceStub(channel).UnimplementedCall(Empty(),
                                                                          timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_half_duplex(stub):
    # HalfDuplexCall answers only after the client half-closed, in request order.
    got = [len(r.payload.body) for r in stub.HalfDuplexCall(
        iter([output_request(10, 20), output_request(30)]), timeout=TIMEOUT)]
    assert got == [10, 20, 30]


def test_backpressure_slow_reader(stub):
    # The client asks for 16 MiB in 1 MiB responses and reads them slowly: the server's sends
    # report a full buffer, it pauses the request stream and resumes on writable, and every
    # response arrives intact.
    reqs = Requests()
    responses = stub.FullDuplexCall(reqs, timeout=60)
    for _ in range(4):
        reqs.put(output_request(*[1 << 20] * 4))
    reqs.end()
    got = 0
    for r in responses:
        assert r.payload.body == b"\0" * (1 << 20)
        got += 1
        if got % 4 == 0:
            time.sleep(0.1)
    assert got == 16 and responses.code() == grpc.StatusCode.OK


def test_intervals_do_not_block_other_calls(stub):
    # A stream sleeping between messages (a loop timer) leaves the loop free for other calls.
    req = M.StreamingOutputCallRequest(response_parameters=[
        M.ResponseParameters(size=1, interval_us=300000) for _ in range(3)])
    results = []
    t = threading.Thread(target=lambda: results.append(
        [len(r.payload.body) for r in stub.StreamingOutputCall(req, timeout=TIMEOUT)]))
    t.start()
    for _ in range(20):
        assert stub.EmptyCall(Empty(), timeout=TIMEOUT) == Empty()
    t.join(TIMEOUT)
    assert results == [[1, 1, 1]]
