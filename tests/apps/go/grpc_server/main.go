// A grpc-go server with one server-streaming method, set up the way
// docs/recipes.md recommends for baton:
//   - it takes its listeners with go-systemd's activation.ListenersWithNames()
//     (LISTEN_FDS, LISTEN_FDNAMES) and serves the one named "grpc";
//   - it says READY=1 (go-systemd's daemon.SdNotify) once it serves them:
//     the listeners are bound before it starts, so a connection that comes
//     before its first Accept waits in the kernel's queue;
//   - on SIGTERM, GracefulStop: it closes the listeners, sends GOAWAY on
//     every connection (new calls go to the next generation) and returns
//     once every call in progress has ended and every connection closed;
//     then the process exits.
//
// /baton.Test/Count takes CountRequest{count = 1, interval_ms = 2} and
// sends `count` CountReply{seq = 1 (0, 1, ...), generation = 2}, one every
// interval_ms. The messages are plain protobuf, encoded by hand (no protoc,
// no generated code): grpc-go's proto codec uses a message's own Marshal
// and Unmarshal methods when it has them.
//
// Build in GOPATH mode with Debian's packages (tests/e2e/grpc.sh):
// GO111MODULE=off GOPATH=/usr/share/gocode go build
package main

import (
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/activation"
	"github.com/coreos/go-systemd/daemon"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Protobuf wire format, varint fields only.

func putVarint(b []byte, field int, v uint64) []byte {
	if v == 0 {
		return b // proto3: a zero is not sent
	}
	b = append(b, byte(field<<3)) // wire type 0
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// varints decodes a message of varint fields into field -> value.
func varints(b []byte) (map[int]uint64, error) {
	m := map[int]uint64{}
	for len(b) > 0 {
		key, n := uvarint(b)
		if n <= 0 || key&7 != 0 {
			return nil, errors.New("bad field")
		}
		b = b[n:]
		v, n := uvarint(b)
		if n <= 0 {
			return nil, errors.New("bad varint")
		}
		b = b[n:]
		m[int(key>>3)] = v
	}
	return m, nil
}

func uvarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * uint(i))
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, -1
}

type CountRequest struct{ Count, IntervalMs uint64 }

func (m *CountRequest) Reset()         { *m = CountRequest{} }
func (m *CountRequest) String() string { return fmt.Sprintf("%+v", *m) }
func (*CountRequest) ProtoMessage()    {}
func (m *CountRequest) Marshal() ([]byte, error) {
	return putVarint(putVarint(nil, 1, m.Count), 2, m.IntervalMs), nil
}
func (m *CountRequest) Unmarshal(b []byte) error {
	f, err := varints(b)
	m.Count, m.IntervalMs = f[1], f[2]
	return err
}

type CountReply struct{ Seq, Generation uint64 }

func (m *CountReply) Reset()         { *m = CountReply{} }
func (m *CountReply) String() string { return fmt.Sprintf("%+v", *m) }
func (*CountReply) ProtoMessage()    {}
func (m *CountReply) Marshal() ([]byte, error) {
	return putVarint(putVarint(nil, 1, m.Seq), 2, m.Generation), nil
}
func (m *CountReply) Unmarshal(b []byte) error {
	f, err := varints(b)
	m.Seq, m.Generation = f[1], f[2]
	return err
}

var (
	generation, _ = strconv.ParseUint(os.Getenv("BATON_GENERATION"), 10, 64)
	calls         int64
)

func count(_ interface{}, stream grpc.ServerStream) error {
	atomic.AddInt64(&calls, 1)
	req := new(CountRequest)
	if err := stream.RecvMsg(req); err != nil {
		return err
	}
	if req.Count > 100000 {
		return status.Error(codes.InvalidArgument, "count too large")
	}
	for i := uint64(0); i < req.Count; i++ {
		if i > 0 {
			select {
			case <-time.After(time.Duration(req.IntervalMs) * time.Millisecond):
			case <-stream.Context().Done():
				return stream.Context().Err()
			}
		}
		if err := stream.SendMsg(&CountReply{Seq: i, Generation: generation}); err != nil {
			return err
		}
	}
	return nil
}

// The service as protoc-gen-go-grpc would describe it.
var testService = grpc.ServiceDesc{
	ServiceName: "baton.Test",
	HandlerType: (*interface{})(nil),
	Streams: []grpc.StreamDesc{
		{StreamName: "Count", Handler: count, ServerStreams: true},
	},
}

func main() {
	log.SetPrefix(fmt.Sprintf("grpc_server gen %d: ", generation))
	log.SetFlags(0)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)

	named, err := activation.ListenersWithNames()
	if err != nil {
		log.Fatalf("listeners: %v", err)
	}
	if len(named["grpc"]) == 0 {
		log.Fatalf("no listener named grpc in LISTEN_FDNAMES")
	}
	srv := grpc.NewServer()
	srv.RegisterService(&testService, nil)
	for _, l := range named["grpc"] {
		go func(l net.Listener) {
			if err := srv.Serve(l); err != nil {
				log.Fatalf("serve: %v", err)
			}
		}(l)
	}
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		log.Fatalf("READY=1: %v", err)
	}

	<-term
	start := time.Now()
	log.Printf("draining")
	srv.GracefulStop()
	log.Printf("drained in %d ms (%d calls served)", time.Since(start).Milliseconds(), atomic.LoadInt64(&calls))
}
