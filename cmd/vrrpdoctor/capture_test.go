package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/capture/hostfacts"
)

var (
	capStart = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	capPeer  = netip.MustParseAddr("198.51.100.1")
	capSelf  = netip.MustParseAddr("198.51.100.2")
)

// capStats is a finished capture: the peer's adverts never reached the
// socket, our probe could not be sent.
func capStats() capture.SessionStats {
	c := capture.NewCorrelator(capture.CorrelatorOptions{})
	for i := range 5 {
		p := &capture.Packet{Time: capStart.Add(time.Duration(i) * time.Second), Direction: capture.DirIn, Family: 4, Src: capPeer,
			Dst: netip.MustParseAddr("224.0.0.18"), TTL: 255, IPID: uint16(10 + i), Length: 20}
		p.Advert.Version, p.Advert.VRID, p.Advert.Priority, p.Advert.Interval = 2, 51, 150, time.Second
		c.AddWire("eth0", p, false)
		c.AddSend(capture.SendAttempt{Time: p.Time, Interface: "eth0", VRID: 254, Src: capSelf, Dst: p.Dst, Err: syscall.EPERM})
	}
	c.Advance(capStart.Add(time.Hour))
	return capture.SessionStats{
		Snapshot: c.Snapshot(), Interface: "eth0", Start: capStart, Now: capStart.Add(5 * time.Second),
		Frames:  5,
		Wire:    capture.WireStats{Received: 6},
		Sockets: []capture.SocketStatus{{Family: 4, Open: true}, {Family: 6, Open: false, Error: "no IPv6"}},
	}
}

func capFacts() *hostfacts.Facts {
	return &hostfacts.Facts{
		Interface: hostfacts.Interface{Name: "eth0", Index: 2, MTU: 1500, Up: true, LowerUp: true, Multicast: true, OperState: "up",
			Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.2/24")}},
		Memberships: []hostfacts.Membership{{Ifindex: 2, Interface: "eth0", Group: netip.MustParseAddr("224.0.0.18"), Users: 1}},
		JoinedVRRP4: true,
		RPFilter:    hostfacts.RPFilter{All: 1, Interface: 1, Effective: 1},
		Senders:     []hostfacts.SenderCheck{{Sender: capPeer, Accepted: false, Reason: "invalid argument", RPFilterDrop: true}},
		Tables:      hostfacts.Tables{Legacy4: []string{"raw"}, Nft: []string{"inet firewalld"}},
		Keepalived:  []hostfacts.KeepalivedProcess{{PID: 42, Parent: true, Config: "/etc/keepalived/keepalived.conf", SameNetns: true, SameNetnsKnown: true}},
	}
}

func TestCaptureSummaryText(t *testing.T) {
	var b bytes.Buffer
	if err := writeCaptureSummary(&b, capStats(), capFacts(), "x.pcapng"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"VRRP on eth0 for 5s (10:00:00.000 to 10:00:05.000)",
		"wire tap: 5 frames, 0 dropped by the kernel; IPv4 socket: 0 received, 0 dropped; IPv6 socket not open: no IPv6",
		"wire tap written to x.pcapng",
		"in   IPv4  51    198.51.100.1  2    150   1.00s     5     0       0%         5              1.00s    10:00:04.000",
		"out  IPv4  254   198.51.100.2  0    0     -         0     -       -          -              -",
		"- none of the 5 adverts from 198.51.100.1 (VRID 51) that reached the wire reached the socket: rp_filter (strict on eth0) drops them: there is no route back to it",
		"- 5 of 5 adverts for VRID 254 from 198.51.100.2 could not be sent (operation not permitted): a netfilter OUTPUT rule drops VRRP; 0 left on the wire",
		"latest events (10 in all):",
		"10:00:04.000 not-delivered in VRID 51 198.51.100.1 IP ID 14",
		"10:00:00.000 send-failed out VRID 254 198.51.100.2: operation not permitted",
		"host: eth0 <UP,LOWER_UP,MULTICAST> mtu 1500 state up 198.51.100.2/24",
		"rp_filter: strict (all 1, default 0, eth0 1)",
		"sender 198.51.100.1: no route back, dropped by rp_filter (invalid argument)",
		"iptables-legacy tables: IPv4 raw, IPv6 none (beside nftables: a packet must pass both)",
		"keepalived in this network namespace: pid 42 config /etc/keepalived/keepalived.conf",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestCaptureSummaryJSON(t *testing.T) {
	var b bytes.Buffer
	if err := writeCaptureJSON(&b, capStats(), capFacts()); err != nil {
		t.Fatal(err)
	}
	var r struct {
		Interface string
		Flows     []struct {
			Direction     string   `json:"direction"`
			VRID          int      `json:"vrid"`
			Sender        string   `json:"sender"`
			NotDelivered  int      `json:"not_delivered"`
			DeliveryRatio *float64 `json:"delivery_ratio"`
			SendErrors    int      `json:"send_errors"`
			Wire          struct {
				Packets   int     `json:"packets"`
				GapMeanMs float64 `json:"gap_mean_ms"`
			} `json:"wire"`
		} `json:"flows"`
		EventCount int `json:"event_count"`
		Host       struct {
			RPFilter struct {
				Mode string `json:"mode"`
			} `json:"rp_filter"`
			Senders []struct {
				RPFilterDrop bool `json:"rp_filter_drop"`
			} `json:"senders"`
		} `json:"host"`
	}
	if err := json.Unmarshal(b.Bytes(), &r); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if len(r.Flows) != 2 || r.EventCount != 10 {
		t.Fatalf("%s", b.String())
	}
	in, out := r.Flows[0], r.Flows[1]
	if in.Direction != "in" || in.Sender != "198.51.100.1" || in.Wire.Packets != 5 || in.NotDelivered != 5 || in.DeliveryRatio == nil || *in.DeliveryRatio != 0 || in.Wire.GapMeanMs != 1000 {
		t.Errorf("incoming flow %+v", in)
	}
	if out.Direction != "out" || out.VRID != 254 || out.SendErrors != 5 || out.DeliveryRatio != nil {
		t.Errorf("outgoing flow %+v", out)
	}
	if r.Host.RPFilter.Mode != "strict" || len(r.Host.Senders) != 1 || !r.Host.Senders[0].RPFilterDrop {
		t.Errorf("host %+v", r.Host)
	}
}

func TestCaptureLiveTable(t *testing.T) {
	st := capStats()
	var pipe bytes.Buffer
	l := &liveTable{out: &pipe}
	l.update(st)
	l.update(st) // nothing changed: nothing printed
	lines := strings.Split(strings.TrimSpace(pipe.String()), "\n")
	if len(lines) != 2 || lines[0] != "10:00:05.000 in IPv4 VRID 51 198.51.100.1 prio 150: wire 5 socket 0 delivered 0%" ||
		lines[1] != "10:00:05.000 out IPv4 VRID 254 198.51.100.2 prio 0: wire 0 sends 5 failed 5" {
		t.Errorf("pipe output:\n%s", pipe.String())
	}

	var term bytes.Buffer
	l = &liveTable{out: &term, tty: true}
	l.update(st)
	first := term.Len()
	if strings.Contains(term.String(), "\x1b[") || l.lines != 4 {
		t.Errorf("first draw (%d lines): %q", l.lines, term.String())
	}
	l.update(st)
	if !strings.HasPrefix(term.String()[first:], "\x1b[4A\x1b[J") {
		t.Errorf("redraw does not move up over the table: %q", term.String()[first:])
	}
	l.clear()
	if !strings.HasSuffix(term.String(), "\x1b[4A\x1b[J") || l.lines != 0 {
		t.Errorf("clear: %q", term.String())
	}
}

func TestCaptureUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"capture"}, "capture: name the interface with -i IFACE"},
		{[]string{"capture", "-i", "eth0", "--peer", "nope"}, `capture: --peer "nope": not an IP address`},
		{[]string{"capture", "-i", "eth0", "--refresh", "0s"}, "capture: --refresh 0s: must be positive"},
		{[]string{"capture", "-i", "eth0", "--probe-vrid", "300"}, `invalid argument "300"`},
		{[]string{"capture", "-i", "eth0", "--unicast-src", "198.51.100.2"}, "capture: --unicast-src needs --peer"},
		{[]string{"capture", "-i", "eth0", "--peer", "198.51.100.1", "--unicast-src", "2001:db8::2"}, "capture: --unicast-src 2001:db8::2 and --peer 198.51.100.1 are of different address families"},
	} {
		var out, errOut bytes.Buffer
		code := execute(tc.args, nil, &out, &errOut)
		if code != 3 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 3 and %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}
