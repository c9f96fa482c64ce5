// Command nethttp only imports net/http (with crypto/tls behind it), which
// a /metrics endpoint needs: its cost at init, for bench/rss.sh.
package main

import (
	_ "net/http"

	"github.com/vrrpdoctor/vrrpdoctor/bench/rss/hwm"
)

func main() { hwm.Print() }
