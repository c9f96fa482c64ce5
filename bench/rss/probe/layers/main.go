// Command layers only imports github.com/google/gopacket/layers, whose
// init fills 65536-entry metadata tables: its cost, for bench/rss.sh.
package main

import (
	_ "github.com/google/gopacket/layers"

	"github.com/vrrpdoctor/vrrpdoctor/bench/rss/hwm"
)

func main() { hwm.Print() }
