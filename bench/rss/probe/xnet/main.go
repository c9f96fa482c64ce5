// Command xnet only imports golang.org/x/net/ipv4 and ipv6 (which the
// runtime's sockets use): their cost at init, for bench/rss.sh.
package main

import (
	_ "golang.org/x/net/ipv4"
	_ "golang.org/x/net/ipv6"

	"github.com/vrrpdoctor/vrrpdoctor/bench/rss/hwm"
)

func main() { hwm.Print() }
