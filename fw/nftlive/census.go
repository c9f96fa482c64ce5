package nftlive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// rawRule is one rule of a netlink dump, its expressions decoded one by one
// with google/nftables' decoders.
type rawRule struct {
	family       byte
	table, chain string
	handle       uint64
	userData     []byte
	exprs        []expr.Any
	// unknown lists the expression kinds google/nftables has no decoder
	// for; its own GetRules drops them without a word.
	unknown []string
}

// newExpr returns an empty expression of the kind google/nftables v0.3.0
// decodes under that name (its own table is not exported), or nil.
func newExpr(name string) expr.Any {
	switch name {
	case "ct":
		return &expr.Ct{}
	case "range":
		return &expr.Range{}
	case "meta":
		return &expr.Meta{}
	case "cmp":
		return &expr.Cmp{}
	case "counter":
		return &expr.Counter{}
	case "objref":
		return &expr.Objref{}
	case "payload":
		return &expr.Payload{}
	case "lookup":
		return &expr.Lookup{}
	case "immediate":
		return &expr.Immediate{}
	case "bitwise":
		return &expr.Bitwise{}
	case "redir":
		return &expr.Redir{}
	case "nat":
		return &expr.NAT{}
	case "limit":
		return &expr.Limit{}
	case "quota":
		return &expr.Quota{}
	case "dynset":
		return &expr.Dynset{}
	case "log":
		return &expr.Log{}
	case "exthdr":
		return &expr.Exthdr{}
	case "match":
		return &expr.Match{}
	case "target":
		return &expr.Target{}
	case "connlimit":
		return &expr.Connlimit{}
	case "queue":
		return &expr.Queue{}
	case "flow_offload":
		return &expr.FlowOffload{}
	case "reject":
		return &expr.Reject{}
	case "masq":
		return &expr.Masq{}
	case "hash":
		return &expr.Hash{}
	case "cthelper":
		return &expr.CtHelper{}
	case "synproxy":
		return &expr.SynProxy{}
	case "ctexpect":
		return &expr.CtExpect{}
	case "secmark":
		return &expr.SecMark{}
	case "cttimeout":
		return &expr.CtTimeout{}
	case "fib":
		return &expr.Fib{}
	case "numgen":
		return &expr.Numgen{}
	}
	return nil
}

// dumpRules dumps the rules of each chain with its own request, on
// ruleWorkers sockets, and decodes each expression with google/nftables, recording
// the kinds it cannot decode. One dump of every rule would do in one request
// (google/nftables' GetRules needs one per chain too), but the kernel walks
// its rule lists from the start again for each ~32 KiB part of a dump, which
// makes the single dump quadratic in the number of rules: twice as slow at
// 10,000 rules. The rules come back grouped by chain, in their order.
func dumpRules(netns int, chains []*nftables.Chain) (map[chainKey][]rawRule, error) {
	results := make([][]rawRule, len(chains))
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, ruleWorkers)
	for w := range ruleWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A fixed receive buffer spares a peek at each reply's size; a
			// dump's replies are at most 32 KiB.
			conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns, MessageBufferSize: 1 << 16})
			if err != nil {
				errs[w] = fmt.Errorf("netlink: %w", err)
				return
			}
			defer conn.Close()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(chains) {
					return
				}
				if results[i], err = dumpChainRules(conn, chains[i]); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := make(map[chainKey][]rawRule, len(chains))
	for i, c := range chains {
		if c.Table != nil {
			out[chainKey{byte(c.Table.Family), c.Table.Name, c.Name}] = results[i]
		}
	}
	return out, nil
}

// ruleWorkers is how many sockets dumpRules reads from at once: while one
// waits for the kernel, the other's replies are decoded.
const ruleWorkers = 2

// dumpChainRules dumps and decodes the rules of one chain.
func dumpChainRules(conn *netlink.Conn, c *nftables.Chain) ([]rawRule, error) {
	if c.Table == nil {
		return nil, nil
	}
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_RULE_TABLE, Data: []byte(c.Table.Name + "\x00")},
		{Type: unix.NFTA_RULE_CHAIN, Data: []byte(c.Name + "\x00")},
	})
	if err != nil {
		return nil, err
	}
	req := netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETRULE),
			Flags: netlink.Request | netlink.Dump,
		},
		// nfgenmsg: family, version, resource id; then the filter.
		Data: append([]byte{byte(c.Table.Family), unix.NFNETLINK_V0, 0, 0}, attrs...),
	}
	msgs, err := conn.Execute(req)
	if err != nil {
		return nil, fmt.Errorf("dump rules of %s %s: %w", c.Table.Name, c.Name, err)
	}
	rules, err := decodeRules(msgs)
	if err != nil {
		return nil, err
	}
	out := rules[:0]
	for _, r := range rules {
		// The filter is the kernel's; keep only what was asked for.
		if r.family == byte(c.Table.Family) && r.table == c.Table.Name && r.chain == c.Name {
			out = append(out, r)
		}
	}
	return out, nil
}

// decodeRules decodes NFT_MSG_NEWRULE messages of a dump.
func decodeRules(msgs []netlink.Message) ([]rawRule, error) {
	out := make([]rawRule, 0, len(msgs))
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		r := rawRule{family: m.Data[0]}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return nil, err
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			switch ad.Type() &^ netlink.Nested {
			case unix.NFTA_RULE_TABLE:
				r.table = ad.String()
			case unix.NFTA_RULE_CHAIN:
				r.chain = ad.String()
			case unix.NFTA_RULE_HANDLE:
				r.handle = ad.Uint64()
			case unix.NFTA_RULE_USERDATA:
				r.userData = ad.Bytes()
			case unix.NFTA_RULE_EXPRESSIONS:
				ad.Nested(func(list *netlink.AttributeDecoder) error {
					for list.Next() {
						list.Nested(func(e *netlink.AttributeDecoder) error {
							return r.decodeExpr(e)
						})
					}
					return nil
				})
			}
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("rule %s %s handle %d: %w", r.table, r.chain, r.handle, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// decodeExpr decodes one NFTA_LIST_ELEM of a rule's expressions.
func (r *rawRule) decodeExpr(ad *netlink.AttributeDecoder) error {
	var name string
	var data []byte
	for ad.Next() {
		switch ad.Type() &^ netlink.Nested {
		case unix.NFTA_EXPR_NAME:
			name = ad.String()
		case unix.NFTA_EXPR_DATA:
			data = ad.Bytes()
		}
	}
	if name == "notrack" {
		r.exprs = append(r.exprs, &expr.Notrack{})
		return nil
	}
	e := newExpr(name)
	if e == nil {
		r.unknown = append(r.unknown, name)
		return nil
	}
	if err := expr.Unmarshal(r.family, data, e); err != nil {
		return fmt.Errorf("expression %s: %w", name, err)
	}
	// A verdict is an immediate into the verdict register.
	if imm, ok := e.(*expr.Immediate); ok && imm.Register == unix.NFT_REG_VERDICT && len(imm.Data) == 0 {
		v := &expr.Verdict{}
		if err := expr.Unmarshal(r.family, data, v); err != nil {
			return fmt.Errorf("expression %s: %w", name, err)
		}
		e = v
	}
	r.exprs = append(r.exprs, e)
	return nil
}

// setKey identifies a set across dumps.
type setKey struct {
	family byte
	table  string
	name   string
}

// setMeta is what the kernel says of a set's types.
type setMeta struct {
	keyType  uint32 // nft datatype, 6 bits per part for concatenations
	dataType uint32 // nft datatype, or nftDataVerdict
	flags    uint32
}

// nftDataVerdict is NFT_DATA_VERDICT, the data type of verdict maps.
const nftDataVerdict = 0xffffff00

// setTypes dumps every set's key and data types: google/nftables v0.3.0
// mixes them up for verdict maps.
func setTypes(netns int) (map[setKey]setMeta, error) {
	msgs, err := dump(netns, unix.NFT_MSG_GETSET, "sets")
	if err != nil {
		return nil, err
	}
	out := map[setKey]setMeta{}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		k := setKey{family: m.Data[0]}
		var meta setMeta
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return nil, err
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_SET_TABLE:
				k.table = ad.String()
			case unix.NFTA_SET_NAME:
				k.name = ad.String()
			case unix.NFTA_SET_KEY_TYPE:
				meta.keyType = ad.Uint32()
			case unix.NFTA_SET_DATA_TYPE:
				meta.dataType = ad.Uint32()
			case unix.NFTA_SET_FLAGS:
				meta.flags = ad.Uint32()
			}
		}
		if err := ad.Err(); err != nil {
			return nil, err
		}
		out[k] = meta
	}
	return out, nil
}

// nftTypeNames are nftables' datatype numbers (include/datatype.h) for the
// types the decoder knows.
var nftTypeNames = map[uint32]string{1: "verdict", 2: "nf_proto", 4: "integer", 5: "string", 7: "ipv4_addr", 8: "ipv6_addr",
	9: "ether_addr", 10: "ether_type", 12: "inet_proto", 13: "inet_service", 19: "mark", 20: "iface_index",
	26: "ct_state", 28: "ct_status", 31: "pkt_type", 38: "fib_addrtype", 41: "ifname"}

// typeNames splits a (possibly concatenated) key type into part names.
func typeNames(t uint32) []string {
	var parts []string
	for t != 0 {
		parts = append([]string{nftTypeNameOf(t & 0x3f)}, parts...)
		t >>= 6
	}
	return parts
}

func nftTypeNameOf(t uint32) string {
	if n, ok := nftTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type%d", t)
}

// chainKey identifies a chain across dumps.
type chainKey struct {
	family       byte
	table, chain string
}

// chainDevices dumps the devices ingress and egress chains hook:
// google/nftables v0.3.0 does not decode them when listing chains.
func chainDevices(netns int) (map[chainKey][]string, error) {
	msgs, err := dump(netns, unix.NFT_MSG_GETCHAIN, "chains")
	if err != nil {
		return nil, err
	}
	out := map[chainKey][]string{}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		k := chainKey{family: m.Data[0]}
		var devs []string
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return nil, err
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			switch ad.Type() &^ netlink.Nested {
			case unix.NFTA_CHAIN_TABLE:
				k.table = ad.String()
			case unix.NFTA_CHAIN_NAME:
				k.chain = ad.String()
			case unix.NFTA_CHAIN_HOOK:
				ad.Nested(func(h *netlink.AttributeDecoder) error {
					for h.Next() {
						switch h.Type() &^ netlink.Nested {
						case unix.NFTA_HOOK_DEV:
							devs = append(devs, h.String())
						case nftaHookDevs:
							h.Nested(func(l *netlink.AttributeDecoder) error {
								for l.Next() {
									devs = append(devs, l.String())
								}
								return nil
							})
						}
					}
					return nil
				})
			}
		}
		if err := ad.Err(); err != nil {
			return nil, err
		}
		if len(devs) > 0 {
			out[k] = devs
		}
	}
	return out, nil
}

// nftaHookDevs is NFTA_HOOK_DEVS (linux/netfilter/nf_tables.h), the list of
// devices of a multi-device chain; x/sys/unix does not define it.
const nftaHookDevs = 4

// dump sends one nftables dump request of type msg for every family in the
// namespace and returns the replies; what names the objects in errors.
func dump(netns int, msg uint16, what string) ([]netlink.Message, error) {
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	defer conn.Close()
	msgs, err := conn.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | msg),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil {
		return nil, fmt.Errorf("dump %s: %w", what, err)
	}
	return msgs, nil
}
