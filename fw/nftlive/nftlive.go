// Package nftlive reads the nftables ruleset of a network namespace over
// netlink with github.com/google/nftables: tables, base chains (hook,
// priority, policy, device), regular chains, rules, named and anonymous sets
// and maps with their elements.
//
// google/nftables v0.3.0's GetRules silently drops expression kinds it does
// not decode (byteorder, rt, socket, ...). Read dumps the rules itself, one
// request per chain, decodes each expression with google/nftables' decoders and
// marks a rule holding a kind they do not know as Incomplete, naming the
// kinds, so the evaluator never trusts it. It also reads what v0.3.0 leaves
// out or mixes up elsewhere: the devices of ingress/egress chains and the
// key and data types of sets (wrong for verdict maps).
package nftlive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

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

// Read reads the whole nftables ruleset. It takes several dumps (one per
// chain for the rules, one per set for the elements); when the ruleset
// changes meanwhile (the kernel's generation id moves) it reads it again,
// and gives up with an error after readAttempts readings.
func Read(opts Options) (*ruleset.Ruleset, error) {
	gc, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: opts.NetNS})
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	defer gc.Close()
	for range readAttempts {
		before, err := generation(gc)
		if err != nil {
			return nil, err
		}
		rs, err := read(opts)
		if err != nil {
			return nil, err
		}
		after, err := generation(gc)
		if err != nil {
			return nil, err
		}
		if before == after {
			return rs, nil
		}
	}
	return nil, fmt.Errorf("nftables: the ruleset changed during each of %d readings", readAttempts)
}

// readAttempts is how many times Read tries to read a ruleset that does not
// change while it is read.
const readAttempts = 5

// generation returns the ruleset's generation id (NFT_MSG_GETGEN), which
// every committed change of the ruleset increments.
func generation(conn *netlink.Conn) (uint32, error) {
	msgs, err := conn.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN),
			Flags: netlink.Request,
		},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil {
		return 0, fmt.Errorf("nftables: generation: %w", err)
	}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return 0, fmt.Errorf("nftables: generation: %w", err)
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			if ad.Type() == unix.NFTA_GEN_ID {
				return ad.Uint32(), nil
			}
		}
	}
	return 0, fmt.Errorf("nftables: generation: no NFTA_GEN_ID in the kernel's answer")
}

// read reads the ruleset once.
func read(opts Options) (*ruleset.Ruleset, error) {
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
	// The rules and the sets are read at the same time, on sockets of
	// their own.
	var byChain map[chainKey][]rawRule
	var rulesErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		byChain, rulesErr = dumpRules(opts.NetNS, chains)
	}()
	sd, err := readSetData(conn, opts.NetNS, tables)
	wg.Wait()
	if err := errors.Join(rulesErr, err); err != nil {
		return nil, err
	}
	types, devices, setsOf, elems := sd.types, sd.devices, sd.setsOf, sd.elems
	rs := &ruleset.Ruleset{Sources: []string{Source}}
	for _, t := range tables {
		fam, ok := familyName[t.Family]
		if !ok {
			continue
		}
		mt := &ruleset.Table{Backend: ruleset.BackendNFT, Family: fam, Name: t.Name, Flags: tableFlags(t.Flags), Source: Source}
		sets := readSets(t, setsOf[t], types, elems)
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

// setData is what Read learns besides the rules: the sets with their types
// and elements, and the devices of ingress and egress chains.
type setData struct {
	types   map[setKey]setMeta
	devices map[chainKey][]string
	setsOf  map[*nftables.Table][]*nftables.Set
	elems   map[setKey]setElems
}

func readSetData(conn *nftables.Conn, netns int, tables []*nftables.Table) (*setData, error) {
	sd := &setData{setsOf: map[*nftables.Table][]*nftables.Set{}}
	var err error
	if sd.types, err = setTypes(netns); err != nil {
		return nil, err
	}
	if sd.devices, err = chainDevices(netns); err != nil {
		return nil, err
	}
	var keys []setKey
	for _, t := range tables {
		if _, ok := familyName[t.Family]; !ok {
			continue
		}
		sets, err := conn.GetSets(t)
		if err != nil {
			return nil, fmt.Errorf("nftables: sets of %s: %w", t.Name, err)
		}
		sd.setsOf[t] = sets
		for _, s := range sets {
			keys = append(keys, setKey{family: byte(t.Family), table: t.Name, name: s.Name})
		}
	}
	if sd.elems, err = dumpElements(netns, keys); err != nil {
		return nil, err
	}
	return sd, nil
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
	case "ether_addr":
		return tMAC
	case "ct_state":
		return tCTState
	}
	return tInt
}

// typeSizes are the key sizes of the types sets use, in bytes.
var typeSizes = map[string]int{"ipv4_addr": 4, "ipv6_addr": 16, "ifname": 16, "inet_proto": 1, "inet_service": 2, "mark": 4,
	"ether_addr": 6, "pkt_type": 1, "nf_proto": 1, "ether_type": 2, "iface_index": 4, "ct_state": 4, "ct_status": 4, "fib_addrtype": 4}

// readSets converts the sets and maps of a table with their elements
// (elems, from dumpElements). The key and data types come from the kernel's
// own set description (types).
func readSets(t *nftables.Table, sets []*nftables.Set, types map[setKey]setMeta, elems map[setKey]setElems) []*ruleset.Set {
	var out []*ruleset.Set
	for _, s := range sets {
		ms := &ruleset.Set{Name: s.Name}
		k := setKey{family: byte(t.Family), table: t.Name, name: s.Name}
		meta, ok := types[k]
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
		if els := elems[k]; els.err != nil {
			ms.Incomplete = "elements not readable: " + els.err.Error()
		} else {
			ms.Elements, ms.Incomplete = elements(ms, els.els)
		}
		out = append(out, ms)
	}
	return out
}

// elements converts set elements: plain keys, concatenations, map data,
// the catch-all (an element without a key) and intervals. A one-type interval set holds boundaries: a start element, and
// an end element flagged NFT_SET_ELEM_INTERVAL_END holding the first value
// past the range; it has none when the range runs to the top of the key
// space. A concatenation with intervals holds one element per range, with
// its inclusive upper bound in KeyEnd.
func elements(ms *ruleset.Set, els []nftables.SetElement) ([]ruleset.Element, string) {
	d := &decoder{}
	if len(ms.Type) > 1 {
		for _, p := range ms.Type {
			if _, ok := typeSizes[p]; !ok {
				return nil, "concatenation with a key type of unknown size: " + strings.Join(ms.Type, " . ")
			}
		}
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
	add := func(e nftables.SetElement, k ruleset.Expr) string {
		v, err := data(e)
		if err != nil {
			return err.Error()
		}
		out = append(out, ruleset.Element{Key: k, Value: v})
		return ""
	}
	// The catch-all element ("*", NFT_SET_ELEM_CATCHALL) has no key.
	keyed := make([]nftables.SetElement, 0, len(els))
	for _, e := range els {
		if len(e.Key) == 0 && !e.IntervalEnd {
			if msg := add(e, ruleset.Const{Value: "*"}); msg != "" {
				return nil, msg
			}
			continue
		}
		keyed = append(keyed, e)
	}
	els = keyed
	if len(ms.Type) > 1 {
		for _, e := range els {
			if e.IntervalEnd {
				continue
			}
			k, err := concatKey(ms.Type, e.Key, e.KeyEnd, ms.HasFlag("interval"), d)
			if err != nil {
				return nil, err.Error()
			}
			if msg := add(e, k); msg != "" {
				return nil, msg
			}
		}
		return out, ""
	}
	typ := typeOf(ms.Type[0])
	if !ms.HasFlag("interval") {
		for _, e := range els {
			if e.IntervalEnd {
				continue
			}
			k := d.constOf(e.Key, typ)
			if len(e.KeyEnd) > 0 && !bytes.Equal(e.KeyEnd, e.Key) {
				k = span(e.Key, e.KeyEnd, typ, d, false)
			}
			if msg := add(e, k); msg != "" {
				return nil, msg
			}
		}
		return out, ""
	}
	for _, r := range pairIntervals(els) {
		if msg := add(r.start, interval(r.start.Key, r.end, typ, d)); msg != "" {
			return nil, msg
		}
	}
	return out, ""
}

// boundedInterval is a start element of an interval set and the first key
// past its range (nil: the range runs to the top of the key space).
type boundedInterval struct {
	start nftables.SetElement
	end   []byte
}

// pairIntervals pairs the boundary elements of a one-type interval set the
// way nft does (interval_map_decompose in nftables' segtree.c): sorted by
// key, an end element before a start element of the same key, because
// adjacent ranges share that key (10.0.0.0/24 ends where 10.0.1.0/24
// starts); each start runs to the next boundary, a start with no boundary
// after it to the top of the key space, and an end element with no open
// start (nft's old "nothing below" marker at key 0) closes nothing.
func pairIntervals(els []nftables.SetElement) []boundedInterval {
	sorted := append([]nftables.SetElement(nil), els...)
	sort.Slice(sorted, func(i, j int) bool {
		if c := bytes.Compare(sorted[i].Key, sorted[j].Key); c != 0 {
			return c < 0
		}
		return sorted[i].IntervalEnd && !sorted[j].IntervalEnd
	})
	var out []boundedInterval
	var low *nftables.SetElement
	for i := range sorted {
		e := &sorted[i]
		if low != nil {
			out = append(out, boundedInterval{start: *low, end: e.Key})
			low = nil
		}
		if !e.IntervalEnd {
			low = e
		}
	}
	if low != nil {
		out = append(out, boundedInterval{start: *low})
	}
	return out
}

// concatKey decodes a concatenated key: each part sits in its own 32-bit
// registers, so a part shorter than a multiple of 4 bytes (inet_service 2,
// ether_addr 6) is followed by padding. hi, when set, is the inclusive upper
// bound of a concatenation with intervals; each part then is a value, a
// prefix or a range of its own.
func concatKey(types []string, lo, hi []byte, isInterval bool, d *decoder) (ruleset.Expr, error) {
	if len(hi) > 0 && len(hi) != len(lo) {
		return nil, fmt.Errorf("concatenated key of %d bytes with an upper bound of %d bytes", len(lo), len(hi))
	}
	var c ruleset.Concat
	off := 0
	for _, p := range types {
		n := typeSizes[p]
		if off+n > len(lo) {
			return nil, fmt.Errorf("concatenated key %x too short for %s", lo, strings.Join(types, " . "))
		}
		part, t := lo[off:off+n], typeOf(p)
		// Interval sets hold host-order parts big-endian too.
		swapped := isInterval && hostOrder[t]
		if len(hi) > 0 {
			c.Items = append(c.Items, span(part, hi[off:off+n], t, d, swapped))
		} else if swapped {
			c.Items = append(c.Items, d.constOf(toHost(part), t))
		} else {
			c.Items = append(c.Items, d.constOf(part, t))
		}
		off += (n + 3) / 4 * 4
	}
	if off != len(lo) {
		return nil, fmt.Errorf("concatenated key %x: %d bytes, %s takes %d", lo, len(lo), strings.Join(types, " . "), off)
	}
	return c, nil
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

// interval renders [lo, end) as a constant, prefix or range; a nil end is
// the top of the key space.
func interval(lo, end []byte, t string, d *decoder) ruleset.Expr {
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
	return span(lo, hi, t, d, hostOrder[t])
}

// span renders [lo, hi] as nft prints it: a constant, an interface
// wildcard (eth*), a prefix or a range. swapped says the bounds are
// big-endian although the type is a host-order one: nft stores them so in
// interval sets, so that they sort as numbers (netlink_delinearize_setelem
// turns them back).
func span(lo, hi []byte, t string, d *decoder, swapped bool) ruleset.Expr {
	n, isPrefix := prefixOf(lo, hi)
	if swapped {
		lo, hi = toHost(lo), toHost(hi)
	}
	if bytes.Equal(lo, hi) {
		return d.constOf(lo, t)
	}
	if t == tIfname && isPrefix && n%8 == 0 && !bytes.Contains(lo[:n/8], []byte{0}) {
		return ruleset.Const{Value: string(lo[:n/8]) + "*"}
	}
	if isPrefix && (t == tIPv4 || t == tIPv6 || t == tMark) {
		if a, ok := d.constOf(lo, t).(ruleset.Const); ok {
			return ruleset.Prefix{Addr: a.Value, Len: n}
		}
	}
	return ruleset.Range{Lo: d.constOf(lo, t), Hi: d.constOf(hi, t)}
}

// hostOrder are the decoder's types nft keeps in host byte order.
var hostOrder = map[string]bool{tMark: true, tIfindex: true, tCTState: true, tCTStat: true, tAddrTyp: true}

// toHost turns big-endian bytes into host order.
func toHost(b []byte) []byte {
	out := append([]byte(nil), b...)
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 { // little-endian
		slices.Reverse(out)
	}
	return out
}

// prefixOf reports whether [lo, hi] is exactly one prefix.
func prefixOf(lo, hi []byte) (int, bool) {
	if len(lo) != len(hi) {
		return 0, false
	}
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
