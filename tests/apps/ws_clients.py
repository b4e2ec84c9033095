#!/usr/bin/python3
# WebSocket load for the websockets test: N connections (python3-websockets'
# client), each sending a numbered message every ~INTERVAL seconds and
# checking its echo, until SIGINT/SIGTERM; then each finishes its exchange,
# closes with 1000, and one line is printed:
#
#   wsclients: conns=N messages=N connects=N going_away=N resent=N lost=N
#              abnormal=N connect_errors=N rejected=N timeouts=N wrong=N
#
# A well-behaved client: a connection the server closes normally (1000, or
# 1001 "going away", as a server draining for a restart does) is reconnected
# at once, and a message sent on it whose echo had not come is sent again on
# the new one (counted in `resent`): after its Close the server may answer
# nothing more (RFC 6455 section 5.5.1), so such a message was not lost.
# Failures: `lost` (a message whose connection closed abnormally before its
# echo), `abnormal` (any close but 1000/1001: 1006 is a connection cut with
# no Close), `connect_errors` (refused, reset, timed out), `rejected` (a
# handshake answered with an HTTP status, such as 503), `timeouts` (no echo
# within 5 s), `wrong` (an echo that is not the message sent).
import argparse
import asyncio
import random
import signal
import sys

import websockets

FAILURES = ("lost", "abnormal", "connect_errors", "rejected", "timeouts", "wrong")
st = dict.fromkeys(("messages", "connects", "going_away", "resent") + FAILURES, 0)


async def one(i, args, stopping, connected):
    seq, pending, sent = 0, None, False
    while not stopping.is_set():
        try:
            ws = await websockets.connect(args.uri, open_timeout=5, close_timeout=5)
        except websockets.InvalidStatusCode as e:
            st["rejected"] += 1
            print("client %d: handshake answered %d" % (i, e.status_code), file=sys.stderr)
            await asyncio.sleep(0.1)
            continue
        except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as e:
            st["connect_errors"] += 1
            print("client %d: connect: %r" % (i, e), file=sys.stderr)
            await asyncio.sleep(0.1)
            continue
        st["connects"] += 1
        connected(i)
        closed = asyncio.ensure_future(ws.wait_closed())
        try:
            while True:
                if pending is None:
                    if stopping.is_set():
                        await ws.close(1000)
                        return
                    # The pause, but a close from the server ends it at once.
                    pause = args.interval * random.uniform(0.5, 1.5)
                    await asyncio.wait([closed], timeout=pause)
                    if closed.done():
                        await ws.ensure_open()  # raises ConnectionClosed
                    seq += 1
                    pending, sent = "%d:%d" % (i, seq), False
                elif sent:
                    st["resent"] += 1
                await ws.send(pending)
                sent = True
                echo = await asyncio.wait_for(ws.recv(), 5)
                if echo != pending:
                    st["wrong"] += 1
                st["messages"] += 1
                pending = None
        except websockets.ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else 1006
            if code in (1000, 1001):
                st["going_away"] += code == 1001
            else:
                st["abnormal"] += 1
                print("client %d: closed with %d (%s)" % (i, code, e), file=sys.stderr)
                if pending is not None and sent:
                    st["lost"] += 1
                pending = None
        except asyncio.TimeoutError:
            st["timeouts"] += 1
            print("client %d: no echo of %s within 5 s" % (i, pending), file=sys.stderr)
            pending = None
            await ws.close(1000)
        finally:
            closed.cancel()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("uri")
    p.add_argument("--conns", type=int, default=200)
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--ready", help="a file created once every connection opened once")
    args = p.parse_args()
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    seen = set()

    def connected(i):
        seen.add(i)
        if len(seen) == args.conns and args.ready:
            open(args.ready, "w").close()

    tasks = [asyncio.create_task(one(i, args, stopping, connected)) for i in range(args.conns)]
    await stopping.wait()
    done, left = await asyncio.wait(tasks, timeout=10)
    for t in done:
        if t.exception():
            print("client task failed: %r" % t.exception(), file=sys.stderr)
            st["abnormal"] += 1
    st["timeouts"] += len(left)
    print("wsclients: conns=%d " % args.conns + " ".join("%s=%d" % kv for kv in st.items()))
    sys.stdout.flush()
    return 0 if not left else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
