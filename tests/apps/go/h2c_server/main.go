// A Go net/http server speaking HTTP/1.1 and h2c (HTTP/2 over cleartext,
// golang.org/x/net/http2/h2c) on the listeners baton passes, set up the way
// docs/recipes.md recommends:
//   - it takes its listeners with go-systemd's activation.ListenersWithNames()
//     (LISTEN_FDS, LISTEN_FDNAMES): "http" is the service's shared one,
//     "health" one the generation has for itself (per_generation = true),
//     which baton's readiness probe reaches: it sends no READY=1;
//   - on SIGTERM it does not call srv.Shutdown, which gets two things wrong
//     here: it closes idle HTTP/1 keep-alive connections at once (a client's
//     next request may be on the wire: RFC 9112 section 9.6), and it neither
//     tracks nor waits for h2c connections (h2c hijacks them from net/http),
//     so a process that exits when Shutdown returns cuts their streams.
//     Instead it closes its listeners itself; answers every request from
//     then on with "Connection: close" (net/http closes an HTTP/1
//     connection after that response; x/net's http2 sends GOAWAY on an h2c
//     one); sends GOAWAY on every h2c connection at once (h2s's graceful
//     shutdown, run as the Shutdown hook of a server that holds nothing
//     else); and exits once every connection it accepted is closed (a
//     listener wrapper counts them; an h2c connection closes once its
//     streams are done). An idle keep-alive connection closes when its
//     client sends the next request or closes it; baton's graceful policy
//     ends the drain as soon as the kernel shows no connection left.
//
// GET /stream?chunks=N&ms=D answers N lines, one every D ms, each flushed.
// Build in GOPATH mode with Debian's packages (tests/e2e/go_h2c.sh):
// GO111MODULE=off GOPATH=/usr/share/gocode go build
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/activation"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

var (
	generation = os.Getenv("BATON_GENERATION")
	draining   atomic.Bool
)

// openConns counts the connections accepted and not yet closed, whoever
// closes them: net/http, or x/net's http2 for an h2c connection it took over.
type openConns struct {
	mu       sync.Mutex
	n, total int
	zero     chan struct{}
}

type countedListener struct {
	net.Listener
	c *openConns
}

type countedConn struct {
	net.Conn
	c    *openConns
	once sync.Once
}

func (l countedListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.c.mu.Lock()
	l.c.n++
	l.c.total++
	l.c.mu.Unlock()
	return &countedConn{Conn: conn, c: l.c}, nil
}

func (cc *countedConn) Close() error {
	err := cc.Conn.Close()
	cc.once.Do(func() {
		cc.c.mu.Lock()
		if cc.c.n--; cc.c.n == 0 && cc.c.zero != nil {
			close(cc.c.zero)
			cc.c.zero = nil
		}
		cc.c.mu.Unlock()
	})
	return err
}

// none returns a channel closed once no connection is open.
func (c *openConns) none() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		done := make(chan struct{})
		close(done)
		return done
	}
	if c.zero == nil {
		c.zero = make(chan struct{})
	}
	return c.zero
}

// closeWhenDraining: once draining, every response says "Connection: close".
func closeWhenDraining(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

func stream(w http.ResponseWriter, r *http.Request) {
	chunks, _ := strconv.Atoi(r.URL.Query().Get("chunks"))
	ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
	if chunks <= 0 {
		chunks = 20
	}
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Generation", generation)
	for i := 0; i < chunks; i++ {
		if i > 0 && ms > 0 {
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, "chunk %d of %d\n", i, chunks)
		if flusher != nil {
			flusher.Flush()
		}
	}
}

func main() {
	log.SetPrefix("h2c_server gen " + generation + ": ")
	log.SetFlags(0)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)

	named, err := activation.ListenersWithNames()
	if err != nil {
		log.Fatalf("listeners: %v", err)
	}
	if len(named["http"]) == 0 {
		log.Fatalf("no listener named http in LISTEN_FDNAMES (got %d names)", len(named))
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/stream", stream)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Generation", generation)
		fmt.Fprintf(w, "hello from generation %s over %s\n", generation, r.Proto)
	})
	h2s := &http2.Server{}
	srv := &http.Server{Handler: h2c.NewHandler(closeWhenDraining(mux), h2s)}
	// h2s's graceful shutdown (GOAWAY on each of its connections; h2c's
	// ServeConn registers them) is a Shutdown hook of the server it is
	// configured on: one of its own, whose Shutdown does nothing else.
	goaway := &http.Server{}
	if err := http2.ConfigureServer(goaway, h2s); err != nil {
		log.Fatalf("http2: %v", err)
	}
	var conns openConns
	for _, l := range named["http"] {
		go func(l net.Listener) {
			err := srv.Serve(countedListener{l, &conns})
			if !draining.Load() {
				log.Fatalf("serve: %v", err)
			}
		}(l)
	}

	var health *http.Server
	if ls := named["health"]; len(ls) > 0 {
		health = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, "ok")
		})}
		go health.Serve(ls[0])
	}

	<-term
	start := time.Now()
	log.Printf("draining")
	draining.Store(true)
	if health != nil {
		health.Close()
	}
	for _, l := range named["http"] {
		l.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	goaway.Shutdown(ctx)
	select {
	case <-conns.none():
	case <-ctx.Done():
		log.Fatalf("drain: connections still open after %v", time.Since(start))
	}
	conns.mu.Lock()
	total := conns.total
	conns.mu.Unlock()
	log.Printf("drained in %d ms (%d connections served)", time.Since(start).Milliseconds(), total)
}
