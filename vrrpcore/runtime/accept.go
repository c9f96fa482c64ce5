package runtime

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// AcceptTable is the nftables table through which the daemon enforces
// RFC 5798 §6.4.3 for instances without Accept_Mode (keepalived
// "no_accept", implied by vrrp_strict): a Master that is not the address
// owner must not accept packets addressed to its virtual addresses. Like
// keepalived's own table, it holds two address sets, filled with the
// virtual addresses of such instances while they hold them, and a base
// chain one priority ahead of the usual filter chains (a drop there is
// final, whatever other tables say):
//
//	table inet vrrpdoctor {
//		set vips4 { type ipv4_addr; }
//		set vips6 { type ipv6_addr; }
//		chain in {
//			type filter hook input priority -1; policy accept;
//			meta l4proto ipv6-icmp icmpv6 type 133-137 accept   # neighbour discovery
//			ip daddr @vips4 drop
//			ip6 daddr @vips6 drop
//		}
//	}
//
// Only the daemon owns it: it is created when the first such instance
// starts (replacing one a crashed run left behind), and deleted on exit.
// No other table is ever touched.
const AcceptTable = "vrrpdoctor"

// acceptFilter maintains the AcceptTable.
type acceptFilter struct {
	mu         sync.Mutex
	conn       *nftables.Conn
	table      *nftables.Table
	set4, set6 *nftables.Set
	refs       map[netip.Addr]int // addresses in the sets, by the instances holding them
}

// openAcceptFilter creates the table in the daemon's namespace.
func openAcceptFilter(enter func(func() error) error) (*acceptFilter, error) {
	f := &acceptFilter{refs: map[netip.Addr]int{}}
	// A lasting connection keeps its netlink socket, and with it the
	// namespace it was opened in.
	if err := enter(func() error {
		var err error
		f.conn, err = nftables.New(nftables.AsLasting())
		return err
	}); err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	f.table = &nftables.Table{Name: AcceptTable, Family: nftables.TableFamilyINet}
	tables, err := f.conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		f.conn.CloseLasting()
		return nil, fmt.Errorf("nftables: listing tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == AcceptTable {
			f.conn.DelTable(f.table) // a previous run's
		}
	}
	c := f.conn
	c.AddTable(f.table)
	f.set4 = &nftables.Set{Table: f.table, Name: "vips4", KeyType: nftables.TypeIPAddr}
	f.set6 = &nftables.Set{Table: f.table, Name: "vips6", KeyType: nftables.TypeIP6Addr}
	if err := errors.Join(c.AddSet(f.set4, nil), c.AddSet(f.set6, nil)); err != nil {
		f.conn.CloseLasting()
		return nil, fmt.Errorf("nftables: %w", err)
	}
	ch := c.AddChain(&nftables.Chain{
		Name: "in", Table: f.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityRef(*nftables.ChainPriorityFilter - 1),
	})
	c.AddRule(&nftables.Rule{Table: f.table, Chain: ch, Exprs: ndAccept()})
	// The destination address: offset 16 in IPv4, 24 in IPv6.
	c.AddRule(&nftables.Rule{Table: f.table, Chain: ch, Exprs: setDrop(unix.NFPROTO_IPV4, 16, 4, f.set4)})
	c.AddRule(&nftables.Rule{Table: f.table, Chain: ch, Exprs: setDrop(unix.NFPROTO_IPV6, 24, 16, f.set6)})
	if err := c.Flush(); err != nil {
		f.conn.CloseLasting()
		return nil, fmt.Errorf("nftables: creating table inet %s: %w", AcceptTable, err)
	}
	return f, nil
}

// ndAccept accepts ICMPv6 types 133-137 (router and neighbour discovery,
// redirect): a Master must still answer neighbour solicitations for its
// virtual addresses.
func ndAccept() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{133}, ToData: []byte{137}},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
}

// setDrop drops packets of family nfproto whose address at offset (in the
// network header) is in set.
func setDrop(nfproto byte, offset, length uint32, set *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: length},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// add puts addrs in the sets (before the addresses are configured).
func (f *acceptFilter) add(addrs []netip.Addr) error {
	return f.change(addrs, 1)
}

// del takes addrs out of the sets (after the addresses are removed).
func (f *acceptFilter) del(addrs []netip.Addr) error {
	return f.change(addrs, -1)
}

func (f *acceptFilter) change(addrs []netip.Addr, delta int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var e4, e6 []nftables.SetElement
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		before := f.refs[a]
		after := max(before+delta, 0)
		if after == 0 {
			delete(f.refs, a)
		} else {
			f.refs[a] = after
		}
		if (before == 0) == (after == 0) {
			continue // no change of membership
		}
		if a.Is4() {
			e4 = append(e4, nftables.SetElement{Key: a.AsSlice()})
		} else {
			e6 = append(e6, nftables.SetElement{Key: a.AsSlice()})
		}
	}
	if len(e4) == 0 && len(e6) == 0 {
		return nil
	}
	op := f.conn.SetAddElements
	if delta < 0 {
		op = f.conn.SetDeleteElements
	}
	var errs []error
	if len(e4) > 0 {
		errs = append(errs, op(f.set4, e4))
	}
	if len(e6) > 0 {
		errs = append(errs, op(f.set6, e6))
	}
	errs = append(errs, f.conn.Flush())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("nftables table inet %s: %w", AcceptTable, err)
	}
	return nil
}

// close deletes the table.
func (f *acceptFilter) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conn.DelTable(f.table)
	err := f.conn.Flush()
	return errors.Join(err, f.conn.CloseLasting())
}
