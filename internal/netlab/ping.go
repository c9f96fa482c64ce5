package netlab

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Ping sends ICMP echo requests from the host to dst, one per 200 ms, until
// a matching reply arrives or timeout passes. A link-local dst needs a zone
// (see LinkLocal).
func (h *Host) Ping(dst netip.Addr, timeout time.Duration) error {
	network, listen := "ip4:icmp", "0.0.0.0"
	var typ icmp.Type = ipv4.ICMPTypeEcho
	proto := 1
	if dst.Is6() && !dst.Is4In6() {
		network, listen, typ, proto = "ip6:ipv6-icmp", "::", ipv6.ICMPTypeEchoRequest, 58
	}
	var conn *icmp.PacketConn
	zone := dst.Zone()
	if err := h.Do(func() error {
		if zone != "" {
			// Interface names mean the host's interfaces: resolve here.
			ifi, err := net.InterfaceByName(zone)
			if err != nil {
				return err
			}
			zone = strconv.Itoa(ifi.Index)
		}
		var err error
		conn, err = icmp.ListenPacket(network, listen)
		return err
	}); err != nil {
		return fmt.Errorf("netlab: ping from %s: %w", h.name, err)
	}
	defer conn.Close()

	id := os.Getpid() & 0xffff
	payload := []byte("vrrpdoctor netlab ping")
	to := &net.IPAddr{IP: net.IP(dst.AsSlice()), Zone: zone}
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1500)
	for seq := 1; time.Now().Before(deadline); seq++ {
		msg, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: payload}}).Marshal(nil)
		if err != nil {
			return fmt.Errorf("netlab: ping: %w", err)
		}
		if _, err := conn.WriteTo(msg, to); err != nil {
			return fmt.Errorf("netlab: ping %v from %s: %w", dst, h.name, err)
		}
		wait := min(200*time.Millisecond, time.Until(deadline))
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				break // read deadline: send the next request
			}
			reply, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil {
				continue
			}
			echo, ok := reply.Body.(*icmp.Echo)
			if !ok || reply.Type == typ || echo.ID != id || !bytes.Equal(echo.Data, payload) {
				continue
			}
			if ip, ok := from.(*net.IPAddr); ok {
				if a, ok := netip.AddrFromSlice(ip.IP); ok && a.Unmap() == dst.Unmap().WithZone("") {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("netlab: ping %v from %s: no reply within %v", dst, h.name, timeout)
}
