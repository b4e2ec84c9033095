// A load client for tests/apps/go/h2c_server: -streams long HTTP/2 streams
// at once over h2c (golang.org/x/net/http2's Transport with AllowHTTP and a
// plain dial in place of the TLS one: the h2c client pattern), each a GET
// /stream whose body the server sends a line at a time, and -h1 HTTP/1.1
// keep-alive clients (net/http's Transport), each in a loop, until SIGINT,
// SIGTERM or the -stop file exists. Then it lets what is in flight finish
// and prints one line:
//
//	h2c_client: streams_ok=N streams_failed=N h1_ok=N h1_failed=N generations=N
//
// A failure is any error, a status other than 200, the wrong protocol, or a
// body other than the one asked for (a short one included). The first
// failures go to stderr. Exit status 0 unless it could not run at all.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"
)

var (
	addr     = flag.String("addr", "127.0.0.1:8080", "host:port of the server")
	streams  = flag.Int("streams", 20, "concurrent HTTP/2 streams")
	h1       = flag.Int("h1", 4, "concurrent HTTP/1.1 keep-alive clients")
	chunks   = flag.Int("chunks", 20, "lines per stream")
	interval = flag.Int("ms", 100, "milliseconds between lines")
	stop     = flag.String("stop", "", "stop once this file exists")
	started  = flag.String("started", "", "create this file once a stream and a request have completed")
	maxTime  = flag.Duration("duration", 5*time.Minute, "stop after this long in any case")
)

var (
	streamsOK, streamsFailed, h1OK, h1Failed int64
	gens                                     sync.Map
	logged                                   int64
)

func failure(kind string, err error) {
	if atomic.AddInt64(&logged, 1) <= 20 {
		log.Printf("%s failed: %v", kind, err)
	}
}

// get fetches url and checks the answer; it returns nil if all is well.
func get(ctx context.Context, c *http.Client, url, proto, want string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("body after %d bytes: %v", len(body), err)
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	if res.Proto != proto {
		return fmt.Errorf("protocol %s, not %s", res.Proto, proto)
	}
	if want != "" && string(body) != want {
		return fmt.Errorf("body of %d bytes, not the %d expected: %q", len(body), len(want), tail(string(body)))
	}
	if want == "" && !strings.HasPrefix(string(body), "hello from generation") {
		return fmt.Errorf("body %q", tail(string(body)))
	}
	gens.Store(res.Header.Get("X-Generation"), true)
	return nil
}

func tail(s string) string {
	if len(s) > 60 {
		return "..." + s[len(s)-60:]
	}
	return s
}

func main() {
	flag.Parse()
	log.SetPrefix("h2c_client: ")
	log.SetFlags(0)

	h2 := &http.Client{Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLS: func(network, addr string, _ *tls.Config) (net.Conn, error) {
			return net.Dial(network, addr)
		},
	}}
	h1c := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: *h1,
		ForceAttemptHTTP2:   false,
	}}
	var want strings.Builder
	for i := 0; i < *chunks; i++ {
		fmt.Fprintf(&want, "chunk %d of %d\n", i, *chunks)
	}
	streamURL := fmt.Sprintf("http://%s/stream?chunks=%d&ms=%d", *addr, *chunks, *interval)
	helloURL := fmt.Sprintf("http://%s/", *addr)

	var quit int32
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		deadline := time.Now().Add(*maxTime)
		for time.Now().Before(deadline) {
			select {
			case <-sig:
				atomic.StoreInt32(&quit, 1)
				return
			case <-time.After(50 * time.Millisecond):
			}
			if *stop != "" {
				if _, err := os.Stat(*stop); err == nil {
					break
				}
			}
		}
		atomic.StoreInt32(&quit, 1)
	}()

	var wg sync.WaitGroup
	// Stream i starts i/streams of a stream's length after the first, so
	// that streams start and end all the time, whenever a restart comes.
	loop := func(delay time.Duration, run func() error, ok, failed *int64, kind string) {
		defer wg.Done()
		time.Sleep(delay)
		for atomic.LoadInt32(&quit) == 0 {
			if err := run(); err != nil {
				atomic.AddInt64(failed, 1)
				failure(kind, err)
				time.Sleep(10 * time.Millisecond)
			} else {
				atomic.AddInt64(ok, 1)
			}
		}
	}
	ctx := context.Background()
	for i := 0; i < *streams; i++ {
		wg.Add(1)
		delay := time.Duration(i**chunks**interval / *streams) * time.Millisecond
		go loop(delay, func() error { return get(ctx, h2, streamURL, "HTTP/2.0", want.String()) },
			&streamsOK, &streamsFailed, "stream")
	}
	for i := 0; i < *h1; i++ {
		wg.Add(1)
		go loop(0, func() error {
			err := get(ctx, h1c, helloURL, "HTTP/1.1", "")
			time.Sleep(2 * time.Millisecond)
			return err
		}, &h1OK, &h1Failed, "HTTP/1.1 request")
	}
	if *started != "" {
		go func() {
			for atomic.LoadInt64(&streamsOK) == 0 || atomic.LoadInt64(&h1OK) == 0 {
				time.Sleep(20 * time.Millisecond)
			}
			os.WriteFile(*started, nil, 0o644)
		}()
	}
	wg.Wait()
	n := 0
	gens.Range(func(_, _ interface{}) bool { n++; return true })
	fmt.Printf("h2c_client: streams_ok=%d streams_failed=%d h1_ok=%d h1_failed=%d generations=%d\n",
		streamsOK, streamsFailed, h1OK, h1Failed, n)
}
