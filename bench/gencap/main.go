// Command gencap writes a synthetic VRRP capture for benchmarks:
//
//	go run ./bench/gencap -n 1000000 -o /tmp/bench.pcap
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/vrrpdoctor/vrrpdoctor/bench/gen"
)

func main() {
	n := flag.Int("n", 1000000, "number of VRRP adverts to write")
	out := flag.String("o", "", "output pcap file (required)")
	flag.Parse()
	if *out == "" || *n < 0 {
		fmt.Fprintln(os.Stderr, "usage: gencap [-n adverts] -o FILE")
		os.Exit(2)
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gencap:", err)
		os.Exit(1)
	}
	if err := gen.WritePcap(f, *n); err != nil {
		f.Close()
		fmt.Fprintln(os.Stderr, "gencap:", err)
		os.Exit(1)
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "gencap:", err)
		os.Exit(1)
	}
}
