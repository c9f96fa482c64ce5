package main

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vrrpdoctor/vrrpdoctor/capture"
	"github.com/vrrpdoctor/vrrpdoctor/fw/fix"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
)

// deliveryWatch is one interface and family to watch after --apply.
type deliveryWatch struct {
	iface   string
	family  uint8
	unicast netip.Addr // this node's unicast address, invalid for multicast
}

// deliveryWatches lists what to watch: the incoming adverts of the targets
// (the socket tap joins only the standard groups, so other groups are left
// out with a note).
func deliveryWatches(targets []fix.Target) (ws []deliveryWatch, notes []string) {
	for _, t := range targets {
		if t.Out && !t.In {
			continue
		}
		w := deliveryWatch{iface: t.Iface, family: uint8(t.Family)}
		if len(t.Peers) > 0 {
			w.unicast = t.Self
		} else if t.Group != keepalived.DefaultMcastGroup4 && t.Group != keepalived.DefaultMcastGroup6 {
			notes = append(notes, fmt.Sprintf("delivery to the socket not checked for group %s on %s (the tap joins only 224.0.0.18 and ff02::12)", t.Group, t.Iface))
			continue
		}
		if !slices.Contains(ws, w) {
			ws = append(ws, w)
		}
	}
	return ws, notes
}

// watchDelivery watches each interface for up to wait and returns, per
// sender, the adverts seen on the wire and delivered to a raw socket as
// keepalived's. It ends early once every sender seen on the wire got at
// least two adverts to the socket.
func watchDelivery(ctx context.Context, ws []deliveryWatch, wait time.Duration) ([]fix.Delivery, error) {
	var out []fix.Delivery
	for _, w := range ws {
		so := capture.SessionOptions{Interface: w.iface, Families: []uint8{w.family}}
		if w.unicast.IsValid() {
			so.Socket.Unicast = w.unicast
		}
		sess, err := capture.StartSession(so)
		if err != nil {
			return out, fmt.Errorf("watching %s: %w", w.iface, err)
		}
		deadline := time.Now().Add(wait)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			if delivered(incoming(sess.Stats().Flows)) {
				break
			}
		}
		st, err := sess.Stop()
		if err != nil {
			return out, fmt.Errorf("watching %s: %w", w.iface, err)
		}
		for _, f := range incoming(st.Flows) {
			out = append(out, fix.Delivery{Interface: f.Interface, Family: f.Family, Sender: f.Sender, Wire: f.Wire.Packets, Socket: f.Socket.Packets})
		}
	}
	return out, nil
}

func incoming(flows []capture.FlowStats) []capture.FlowStats {
	var in []capture.FlowStats
	for _, f := range flows {
		if f.Direction == capture.DirIn {
			in = append(in, f)
		}
	}
	return in
}

// delivered reports whether some sender's adverts reach the socket and
// every sender seen on the wire got at least two there.
func delivered(flows []capture.FlowStats) bool {
	if len(flows) == 0 {
		return false
	}
	for _, f := range flows {
		if f.Socket.Packets < 2 {
			return false
		}
	}
	return true
}

// judgeDelivery tells whether the live check failed (adverts on the wire,
// none to the socket) and describes what was seen.
func judgeDelivery(ds []fix.Delivery, wait time.Duration) (failed bool, notes []string) {
	if len(ds) == 0 {
		return false, []string{fmt.Sprintf("no advert from another router arrived within %v: delivery to the VRRP socket not verified (is the peer running and master?)", wait)}
	}
	for _, d := range ds {
		notes = append(notes, fmt.Sprintf("adverts from %s on %s: %d on the wire, %d reached the VRRP socket", d.Sender, d.Interface, d.Wire, d.Socket))
		if d.Wire >= 2 && d.Socket == 0 {
			failed = true
		}
	}
	return failed, notes
}
