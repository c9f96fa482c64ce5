// Command promhttp imports github.com/prometheus/client_golang's promhttp
// (and with it prometheus and net/http), as a /metrics endpoint does: its
// cost at init, for bench/rss.sh.
package main

import (
	_ "github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vrrpdoctor/vrrpdoctor/bench/rss/hwm"
)

func main() { hwm.Print() }
