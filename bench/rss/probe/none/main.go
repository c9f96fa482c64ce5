// Command none imports nothing but the reporting helper: the peak RSS of
// an empty Go program, the baseline bench/rss.sh subtracts from the other
// probes.
package main

import "github.com/vrrpdoctor/vrrpdoctor/bench/rss/hwm"

func main() { hwm.Print() }
