// Command vrrpdoctor diagnoses and fixes VRRP clusters (keepalived and friends):
// it shows why adverts that tcpdump sees never reach the VRRP daemon, names the
// firewall rule that drops them and prints the narrow fix.
package main

import (
	"os"
)

func main() {
	os.Exit(execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
