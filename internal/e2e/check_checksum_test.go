package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/vrrpdoctor/vrrpdoctor/internal/netlab"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// TestCheckChecksumMismatch: a's peer sends VRRPv3 adverts (VRID 51,
// priority 150, the cluster's address) whose checksum matches no variant —
// what a broken implementation or a corrupting path delivers. The peer is a
// raw protocol-112 socket in b's namespace writing vrrpcore-encoded adverts
// with a deliberately wrong checksum. keepalived on a discards them and
// becomes master too; check on a must say why: checksum-mismatch with the
// counts, and split-brain.
func TestCheckChecksumMismatch(t *testing.T) {
	t.Parallel()
	p := newCheckLab(t)
	group := netip.MustParseAddr("224.0.0.18")
	const interval = 250 * time.Millisecond

	adv := vrrpcore.Advert{Version: 3, VRID: 51, Priority: 150, Interval: interval, Addrs: []netip.Addr{vip}}
	if _, err := adv.AppendBinary(nil, addrB, group, vrrpcore.ChecksumPseudoHeader); err != nil {
		t.Fatal(err)
	}
	adv.Checksum ^= 0x0f0f
	msg, err := adv.AppendBinary(nil, addrB, group, vrrpcore.ChecksumBad)
	if err != nil {
		t.Fatal(err)
	}
	var back vrrpcore.Advert
	var ce *vrrpcore.ChecksumError
	if err := back.Decode(msg, addrB, group); !errors.As(err, &ce) {
		t.Fatalf("the crafted advert decodes with %v, want a checksum error", err)
	}

	// The socket is opened in b's namespace and keeps sending from there.
	var pc *ipv4.PacketConn
	must(t, p.b.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err := net.ListenPacket("ip4:112", addrB.String())
		if err != nil {
			return err
		}
		pc = ipv4.NewPacketConn(c)
		if err := pc.SetMulticastInterface(ifi); err != nil {
			c.Close()
			return fmt.Errorf("multicast interface: %w", err)
		}
		if err := pc.SetMulticastTTL(255); err != nil {
			c.Close()
			return fmt.Errorf("multicast TTL: %w", err)
		}
		return nil
	}))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		pc.Close()
	})
	var sendErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			if _, err := pc.WriteTo(msg, nil, &net.IPAddr{IP: group.AsSlice()}); err != nil {
				sendErr = err
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	k, err := p.a.StartKeepalivedConfig(netlab.KeepalivedConfig{RouterID: "a", Instances: []netlab.VRRPInstance{defaultInstance(1)}})
	must(t, err)
	p.ka = k
	must(t, k.WaitState(15*time.Second, "VI_51", "MASTER"))
	p.waitHolders(t, p.a)

	r, raw, _ := checkNode(t, p.lab, p.a, nil, "a")
	cancel()
	wg.Wait()
	if sendErr != nil {
		t.Fatalf("sending the crafted adverts: %v", sendErr)
	}
	nodeWant{exit: 2, ids: []string{"checksum-mismatch/warning", "split-brain/critical"}, text: "carry a checksum that matches no variant"}.verify(t, "a", r, raw)
	if f := r.find("checksum-mismatch"); f != nil {
		ev := f.evidence("peer")
		if !strings.HasSuffix(ev, " bad, 0 message-only, 0 pseudo-header") || strings.HasPrefix(ev, "0 ") {
			t.Errorf("a: checksum-mismatch evidence %q, want only bad checksums", ev)
		}
	}
	if f := r.find("split-brain"); f != nil && !strings.Contains(f.Summary, "198.51.100.2") {
		t.Errorf("a: split-brain does not name the sender: %s", f.Summary)
	}
}
