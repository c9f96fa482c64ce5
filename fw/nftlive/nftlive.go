// Package nftlive reads the nftables ruleset of a network namespace over
// netlink with github.com/google/nftables: tables, base chains (hook,
// priority, policy, device), regular chains, rules, named and anonymous sets
// and maps with their elements.
//
// google/nftables v0.3.0's GetRules silently drops expression kinds it does
// not decode (byteorder, rt, socket, ...). Read dumps the rules itself, in
// one request, decodes each expression with google/nftables' decoders and
// marks a rule holding a kind they do not know as Incomplete, naming the
// kinds, so the evaluator never trusts it. It also reads what v0.3.0 leaves
// out or mixes up elsewhere: the devices of ingress/egress chains and the
// key and data types of sets (wrong for verdict maps).
package nftlive

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/vrrpdoctor/vrrpdoctor/fw/ruleset"
)

// Options for Read.
type Options struct {
	// NetNS is an open file descriptor of the network namespace to read;
	// 0 reads the current one.
	NetNS int
}

// Source is the name Read gives its tables' Source.
const Source = "nftables (netlink)"

// Read reads the whole nftables ruleset.
func Read(opts Options) (*ruleset.Ruleset, error) {
	// One lasting netlink socket for all the dumps, not one per call.
	copts := []nftables.ConnOption{nftables.AsLasting()}
	if opts.NetNS != 0 {
		copts = append(copts, nftables.WithNetNSFd(opts.NetNS))
	}
	conn, err := nftables.New(copts...)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	defer conn.CloseLasting()
	tables, err := conn.ListTables()
	if err != nil {
		return nil, fmt.Errorf("nftables: list tables: %w", err)
	}
	chains, err := conn.ListChains()
	if err != nil {
		return nil, fmt.Errorf("nftables: list chains: %w", err)
	}
	rules, err := dumpRules(opts.NetNS)
	if err != nil {
		return nil, err
	}
	byChain := map[chainKey][]rawRule{}
	for _, r := range rules {
		k := chainKey{r.family, r.table, r.chain}
		byChain[k] = append(byChain[k], r)
	}
	types, err := setTypes(opts.NetNS)
	if err != nil {
		return nil, err
	}
	devices, err := chainDevices(opts.NetNS)
	if err != nil {
		return nil, err
	}
	rs := &ruleset.Ruleset{Sources: []string{Source}}
	for _, t := range tables {
		fam, ok := familyName[t.Family]
		if !ok {
			continue
		}
		mt := &ruleset.Table{Backend: ruleset.BackendNFT, Family: fam, Name: t.Name, Flags: tableFlags(t.Flags), Source: Source}
		sets, err := readSets(conn, t, types)
		if err != nil {
			return nil, err
		}
		byName := map[string]*ruleset.Set{}
		for _, s := range sets {
			byName[s.Name] = s
			if !strings.HasPrefix(s.Name, "__") {
				mt.Sets = append(mt.Sets, s)
			}
		}
		for _, c := range chains {
			if c.Table == nil || c.Table.Name != t.Name || c.Table.Family != t.Family {
				continue
			}
			mc := &ruleset.Chain{Name: c.Name, Base: baseOf(t.Family, c)}
			if b := mc.Base; b != nil && (b.Hook == ruleset.HookIngress || b.Hook == ruleset.HookEgress) {
				b.Devices = devices[chainKey{byte(t.Family), t.Name, c.Name}]
				b.DevicesUnknown = len(b.Devices) == 0
			}
			for i, r := range byChain[chainKey{byte(t.Family), t.Name, c.Name}] {
				mr := &ruleset.Rule{Handle: r.handle, Position: i + 1, Origin: fmt.Sprintf("netlink %s %s %s handle %d", fam, t.Name, c.Name, r.handle)}
				mr.Exprs = decodeRule(t.Family, byName, r.exprs)
				mr.Comment = comment(r.userData)
				if len(r.unknown) > 0 {
					mr.Incomplete = "google/nftables did not decode its " + strings.Join(uniq(r.unknown), ", ") + " expression(s)"
				}
				mr.Text = ruleset.RuleText(mr.Exprs, mr.Comment)
				mc.Rules = append(mc.Rules, mr)
			}
			mt.Chains = append(mt.Chains, mc)
		}
		ruleset.DetectIptablesNFT(mt)
		rs.Tables = append(rs.Tables, mt)
	}
	return rs, nil
}

var familyName = map[nftables.TableFamily]ruleset.Family{
	nftables.TableFamilyIPv4: ruleset.FamilyIP, nftables.TableFamilyIPv6: ruleset.FamilyIP6,
	nftables.TableFamilyINet: ruleset.FamilyInet, nftables.TableFamilyARP: ruleset.FamilyARP,
	nftables.TableFamilyBridge: ruleset.FamilyBridge, nftables.TableFamilyNetdev: ruleset.FamilyNetdev,
}

func tableFlags(f uint32) []string {
	var out []string
	if f&unix.NFT_TABLE_F_DORMANT != 0 {
		out = append(out, "dormant")
	}
	return out
}

// baseOf reads a chain's hook, priority, policy and device.
func baseOf(fam nftables.TableFamily, c *nftables.Chain) *ruleset.BaseChain {
	if c.Hooknum == nil || c.Priority == nil {
		return nil
	}
	b := &ruleset.BaseChain{Type: string(c.Type), Priority: int(*c.Priority), Policy: "accept"}
	if b.Type == "" {
		b.Type = "filter"
	}
	h := uint32(*c.Hooknum)
	switch fam {
	case nftables.TableFamilyNetdev:
		b.Hook = map[uint32]ruleset.Hook{unix.NF_NETDEV_INGRESS: ruleset.HookIngress, unix.NF_NETDEV_EGRESS: ruleset.HookEgress}[h]
	case nftables.TableFamilyARP:
		b.Hook = map[uint32]ruleset.Hook{0: ruleset.HookInput, 1: ruleset.HookOutput, 2: ruleset.HookForward}[h]
	default:
		b.Hook = map[uint32]ruleset.Hook{unix.NF_INET_PRE_ROUTING: ruleset.HookPrerouting, unix.NF_INET_LOCAL_IN: ruleset.HookInput,
			unix.NF_INET_FORWARD: ruleset.HookForward, unix.NF_INET_LOCAL_OUT: ruleset.HookOutput,
			unix.NF_INET_POST_ROUTING: ruleset.HookPostrouting, nfInetIngress: ruleset.HookIngress}[h]
	}
	if b.Hook == "" {
		b.Hook = ruleset.Hook(fmt.Sprintf("hook%d", h))
	}
	if c.Policy != nil && *c.Policy == nftables.ChainPolicyDrop {
		b.Policy = "drop"
	}
	return b
}

// comment extracts the comment from a rule's user data (libnftnl's TLV,
// type NFTNL_UDATA_RULE_COMMENT = 0).
func comment(ud []byte) string {
	for len(ud) >= 2 {
		typ, n := ud[0], int(ud[1])
		if len(ud) < 2+n {
			return ""
		}
		if typ == 0 {
			return string(bytes.TrimRight(ud[2:2+n], "\x00"))
		}
		ud = ud[2+n:]
	}
	return ""
}

// uniq returns the distinct names, sorted.
func uniq(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// typeOf maps an nft set data type name to the decoder's constant types.
func typeOf(name string) string {
	switch name {
	case "ipv4_addr":
		return tIPv4
	case "ipv6_addr":
		return tIPv6
	case "ifname":
		return tIfname
	case "iface_index":
		return tIfindex
	case "inet_proto":
		return tProto
	case "mark":
		return tMark
	case "inet_service":
		return tService
	case "pkt_type":
		return tPkttype
	case "nf_proto":
		return tNfproto
	case "ether_type":
		return tEther
	case "ct_state":
		return tCTState
	}
	return tInt
}

// typeSizes are the key sizes of the types sets use, in bytes.
var typeSizes = map[string]int{"ipv4_addr": 4, "ipv6_addr": 16, "ifname": 16, "inet_proto": 1, "inet_service": 2, "mark": 4,
	"ether_addr": 6, "pkt_type": 1, "nf_proto": 1, "ether_type": 2, "iface_index": 4, "ct_state": 4, "ct_status": 4, "fib_addrtype": 4}

// readSets reads the sets and maps of a table with their elements. The key
// and data types come from the kernel's own set description (types).
func readSets(conn *nftables.Conn, t *nftables.Table, types map[setKey]setMeta) ([]*ruleset.Set, error) {
	sets, err := conn.GetSets(t)
	if err != nil {
		return nil, fmt.Errorf("nftables: sets of %s: %w", t.Name, err)
	}
	var out []*ruleset.Set
	for _, s := range sets {
		ms := &ruleset.Set{Name: s.Name}
		meta, ok := types[setKey{family: byte(t.Family), table: t.Name, name: s.Name}]
		if !ok {
			ms.Incomplete = "the set vanished while it was read"
			out = append(out, ms)
			continue
		}
		ms.Type = typeNames(meta.keyType)
		isMap := meta.flags&unix.NFT_SET_MAP != 0
		if isMap {
			ms.Map = "verdict"
			if meta.dataType != nftDataVerdict {
				ms.Map = nftTypeNameOf(meta.dataType)
			}
		}
		for _, f := range []struct {
			bit  uint32
			name string
		}{{unix.NFT_SET_CONSTANT, "constant"}, {unix.NFT_SET_INTERVAL, "interval"}, {unix.NFT_SET_TIMEOUT, "timeout"}, {unix.NFT_SET_EVAL, "dynamic"}} {
			if meta.flags&f.bit != 0 {
				ms.Flags = append(ms.Flags, f.name)
			}
		}
		els, err := conn.GetSetElements(s)
		if err != nil {
			ms.Incomplete = "elements not readable: " + err.Error()
		} else {
			ms.Elements, ms.Incomplete = elements(ms, els)
		}
		out = append(out, ms)
	}
	return out, nil
}

// elements converts set elements: plain keys, interval boundaries (a start
// element, then an end element flagged IntervalEnd holding the first value
// past the range), concatenations and map data.
func elements(ms *ruleset.Set, els []nftables.SetElement) ([]ruleset.Element, string) {
	d := &decoder{}
	for _, p := range ms.Type {
		if _, ok := typeSizes[p]; !ok && len(ms.Type) > 1 {
			return nil, "concatenation with a key type of unknown size: " + strings.Join(ms.Type, " . ")
		}
	}
	key := func(b []byte) ruleset.Expr {
		if len(ms.Type) < 2 {
			return d.constOf(b, typeOf(ms.Type[0]))
		}
		var c ruleset.Concat
		for _, p := range ms.Type {
			n := (typeSizes[p] + 3) / 4 * 4
			if n > len(b) {
				n = len(b)
			}
			c.Items = append(c.Items, d.constOf(b[:n], typeOf(p)))
			b = b[n:]
		}
		return c
	}
	data := func(e nftables.SetElement) (ruleset.Expr, error) {
		switch {
		case !ms.IsMap():
			return nil, nil
		case e.VerdictData != nil:
			return verdictOf(e.VerdictData), nil
		case ms.Map == "verdict":
			return verdictData(e.Val)
		}
		return d.constOf(e.Val, typeOf(ms.Map)), nil
	}
	var out []ruleset.Element
	if !ms.HasFlag("interval") || len(ms.Type) > 1 {
		for _, e := range els {
			if e.IntervalEnd {
				continue
			}
			k := key(e.Key)
			if len(e.KeyEnd) > 0 && !bytes.Equal(e.KeyEnd, e.Key) {
				k = ruleset.Range{Lo: k, Hi: key(e.KeyEnd)}
			}
			v, err := data(e)
			if err != nil {
				return nil, err.Error()
			}
			out = append(out, ruleset.Element{Key: k, Value: v})
		}
		return out, ""
	}
	sorted := append([]nftables.SetElement(nil), els...)
	sort.SliceStable(sorted, func(i, j int) bool { return bytes.Compare(sorted[i].Key, sorted[j].Key) < 0 })
	for i := 0; i < len(sorted); i++ {
		e := sorted[i]
		if e.IntervalEnd {
			continue
		}
		var end []byte
		if i+1 < len(sorted) && sorted[i+1].IntervalEnd {
			end = sorted[i+1].Key
			i++
		}
		v, err := data(e)
		if err != nil {
			return nil, err.Error()
		}
		out = append(out, ruleset.Element{Key: interval(e.Key, end, ms.Type[0], d), Value: v})
	}
	return out, ""
}

// verdictData decodes a verdict map element's data, which google/nftables
// leaves raw: the NFTA_VERDICT_CODE and NFTA_VERDICT_CHAIN attributes.
func verdictData(b []byte) (ruleset.Expr, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, fmt.Errorf("verdict data: %w", err)
	}
	ad.ByteOrder = binary.BigEndian
	v := &expr.Verdict{}
	for ad.Next() {
		switch ad.Type() &^ netlink.Nested {
		case unix.NFTA_VERDICT_CODE:
			v.Kind = expr.VerdictKind(int32(ad.Uint32()))
		case unix.NFTA_VERDICT_CHAIN:
			v.Chain = ad.String()
		}
	}
	if err := ad.Err(); err != nil {
		return nil, fmt.Errorf("verdict data: %w", err)
	}
	return verdictOf(v), nil
}

// interval renders [lo, end) as a constant, prefix or range.
func interval(lo, end []byte, typ string, d *decoder) ruleset.Expr {
	t := typeOf(typ)
	hi := make([]byte, len(lo))
	if end == nil {
		for i := range hi {
			hi[i] = 0xff
		}
	} else {
		copy(hi, end)
		for i := len(hi) - 1; i >= 0; i-- { // hi = end - 1
			hi[i]--
			if hi[i] != 0xff {
				break
			}
		}
	}
	if bytes.Equal(lo, hi) {
		return d.constOf(lo, t)
	}
	if t == tIPv4 || t == tIPv6 {
		if n, ok := prefixOf(lo, hi); ok {
			a := d.constOf(lo, t).(ruleset.Const)
			return ruleset.Prefix{Addr: a.Value, Len: n}
		}
	}
	return ruleset.Range{Lo: d.constOf(lo, t), Hi: d.constOf(hi, t)}
}

// prefixOf reports whether [lo, hi] is exactly one prefix.
func prefixOf(lo, hi []byte) (int, bool) {
	n := 0
	for n < len(lo)*8 {
		bit := func(b []byte) byte { return b[n/8] >> (7 - n%8) & 1 }
		if bit(lo) != bit(hi) {
			break
		}
		n++
	}
	for i := n; i < len(lo)*8; i++ {
		if lo[i/8]>>(7-i%8)&1 != 0 || hi[i/8]>>(7-i%8)&1 != 1 {
			return 0, false
		}
	}
	return n, true
}

// nfInetIngress is NF_INET_INGRESS (linux/netfilter.h), the inet family's
// ingress hook; x/sys/unix does not define it.
const nfInetIngress = 5
