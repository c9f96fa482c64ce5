package metrics

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// startServer serves s on a loopback port and returns its address. The
// cleanup shuts s down and checks that Serve returned ErrServerClosed.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	if s.Collector == nil {
		s.Collector = New(newFake().sources(), BuildInfo{Version: "dev"})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// exchange sends raw on a new connection and returns all the server sent
// until it closed the connection.
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	return exchangeWith(t, addr, raw, false)
}

func exchangeWith(t *testing.T, addr, raw string, halfClose bool) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	if halfClose {
		c.(*net.TCPConn).CloseWrite()
	}
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the response to %q: %v (read %q)", raw, err, out)
	}
	return string(out)
}

// parseResponse reads raw with net/http's client-side parser, an
// implementation independent of the server's.
func parseResponse(t *testing.T, raw, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("response does not parse: %v\n%q", err, raw)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("response body: %v\n%q", err, raw)
	}
	return resp, string(body)
}

func TestServeRequests(t *testing.T) {
	var healthErr error
	addr := startServer(t, &Server{Health: func() error { return healthErr }})
	long := "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", DefaultMaxHeaderBytes) + "\r\n\r\n"
	for _, tc := range []struct {
		name, raw  string
		status     int
		ctype      string
		allow      string
		bodyPrefix string
	}{
		{"metrics", "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n\r\n", 200, ContentType, "", "# HELP "},
		{"metrics HTTP/1.0 LF only", "GET /metrics HTTP/1.0\n\n", 200, ContentType, "", "# HELP "},
		{"query ignored", "GET /healthz?verbose=1 HTTP/1.1\r\nHost: x\r\n\r\n", 200, textPlain, "", "ok\n"},
		{"absolute form", "GET http://198.51.100.1:9712/healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200, textPlain, "", "ok\n"},
		{"index", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 200, "text/html; charset=utf-8", "", "<html>"},
		{"unknown path", "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n", 404, textPlain, "", "404 page not found"},
		{"unknown path, other method", "POST /nothing HTTP/1.1\r\nHost: x\r\n\r\n", 404, textPlain, "", "404"},
		{"POST with a body", "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 405, textPlain, "GET, HEAD", "405"},
		{"DELETE", "DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 405, textPlain, "GET, HEAD", "405"},
		{"lower-case method", "get /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 405, textPlain, "GET, HEAD", "405"},
		{"no version", "GET /metrics\r\n\r\n", 400, textPlain, "", "400 Bad Request: request line"},
		{"double space", "GET  /metrics HTTP/1.1\r\n\r\n", 400, textPlain, "", "400"},
		{"bad method", "G@T /metrics HTTP/1.1\r\n\r\n", 400, textPlain, "", "400"},
		{"bad version", "GET /metrics HTTP/x\r\n\r\n", 400, textPlain, "", "400"},
		{"HTTP/2.0", "GET /metrics HTTP/2.0\r\n\r\n", 505, textPlain, "", "505"},
		{"relative target", "GET metrics HTTP/1.1\r\n\r\n", 400, textPlain, "", "400"},
		{"control byte in target", "GET /met\x01rics HTTP/1.1\r\n\r\n", 400, textPlain, "", "400"},
		{"header without colon", "GET /metrics HTTP/1.1\r\nHost x\r\n\r\n", 400, textPlain, "", "400 Bad Request: header at byte 23"},
		{"folded header", "GET /metrics HTTP/1.1\r\nHost: x\r\n continued\r\n\r\n", 400, textPlain, "", "400"},
		{"ends inside the headers", "GET /metrics HTTP/1.1\r\nHost: x\r\n", 400, textPlain, "", "400"},
		{"oversized headers", long, 431, textPlain, "", "431 Request Header Fields Too Large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.raw
			if tc.name == "ends inside the headers" {
				// Half-close: the server sees the end of the request.
				raw = exchangeHalfClosed(t, addr, tc.raw)
			} else {
				raw = exchange(t, addr, tc.raw)
			}
			resp, body := parseResponse(t, raw, "GET")
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != tc.ctype ||
				resp.Header.Get("Allow") != tc.allow || !strings.HasPrefix(body, tc.bodyPrefix) {
				t.Errorf("got %d, Content-Type %q, Allow %q, body %.80q; want %d, %q, %q, %q...",
					resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Allow"), body,
					tc.status, tc.ctype, tc.allow, tc.bodyPrefix)
			}
			// net/http takes the Connection header out into Close.
			if !resp.Close || !strings.Contains(raw, "\r\nConnection: close\r\n") {
				t.Errorf("no Connection: close: %q", raw)
			}
			if resp.ContentLength != int64(len(body)) {
				t.Errorf("Content-Length %d, body %d bytes", resp.ContentLength, len(body))
			}
		})
	}

	// HEAD: the headers of GET, Content-Length included, and no body.
	get, getBody := parseResponse(t, exchange(t, addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), "GET")
	raw := exchange(t, addr, "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if !strings.HasSuffix(raw, "\r\n\r\n") {
		t.Errorf("HEAD response has a body: %q", raw)
	}
	head, _ := parseResponse(t, raw, "HEAD")
	if head.StatusCode != 200 || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") ||
		head.Header.Get("Content-Length") != strconv.Itoa(len(getBody)) {
		t.Errorf("HEAD: %d %v; GET: %v, %d bytes", head.StatusCode, head.Header, get.Header, len(getBody))
	}
	raw = exchange(t, addr, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
	if head, _ := parseResponse(t, raw, "HEAD"); head.StatusCode != 200 || head.ContentLength < 100 || !strings.HasSuffix(raw, "\r\n\r\n") {
		t.Errorf("HEAD /metrics: %q", raw)
	}

	healthErr = errors.New("main loop stalled\nfor 1m0s")
	resp, body := parseResponse(t, exchange(t, addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), "GET")
	if resp.StatusCode != 503 || body != "unhealthy: main loop stalled for 1m0s\n" {
		t.Errorf("/healthz unhealthy: %d %q", resp.StatusCode, body)
	}

	// A connection closed before sending anything gets no answer.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if out, err := io.ReadAll(c); err != nil || len(out) != 0 {
		t.Errorf("empty request: %q, %v", out, err)
	}
	c.Close()
}

// exchangeHalfClosed is exchange, ending the request with a half-close.
func exchangeHalfClosed(t *testing.T, addr, raw string) string {
	t.Helper()
	return exchangeWith(t, addr, raw, true)
}

// TestServeScrape scrapes /metrics with net/http's client, asking for
// gzip as Prometheus does, and parses the page with Prometheus's parser.
func TestServeScrape(t *testing.T) {
	c := New(newFake().sources(), BuildInfo{Version: "dev"})
	addr := startServer(t, &Server{Collector: c})
	req, err := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=0.9,*/*;q=0.1")
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("User-Agent", "Prometheus/3.0.0")
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ContentType || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	fams, err := parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	var want bytes.Buffer
	c.WriteTo(&want)
	wantFams, err := parse(&want)
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range wantFams {
		if findFamily(fams, mf.GetName()) == nil {
			t.Errorf("scrape lacks %s", mf.GetName())
		}
	}
	if findFamily(fams, "process_resident_memory_bytes") == nil {
		t.Error("scrape lacks process_resident_memory_bytes")
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestServePanic: a panic while answering (here in the health check) is
// answered 500, and the server goes on serving.
func TestServePanic(t *testing.T) {
	c := New(newFake().sources(), BuildInfo{Version: "dev"})
	addr := startServer(t, &Server{Collector: c, Health: func() error { panic("broken check") }})
	if got := exchange(t, addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 500 ") || !strings.Contains(got, "broken check") {
		t.Fatalf("panicking health check answered:\n%s", got)
	}
	if got := exchange(t, addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 200 ") {
		t.Fatalf("after the panic /metrics answered:\n%s", got)
	}
}

// TestServeSlowClient: a client that sends its request too slowly, even
// a byte at a time, gets 408 when ReadTimeout has passed and is closed.
func TestServeSlowClient(t *testing.T) {
	const timeout = 300 * time.Millisecond
	addr := startServer(t, &Server{ReadTimeout: timeout})
	for _, trickle := range []bool{false, true} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.SetDeadline(start.Add(20 * time.Second))
		io.WriteString(c, "GET /metrics HTTP/1.1\r\n")
		stop := make(chan struct{})
		if trickle {
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
						if _, err := io.WriteString(c, "X"); err != nil {
							return
						}
					}
				}
			}()
		}
		out, _ := io.ReadAll(c)
		close(stop)
		took := time.Since(start)
		c.Close()
		if took < timeout || took > 15*time.Second {
			t.Errorf("trickle %v: closed after %v, timeout %v", trickle, took, timeout)
		}
		if resp, _ := parseResponse(t, string(out), "GET"); resp.StatusCode != 408 {
			t.Errorf("trickle %v: status %d, want 408", trickle, resp.StatusCode)
		}
	}
}

// waitConns waits until s serves n connections.
func waitConns(t *testing.T, s *Server, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		s.mu.Lock()
		got := len(s.conns)
		s.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections served, want %d", got, n)
		}
	}
}

// TestServeMaxConns: with MaxConns connections open, the next one is
// served only when one of them ends.
func TestServeMaxConns(t *testing.T) {
	s := &Server{MaxConns: 1}
	addr := startServer(t, s)
	a, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	io.WriteString(a, "GET /healthz HTTP/1.1\r\n")
	waitConns(t, s, 1)

	b, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	io.WriteString(b, "GET /healthz HTTP/1.1\r\n\r\n")
	b.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := b.Read(make([]byte, 1)); n != 0 || !errors.Is(err, deadlineErr(err)) {
		t.Fatalf("second connection answered while the first is open: %d, %v", n, err)
	}
	io.WriteString(a, "\r\n") // a's request is complete: a ends, b is served
	for name, c := range map[string]net.Conn{"first": a, "second": b} {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		out, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if resp, _ := parseResponse(t, string(out), "GET"); resp.StatusCode != 200 {
			t.Errorf("%s: status %d", name, resp.StatusCode)
		}
	}
}

// deadlineErr is err when it is a timeout, nil otherwise.
func deadlineErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	return nil
}

// TestServeShutdown: Shutdown closes the listener at once and lets the
// response in flight finish.
func TestServeShutdown(t *testing.T) {
	s := &Server{Collector: New(newFake().sources(), BuildInfo{Version: "dev"})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /metrics HTTP/1.1\r\n")
	waitConns(t, s, 1)

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	select {
	case err := <-served:
		if !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	if c2, err := net.Dial("tcp", addr); err == nil {
		c2.Close()
		t.Error("the listener still accepts after Shutdown")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	io.WriteString(c, "Host: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := parseResponse(t, string(out), "GET"); resp.StatusCode != 200 || !strings.Contains(body, "vrrpdoctor_") {
		t.Errorf("in-flight response: %d %.80q", resp.StatusCode, body)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	// A second Shutdown and a Serve after it return at once.
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln2); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

// TestServeShutdownTimeout: when ctx ends first, Shutdown closes the
// connections still open and returns ctx's error.
func TestServeShutdownTimeout(t *testing.T) {
	s := &Server{Collector: New(newFake().sources(), BuildInfo{Version: "dev"})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /metrics HTTP/1.1\r\n")
	waitConns(t, s, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want DeadlineExceeded", err)
	}
	waitConns(t, s, 0)
}

func TestReadRequest(t *testing.T) {
	for _, tc := range []struct {
		in           string
		method, path string
		status       int // of the requestError; 0: none
	}{
		{"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/metrics", 0},
		{"\r\nHEAD /a/b?c#d HTTP/1.0\r\n\r\n", "HEAD", "/a/b", 0},
		{"OPTIONS * HTTP/1.1\r\n\r\n", "OPTIONS", "*", 0},
		{"GET HTTP://h HTTP/1.1\r\n\r\n", "GET", "/", 0},
		{"GET http://h?x HTTP/1.1\r\n\r\n", "GET", "/", 0},
		{"GET http:///x HTTP/1.1\r\n\r\n", "", "", 400},
		{"GET ftp://h/x HTTP/1.1\r\n\r\n", "", "", 400},
		{"GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n", "", "", 400},
		{"GET / HTTP/1.1\r\n: b\r\n\r\n", "", "", 400},
		{"GET / HTTP/1.1 \r\n\r\n", "", "", 400},
		{"GET / HTTP/3.0\r\n\r\n", "", "", 505},
		{"GET / HTTP/1.1\r\n" + strings.Repeat("A: b\r\n", 100), "", "", 431},
	} {
		req, err := readRequest(strings.NewReader(tc.in), 256)
		var re *requestError
		status := 0
		if errors.As(err, &re) {
			status = re.status
		} else if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if status != tc.status || req.method != tc.method || req.path != tc.path {
			t.Errorf("%q: %q %q, status %d (%v); want %q %q, %d", tc.in, req.method, req.path, status, err, tc.method, tc.path, tc.status)
		}
	}
	if _, err := readRequest(strings.NewReader(""), 256); err != io.EOF {
		t.Errorf("empty input: %v, want io.EOF", err)
	}
}

// FuzzReadRequest: any input gives a request or a clear error, never a
// panic, and a request read is one that can be written again and read
// back the same.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9712\r\nAccept-Encoding: gzip\r\n\r\n"))
	f.Add([]byte("HEAD http://h/healthz?x HTTP/1.0\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := readRequest(bytes.NewReader(data), 512)
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) && err != io.EOF {
				t.Fatalf("error of an unexpected kind: %v", err)
			}
			if re != nil && (re.status < 400 || re.status > 599 || re.msg == "") {
				t.Fatalf("requestError %+v", re)
			}
			return
		}
		if !isToken(req.method) || !strings.HasPrefix(req.path, "/") && req.path != "*" {
			t.Fatalf("request %+v", req)
		}
		again, err := readRequest(strings.NewReader(req.method+" "+req.path+" HTTP/1.1\r\n\r\n"), 1024)
		if err != nil || again != req {
			t.Fatalf("%+v written and read again: %+v, %v", req, again, err)
		}
	})
}
