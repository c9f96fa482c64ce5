package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/fw/internal/fwlab"
)

// recvResult is what `rulesetlab recv` prints: VRRP packets seen on the wire
// (AF_PACKET, before netfilter) and delivered to a protocol-112 raw socket
// joined to the group (after netfilter, what keepalived gets).
type recvResult struct {
	Wire   int `json:"wire"`
	Socket int `json:"socket"`
}

// runRecv is the "recv" subcommand, run inside a lab namespace.
func runRecv(args []string) error {
	fs := flag.NewFlagSet("recv", flag.ContinueOnError)
	ifname := fs.String("i", "eth0", "interface")
	group := fs.String("g", "224.0.0.18", "multicast group to join")
	want := fs.Int("n", 3, "stop after this many packets on the wire")
	timeout := fs.Duration("t", 12*time.Second, "give up after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	grp, err := netip.ParseAddr(*group)
	if err != nil {
		return err
	}
	r, err := fwlab.NewReceiver(0, *ifname, grp)
	if err != nil {
		return err
	}
	defer r.Close()
	fmt.Fprintln(os.Stderr, "ready")
	deadline := time.Now().Add(*timeout)
	var stopAt time.Time
	for {
		now := time.Now()
		if now.After(deadline) || (!stopAt.IsZero() && now.After(stopAt)) {
			break
		}
		if err := r.Poll(100 * time.Millisecond); err != nil {
			return err
		}
		if r.Wire >= *want && stopAt.IsZero() {
			// Leave time for the last advert to reach the socket.
			stopAt = time.Now().Add(500 * time.Millisecond)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(recvResult{Wire: r.Wire, Socket: r.Socket})
}
