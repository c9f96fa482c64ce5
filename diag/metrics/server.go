package metrics

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Server's defaults, used where its fields are zero.
const (
	DefaultReadTimeout    = 10 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultMaxHeaderBytes = 8 << 10
	DefaultMaxConns       = 16
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("metrics: server closed")

// Server serves /metrics and /healthz (see respond) over HTTP/1.1 without
// net/http: one request per connection, answered with Connection: close.
// The request line and headers must arrive within ReadTimeout and fit in
// MaxHeaderBytes; a request body is not read. At most MaxConns
// connections are served at once, further ones wait in the listener's
// backlog. Set the fields before Serve and do not change them after.
type Server struct {
	Collector      *Collector    // required
	Health         func() error  // nil: /healthz is always "ok"
	ReadTimeout    time.Duration // to read the request line and headers
	WriteTimeout   time.Duration // to write the response
	MaxHeaderBytes int           // request line and headers, CRLFs included
	MaxConns       int           // connections served at once

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]struct{}
	closing bool
	done    chan struct{} // closed by Shutdown
	wg      sync.WaitGroup
}

func (s *Server) init() {
	if s.done == nil {
		s.done = make(chan struct{})
		s.conns = map[net.Conn]struct{}{}
	}
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Serve accepts connections on ln and serves them until Shutdown, then
// returns ErrServerClosed; it returns other errors of ln.Accept that are
// not temporary. Serve closes ln when it returns.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.init()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.ln = ln
	s.mu.Unlock()
	defer ln.Close()

	slots := make(chan struct{}, orDefault(s.MaxConns, DefaultMaxConns))
	var backoff time.Duration
	for {
		select {
		case slots <- struct{}{}:
		case <-s.done:
			return ErrServerClosed
		}
		conn, err := ln.Accept()
		if err != nil {
			<-slots
			select {
			case <-s.done:
				return ErrServerClosed
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors and the like: wait, as
				// net/http does, rather than spin.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if !s.track(conn) {
			conn.Close()
			<-slots
			return ErrServerClosed
		}
		go func() {
			defer func() { <-slots }()
			defer s.untrack(conn)
			s.serveConn(conn)
		}()
	}
}

// isTemporary reports errors of Accept after which accepting may succeed
// again (EMFILE, ENFILE, ECONNABORTED ...).
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Shutdown closes the listener, so Serve returns, and waits for the
// responses in flight to be written. When ctx ends first it closes the
// remaining connections and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.init()
	if !s.closing {
		s.closing = true
		close(s.done)
		if s.ln != nil {
			s.ln.Close()
		}
	}
	s.mu.Unlock()
	finished := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-finished
		return ctx.Err()
	}
}

// respondSafely is respond, with a panic while building the answer (a bug
// in a collector or the health check) answered 500 instead of ending the
// VRRP daemon serving it.
func respondSafely(c *Collector, health func() error, method, path string) (resp response) {
	defer func() {
		if p := recover(); p != nil {
			resp = textResponse(500, fmt.Sprintf("500 internal server error: %v", p))
		}
	}()
	return respond(c, health, method, path)
}

// serveConn reads one request from c, answers it and closes c.
func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(orDefault(s.ReadTimeout, DefaultReadTimeout)))
	req, err := readRequest(c, orDefault(s.MaxHeaderBytes, DefaultMaxHeaderBytes))
	var resp response
	switch {
	case err == nil:
		health := s.Health
		if health == nil {
			health = func() error { return nil }
		}
		resp = respondSafely(s.Collector, health, req.method, req.path)
	case errors.Is(err, io.EOF):
		return // closed before sending anything: nothing to answer
	default:
		var re *requestError
		var ne net.Error
		switch {
		case errors.As(err, &re):
			resp = textResponse(re.status, fmt.Sprintf("%d %s: %s", re.status, statusText(re.status), re.msg))
		case errors.As(err, &ne) && ne.Timeout():
			resp = textResponse(408, "408 request timeout")
		default:
			return // the connection failed: nobody to answer
		}
	}
	c.SetWriteDeadline(time.Now().Add(orDefault(s.WriteTimeout, DefaultWriteTimeout)))
	if _, err := io.WriteString(c, resp.encode(req.method == "HEAD")); err != nil {
		return
	}
	// Closing with unread input (a body, or the rest of a bad request)
	// would send a reset that can destroy the response before the client
	// read it: end our side first and discard what still comes, briefly.
	if cw, ok := c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		c.SetReadDeadline(time.Now().Add(time.Second))
		io.CopyN(io.Discard, c, 256<<10)
	}
}

// statusText is the reason phrase of the status codes the server sends.
func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 503:
		return "Service Unavailable"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Status " + strconv.Itoa(code)
}

// encode is r as an HTTP/1.1 message; head leaves the body out but keeps
// its Content-Length, as a response to HEAD does.
func (r response) encode(head bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", r.status, statusText(r.status))
	fmt.Fprintf(&b, "Content-Type: %s\r\n", r.ctype)
	fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.body))
	if r.allow != "" {
		fmt.Fprintf(&b, "Allow: %s\r\n", r.allow)
	}
	b.WriteString("X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n")
	if !head {
		b.WriteString(r.body)
	}
	return b.String()
}

// request is what the server uses of an HTTP request.
type request struct {
	method string
	path   string // without the query
}

// requestError is a request the server answers with status and msg.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return fmt.Sprintf("%d: %s", e.status, e.msg) }

func badRequest(format string, args ...any) error {
	return &requestError{400, fmt.Sprintf(format, args...)}
}

// readRequest reads an HTTP/1.x request line and its header fields from
// r, at most limit bytes of them (431 beyond), and checks their syntax
// (RFC 9112 sections 3 and 5). It returns io.EOF when r ends before the
// first byte, a *requestError for a request to refuse and r's own error
// otherwise. The header fields' values are not used.
func readRequest(r io.Reader, limit int) (request, error) {
	lr := &io.LimitedReader{R: r, N: int64(limit)}
	br := bufio.NewReaderSize(lr, 1024)
	offset := 0
	line := func() (string, error) {
		s, err := br.ReadString('\n')
		offset += len(s)
		if err == io.EOF {
			switch {
			case lr.N == 0:
				return "", &requestError{431, fmt.Sprintf("request line and headers longer than %d bytes", limit)}
			case offset == 0:
				return "", io.EOF
			default:
				return "", badRequest("request ends at byte %d, before the end of its headers", offset)
			}
		}
		if err != nil {
			return "", err
		}
		s = strings.TrimSuffix(s[:len(s)-1], "\r")
		return s, nil
	}
	first, err := line()
	// RFC 9112 section 2.2: ignore empty lines before the request line.
	for n := 0; err == nil && first == "" && n < 4; n++ {
		first, err = line()
	}
	if err != nil {
		return request{}, err
	}
	req, err := parseRequestLine(first)
	if err != nil {
		return request{}, err
	}
	for {
		start := offset
		h, err := line()
		if err != nil {
			return request{}, err
		}
		if h == "" {
			return req, nil
		}
		if err := checkField(h); err != nil {
			return request{}, badRequest("header at byte %d: %v", start, err)
		}
	}
}

// parseRequestLine parses "method SP request-target SP HTTP-version".
func parseRequestLine(l string) (request, error) {
	method, rest, ok1 := strings.Cut(l, " ")
	target, version, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		return request{}, badRequest("request line %q: not method, target and version separated by single spaces", l)
	}
	if !isToken(method) {
		return request{}, badRequest("request line: method %q is not a token", method)
	}
	if len(version) != len("HTTP/1.1") || !strings.HasPrefix(version, "HTTP/") ||
		!isDigit(version[5]) || version[6] != '.' || !isDigit(version[7]) {
		return request{}, badRequest("request line: version %q is not HTTP/digit.digit", version)
	}
	if version[5] != '1' {
		return request{}, &requestError{505, fmt.Sprintf("version %s: only HTTP/1.x is served", version)}
	}
	for i := 0; i < len(target); i++ {
		if target[i] <= ' ' || target[i] >= 0x7f {
			return request{}, badRequest("request line: target has byte %#x at offset %d", target[i], i)
		}
	}
	path := target
	switch {
	case strings.HasPrefix(target, "/") || target == "*":
	case hasPrefixFold(target, "http://") || hasPrefixFold(target, "https://"):
		// Absolute form, as sent to proxies: the path follows the
		// authority.
		_, rest, _ := strings.Cut(target, "://")
		i := strings.IndexAny(rest, "/?#")
		switch {
		case i == 0 || rest == "":
			return request{}, badRequest("request line: target %q has no host", target)
		case i < 0:
			path = "/"
		case rest[i] == '/':
			path = rest[i:]
		default:
			path = "/" + rest[i:]
		}
	default:
		return request{}, badRequest("request line: target %q is neither a path nor an absolute URL", target)
	}
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	return request{method: method, path: path}, nil
}

// checkField checks "name: value" of a header field line.
func checkField(h string) error {
	name, value, ok := strings.Cut(h, ":")
	if !ok {
		return fmt.Errorf("%q has no colon", h)
	}
	if !isToken(name) {
		return fmt.Errorf("field name %q is not a token (obsolete line folding is refused)", name)
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
			return fmt.Errorf("field %s: control byte %#x in the value", name, c)
		}
	}
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
