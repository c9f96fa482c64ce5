package metrics

import (
	"os"
	"strconv"
	"strings"
)

// ContentType is the exposition format's media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// textPlain is the media type of /healthz and of the error pages.
const textPlain = "text/plain; charset=utf-8"

// response is one answer of the server, before it is written.
type response struct {
	status int
	ctype  string
	allow  string // the Allow header of a 405
	body   string
}

// textResponse is a text/plain response whose body is msg and a newline.
func textResponse(status int, msg string) response {
	return response{status: status, ctype: textPlain, body: msg + "\n"}
}

// respond answers method on path: /metrics (the Collector's metrics,
// then the process's: process_cpu_seconds_total,
// process_resident_memory_bytes, ...), /healthz from health (200 "ok"
// while it returns nil, 503 with the error's text on one line otherwise)
// and an index page on /. Other paths are 404, other methods than GET and
// HEAD 405.
func respond(c *Collector, health func() error, method, path string) response {
	switch path {
	case "/metrics", "/healthz", "/":
	default:
		return textResponse(404, "404 page not found")
	}
	if method != "GET" && method != "HEAD" {
		r := textResponse(405, "405 method not allowed")
		r.allow = "GET, HEAD"
		return r
	}
	switch path {
	case "/metrics":
		var b strings.Builder
		if _, err := c.WriteTo(&b); err != nil {
			return textResponse(500, err.Error())
		}
		writeProcess(&b, "/proc/self")
		return response{status: 200, ctype: ContentType, body: b.String()}
	case "/healthz":
		if err := health(); err != nil {
			return textResponse(503, "unhealthy: "+strings.ReplaceAll(err.Error(), "\n", " "))
		}
		return textResponse(200, "ok")
	default:
		return response{status: 200, ctype: "text/html; charset=utf-8",
			body: `<html><body><h1>vrrpdoctor</h1><p><a href="/metrics">/metrics</a> <a href="/healthz">/healthz</a></p></body></html>` + "\n"}
	}
}

// userHZ is the unit of the CPU times in /proc/PID/stat.
const userHZ = 100

// writeProcess writes the standard process metrics of the process whose
// /proc directory is dir, as client_golang's process collector names them.
// What cannot be read is left out.
func writeProcess(b *strings.Builder, dir string) {
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return
	}
	// Fields after the command name, which may hold spaces: state is
	// field 3 of proc(5), so f[i] is field i+3.
	_, rest, ok := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 22 {
		return
	}
	num := func(i int) float64 {
		v, _ := strconv.ParseFloat(f[i], 64)
		return v
	}
	one := func(d desc, v float64) {
		writeFamily(b, &family{d: d, series: []series{{nil, v}}})
	}
	one(desc{"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", counter, nil}, (num(11)+num(12))/userHZ)
	one(desc{"process_resident_memory_bytes", "Resident memory size in bytes.", gauge, nil}, num(21)*float64(os.Getpagesize()))
	one(desc{"process_virtual_memory_bytes", "Virtual memory size in bytes.", gauge, nil}, num(20))
	if bt := bootTime(); bt > 0 {
		one(desc{"process_start_time_seconds", "Start time of the process since unix epoch in seconds.", gauge, nil}, bt+num(19)/userHZ)
	}
	if fds, err := os.ReadDir(dir + "/fd"); err == nil {
		one(desc{"process_open_fds", "Number of open file descriptors.", gauge, nil}, float64(len(fds)))
	}
}

// bootTime reads the boot time from /proc/stat, in seconds since the
// epoch; 0 when it cannot.
func bootTime() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return n
		}
	}
	return 0
}
