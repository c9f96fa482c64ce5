package fix

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/fw/eval"
	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// NFTRules adds and deletes vrrpdoctor's nftables rules, each call in one
// nftables transaction: all of its rules or none.
type NFTRules interface {
	// Add inserts each rule before the rule with handle r.Handle, or
	// appends it to its chain when r.Handle is 0.
	Add(rs []Rule) error
	// Delete deletes the rules by their handles.
	Delete(as []Added) error
}

// Netlink adds and deletes nftables rules over netlink (google/nftables),
// in the network namespace NetNS (an open descriptor; 0 is the current
// one).
type Netlink struct {
	NetNS int
}

func (n Netlink) conn() (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if n.NetNS != 0 {
		opts = append(opts, nftables.WithNetNSFd(n.NetNS))
	}
	return nftables.New(opts...)
}

var tableFamilies = map[ruleset.Family]nftables.TableFamily{
	ruleset.FamilyIP:     nftables.TableFamilyIPv4,
	ruleset.FamilyIP6:    nftables.TableFamilyIPv6,
	ruleset.FamilyInet:   nftables.TableFamilyINet,
	ruleset.FamilyBridge: nftables.TableFamilyBridge,
	ruleset.FamilyNetdev: nftables.TableFamilyNetdev,
}

func location(fam ruleset.Family, table, chain string) (*nftables.Table, *nftables.Chain, error) {
	tf, ok := tableFamilies[fam]
	if !ok {
		return nil, nil, fmt.Errorf("nftables family %q: no VRRP rule there", fam)
	}
	t := &nftables.Table{Name: table, Family: tf}
	return t, &nftables.Chain{Name: chain, Table: t}, nil
}

// Add inserts (or appends) the rules, with the comment Marker, in one
// netlink batch: the kernel commits all of them or none.
func (n Netlink) Add(rs []Rule) error {
	c, err := n.conn()
	if err != nil {
		return err
	}
	for _, r := range rs {
		t, ch, err := location(r.Family, r.Table, r.Chain)
		if err != nil {
			return err
		}
		nr := &nftables.Rule{Table: t, Chain: ch, Exprs: nftExprs(r.packet, r.Family),
			UserData: userdata.AppendString(nil, userdata.TypeComment, Marker)}
		if r.Handle != 0 {
			nr.Position = r.Handle
			c.InsertRule(nr)
		} else {
			c.AddRule(nr)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: adding %d rule(s) (none added): %w", len(rs), err)
	}
	return nil
}

// Delete deletes the rules by their handles, in one netlink batch.
func (n Netlink) Delete(as []Added) error {
	c, err := n.conn()
	if err != nil {
		return err
	}
	for _, a := range as {
		t, ch, err := location(a.Family, a.Table, a.Chain)
		if err != nil {
			return err
		}
		if err := c.DelRule(&nftables.Rule{Table: t, Chain: ch, Handle: a.Handle}); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: deleting %d rule(s) (none deleted): %w", len(as), err)
	}
	return nil
}

// nftExprs are the expressions of the accept of exactly the advert p, as
// nft compiles the rule of nftMatch: interface, the family check that nft
// adds for ip/ip6 matches in inet, bridge and netdev tables, addresses,
// protocol 112, accept.
func nftExprs(p eval.Packet, fam ruleset.Family) []expr.Any {
	var ex []expr.Any
	cmp := func(data []byte) {
		ex = append(ex, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data})
	}
	meta := func(k expr.MetaKey, data []byte) {
		ex = append(ex, &expr.Meta{Key: k, Register: 1})
		cmp(data)
	}
	ifname := func(s string) []byte {
		b := make([]byte, unix.IFNAMSIZ)
		copy(b, s)
		return b
	}
	if p.Direction == eval.In && fam != ruleset.FamilyNetdev {
		meta(expr.MetaKeyIIFNAME, ifname(p.InIface))
	} else if p.Direction == eval.Out {
		meta(expr.MetaKeyOIFNAME, ifname(p.OutIface))
	}
	v6 := p.Dst.Is6()
	switch fam {
	case ruleset.FamilyInet:
		proto := byte(unix.NFPROTO_IPV4)
		if v6 {
			proto = unix.NFPROTO_IPV6
		}
		meta(expr.MetaKeyNFPROTO, []byte{proto})
	case ruleset.FamilyBridge, ruleset.FamilyNetdev:
		eth := uint16(unix.ETH_P_IP)
		if v6 {
			eth = unix.ETH_P_IPV6
		}
		meta(expr.MetaKeyPROTOCOL, binaryutil.BigEndian.PutUint16(eth))
	}
	saddr, daddr, alen := uint32(12), uint32(16), uint32(4)
	if v6 {
		saddr, daddr, alen = 8, 24, 16
	}
	payload := func(off uint32, data []byte) {
		ex = append(ex, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: alen})
		cmp(data)
	}
	if p.Src.IsValid() && (p.Direction == eval.In || !p.Dst.IsMulticast()) {
		payload(saddr, p.Src.AsSlice())
	}
	if p.Dst.IsValid() {
		payload(daddr, p.Dst.AsSlice())
	}
	meta(expr.MetaKeyL4PROTO, []byte{112})
	return append(ex, &expr.Verdict{Kind: expr.VerdictAccept})
}
