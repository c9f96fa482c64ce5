// Command gopacket only imports github.com/google/gopacket: its cost at
// init, for bench/rss.sh.
package main

import (
	_ "github.com/google/gopacket"

	"github.com/vrrpdoctor/vrrpdoctor/bench/rss/hwm"
)

func main() { hwm.Print() }
