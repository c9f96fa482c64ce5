// Command prometheus only imports github.com/prometheus/client_golang's
// prometheus package (its default registry, with the Go and process
// collectors, is built at init): its cost, for bench/rss.sh.
package main

import (
	_ "github.com/prometheus/client_golang/prometheus"

	"github.com/vrrpdoctor/vrrpdoctor/bench/rss/hwm"
)

func main() { hwm.Print() }
