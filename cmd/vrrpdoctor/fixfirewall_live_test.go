package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/fw/fix"
)

func TestDeliveryWatches(t *testing.T) {
	self := netip.MustParseAddr("198.51.100.2")
	ws, notes := deliveryWatches([]fix.Target{
		{Iface: "eth0", Family: 4, Group: netip.MustParseAddr("224.0.0.18")},
		{Iface: "eth0", Family: 4, Group: netip.MustParseAddr("224.0.0.18"), In: true}, // same watch
		{Iface: "eth1", Family: 6, Group: netip.MustParseAddr("ff02::12"), Out: true},  // outgoing only
		{Iface: "eth2", Family: 4, Group: netip.MustParseAddr("224.0.0.99")},
		{Iface: "eth3", Family: 4, Peers: []netip.Addr{netip.MustParseAddr("198.51.100.1")}, Self: self},
	})
	want := []deliveryWatch{{iface: "eth0", family: 4}, {iface: "eth3", family: 4, unicast: self}}
	if len(ws) != len(want) || ws[0] != want[0] || ws[1] != want[1] {
		t.Errorf("watches %+v, want %+v", ws, want)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "224.0.0.99 on eth2") {
		t.Errorf("notes %v", notes)
	}
}

func TestJudgeDelivery(t *testing.T) {
	peer := netip.MustParseAddr("198.51.100.1")
	for _, tc := range []struct {
		ds     []fix.Delivery
		failed bool
		note   string
	}{
		{nil, false, "not verified"},
		{[]fix.Delivery{{Interface: "eth0", Sender: peer, Wire: 5, Socket: 5}}, false, "198.51.100.1 on eth0: 5 on the wire, 5 reached the VRRP socket"},
		{[]fix.Delivery{{Interface: "eth0", Sender: peer, Wire: 5, Socket: 0}}, true, "0 reached"},
		{[]fix.Delivery{{Interface: "eth0", Sender: peer, Wire: 1, Socket: 0}}, false, "1 on the wire"},
	} {
		failed, notes := judgeDelivery(tc.ds, 3*time.Second)
		if failed != tc.failed || len(notes) == 0 || !strings.Contains(notes[0], tc.note) {
			t.Errorf("%+v: failed %v, notes %v", tc.ds, failed, notes)
		}
	}
}
