#!/usr/bin/python3
"""A load client for tests/apps/go/grpc_server, with Debian's python3-grpcio.

Keeps --streams server-streaming calls of /baton.Test/Count going at once
over one channel (one HTTP/2 connection at a time), each asking for
--messages replies --ms apart, in a loop, until SIGINT, SIGTERM or the
--stop file exists; then lets the calls in flight finish and prints one line:

    grpc_client: streams_ok=N streams_failed=N messages=N generations=N

A stream fails on any error status, or unless it gets every message, in
order (seq 0, 1, ...), all from one generation. The first failures go to
stderr. No generated code: the channel's generic unary_stream with
hand-written protobuf (de)serializers (varint fields only).
"""
import argparse
import os
import signal
import sys
import threading
import time

import grpc


def varint(field, v):
    if v == 0:
        return b""
    out = bytearray([field << 3])
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def fields(data):
    """Decodes a message of varint fields into {field: value}."""
    out, i = {}, 0
    while i < len(data):
        key, i = uvarint(data, i)
        if key & 7 != 0:
            raise ValueError("wire type %d" % (key & 7))
        out[key >> 3], i = uvarint(data, i)
    return out


def uvarint(data, i):
    v = shift = 0
    while True:
        b = data[i]
        i += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v, i
        shift += 7


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--messages", type=int, default=40)
    ap.add_argument("--ms", type=int, default=50)
    ap.add_argument("--stop")
    ap.add_argument("--started", help="created once a stream has completed")
    ap.add_argument("--duration", type=float, default=300)
    a = ap.parse_args()

    quit_ = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: quit_.set())
    signal.signal(signal.SIGTERM, lambda *_: quit_.set())
    lock = threading.Lock()
    n = {"ok": 0, "failed": 0, "messages": 0, "logged": 0}
    gens = set()

    def failure(why):
        with lock:
            n["failed"] += 1
            n["logged"] += 1
            if n["logged"] <= 20:
                print("grpc_client: stream failed: %s" % why, file=sys.stderr, flush=True)

    channel = grpc.insecure_channel(a.target)
    count = channel.unary_stream(
        "/baton.Test/Count",
        request_serializer=lambda b: b,
        response_deserializer=fields,
    )
    request = varint(1, a.messages) + varint(2, a.ms)
    length = a.messages * a.ms / 1000.0

    def worker(i):
        # Staggered starts: streams begin and end all the time.
        quit_.wait(i * length / a.streams)
        while not quit_.is_set():
            got, gen = 0, None
            try:
                for reply in count(request, timeout=length + 20):
                    if reply.get(1, 0) != got:
                        raise ValueError("message %d has seq %d" % (got, reply.get(1, 0)))
                    if gen is None:
                        gen = reply.get(2, 0)
                    elif reply.get(2, 0) != gen:
                        raise ValueError("message %d from generation %d, not %d" % (got, reply.get(2, 0), gen))
                    got += 1
                if got != a.messages:
                    raise ValueError("%d messages of %d" % (got, a.messages))
            except grpc.RpcError as e:
                failure("%s: %s after %d messages" % (e.code(), e.details(), got))
                time.sleep(0.01)
                continue
            except Exception as e:  # a bad message
                failure("%s after %d messages" % (e, got))
                continue
            with lock:
                n["ok"] += 1
                n["messages"] += got
                gens.add(gen)
                first = n["ok"] == 1
            if a.started and first:
                open(a.started, "w").close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(a.streams)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + a.duration
    while not quit_.is_set() and time.monotonic() < deadline:
        if a.stop and os.path.exists(a.stop):
            break
        quit_.wait(0.05)
    quit_.set()
    for t in threads:
        t.join()
    channel.close()
    print("grpc_client: streams_ok=%d streams_failed=%d messages=%d generations=%d"
          % (n["ok"], n["failed"], n["messages"], len(gens)), flush=True)


if __name__ == "__main__":
    main()
