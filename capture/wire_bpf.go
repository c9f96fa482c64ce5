package capture

import (
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore"
)

// The wire tap's kernel filter passes IP protocol 112 (VRRP) over IPv4 and
// IPv6, untagged or behind up to two 802.1Q/802.1ad tags, and optionally
// only to or from a set of unicast peers. It is the equivalent of tcpdump's
// "vrrp or ip6 proto 112 or (vlan and (vrrp or ip6 proto 112))".
//
// On Linux the receive path takes the outer VLAN tag out of the frame into
// packet metadata before AF_PACKET sees it (and transmit offload does the
// same on the way out), so most tagged frames reach the filter untagged; the
// in-band tag checks cover interfaces without tag offload and QinQ.

// MaxFilterPeers is the most unicast peers the wire tap filter accepts.
const MaxFilterPeers = 64

// Ethernet types the filter knows.
const (
	etherTypeIPv4   = 0x0800
	etherTypeIPv6   = 0x86dd
	etherTypeDot1Q  = 0x8100
	etherTypeDot1AD = 0x88a8
	etherTypeQinQ   = 0x9100 // pre-standard 802.1ad TPID still in use
)

// dirFilter says which frames by direction a kernel filter passes.
type dirFilter uint8

const (
	dirAny dirFilter = iota
	// dirNotOutgoing refuses the frames this host sends (packet type
	// PACKET_OUTGOING).
	dirNotOutgoing
	// dirOutgoingOnly passes only the frames this host sends.
	dirOutgoingOnly
)

// wireFilter assembles the kernel filter. cooked says the socket delivers
// frames from the network header on (SOCK_DGRAM, for non-Ethernet links);
// otherwise frames start with an Ethernet header. Accepted packets are cut
// to snaplen bytes. dir restricts the frames by direction (the packet
// type, SKF_AD_PKTTYPE), family (4 or 6; 0 for both) by address family.
func wireFilter(cooked bool, peers []netip.Addr, snaplen uint32, dir dirFilter, family uint8) ([]bpf.RawInstruction, error) {
	if len(peers) > MaxFilterPeers {
		return nil, fmt.Errorf("capture: %d unicast peers for the wire filter, at most %d", len(peers), MaxFilterPeers)
	}
	if family != 0 && family != 4 && family != 6 {
		return nil, fmt.Errorf("capture: address family %d for the wire filter", family)
	}
	var a asm
	switch dir {
	case dirNotOutgoing:
		a.emit(bpf.LoadExtension{Num: bpf.ExtType})
		a.jumpIf(bpf.JumpEqual, unix.PACKET_OUTGOING, "drop")
	case dirOutgoingOnly:
		a.emit(bpf.LoadExtension{Num: bpf.ExtType})
		a.jumpIf(bpf.JumpNotEqual, unix.PACKET_OUTGOING, "drop")
	}
	if cooked {
		// Network header at offset 0; the link's protocol is in skb->protocol.
		a.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: 0},
			bpf.LoadExtension{Num: bpf.ExtProto})
		a.jumpIf(bpf.JumpEqual, etherTypeIPv4, "ip4")
		a.jumpIf(bpf.JumpEqual, etherTypeIPv6, "ip6")
		a.emit(bpf.RetConstant{Val: 0})
	} else {
		// X holds the offset of the network header.
		for tags := 0; tags <= 2; tags++ {
			a.label(fmt.Sprintf("tags%d", tags))
			a.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: uint32(14 + 4*tags)},
				bpf.LoadAbsolute{Off: uint32(12 + 4*tags), Size: 2})
			if tags < 2 {
				next := fmt.Sprintf("tags%d", tags+1)
				a.jumpIf(bpf.JumpEqual, etherTypeDot1Q, next)
				a.jumpIf(bpf.JumpEqual, etherTypeDot1AD, next)
				a.jumpIf(bpf.JumpEqual, etherTypeQinQ, next)
			}
			a.jumpIf(bpf.JumpEqual, etherTypeIPv4, "ip4")
			a.jumpIf(bpf.JumpEqual, etherTypeIPv6, "ip6")
			a.emit(bpf.RetConstant{Val: 0})
		}
	}

	var peers4, peers6 []netip.Addr
	for _, p := range peers {
		switch {
		case !p.IsValid():
			return nil, fmt.Errorf("capture: invalid peer address in the wire filter")
		case p.Unmap().Is4():
			peers4 = append(peers4, p.Unmap())
		default:
			peers6 = append(peers6, p)
		}
	}

	// IPv4: protocol at +9, source at +12, destination at +16.
	a.label("ip4")
	if family == 6 {
		a.emit(bpf.RetConstant{Val: 0})
	}
	a.emit(bpf.LoadIndirect{Off: 9, Size: 1})
	a.jumpIf(bpf.JumpNotEqual, vrrpcore.IPProtocol, "drop")
	if len(peers) > 0 {
		for _, off := range []uint32{12, 16} {
			a.emit(bpf.LoadIndirect{Off: off, Size: 4})
			for _, p := range peers4 {
				b := p.As4()
				a.jumpIf(bpf.JumpEqual, be32(b[:]), "accept")
			}
		}
		a.emit(bpf.RetConstant{Val: 0})
	} else {
		a.jump("accept")
	}

	// IPv6: next header at +6, source at +8, destination at +24.
	a.label("ip6")
	if family == 4 {
		a.emit(bpf.RetConstant{Val: 0})
	}
	a.emit(bpf.LoadIndirect{Off: 6, Size: 1})
	a.jumpIf(bpf.JumpNotEqual, vrrpcore.IPProtocol, "drop")
	if len(peers) > 0 {
		n := 0
		for _, off := range []uint32{8, 24} {
			for _, p := range peers6 {
				b := p.As16()
				miss := fmt.Sprintf("miss6_%d", n)
				n++
				for w := uint32(0); w < 4; w++ {
					a.emit(bpf.LoadIndirect{Off: off + 4*w, Size: 4})
					a.jumpIf(bpf.JumpNotEqual, be32(b[4*w:]), miss)
				}
				a.jump("accept")
				a.label(miss)
			}
		}
	}
	if len(peers) == 0 {
		a.jump("accept")
	}
	a.label("drop")
	a.emit(bpf.RetConstant{Val: 0})
	a.label("accept")
	a.emit(bpf.RetConstant{Val: snaplen})
	return a.assemble()
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// asm assembles classic BPF with named forward jump targets. Every
// conditional jump to a label is a conditional skip over an unconditional
// jump, so targets may lie any distance ahead.
type asm struct {
	ins    []bpf.Instruction
	labels map[string]int
	fixups []fixup
}

type fixup struct {
	at    int // index of the bpf.Jump to patch
	label string
}

func (a *asm) emit(ins ...bpf.Instruction) { a.ins = append(a.ins, ins...) }

func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = make(map[string]int)
	}
	a.labels[name] = len(a.ins)
}

// jump jumps to label.
func (a *asm) jump(label string) {
	a.fixups = append(a.fixups, fixup{at: len(a.ins), label: label})
	a.emit(bpf.Jump{})
}

// jumpIf jumps to label when A cond val holds and falls through otherwise.
func (a *asm) jumpIf(cond bpf.JumpTest, val uint32, label string) {
	a.emit(bpf.JumpIf{Cond: cond, Val: val, SkipTrue: 0, SkipFalse: 1})
	a.jump(label)
}

func (a *asm) assemble() ([]bpf.RawInstruction, error) {
	for _, f := range a.fixups {
		target, ok := a.labels[f.label]
		if !ok || target <= f.at {
			return nil, fmt.Errorf("capture: wire filter: bad jump to %q", f.label)
		}
		a.ins[f.at] = bpf.Jump{Skip: uint32(target - f.at - 1)}
	}
	if len(a.ins) > bpfMaxInstructions {
		return nil, fmt.Errorf("capture: wire filter has %d instructions, the kernel takes at most %d", len(a.ins), bpfMaxInstructions)
	}
	return bpf.Assemble(a.ins)
}

// bpfMaxInstructions is the kernel's BPF_MAXINSNS for classic socket filters.
const bpfMaxInstructions = 4096
