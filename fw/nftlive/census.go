package nftlive

import (
	"encoding/binary"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ruleKey identifies a rule across dumps.
type ruleKey struct {
	family byte
	table  string
	chain  string
	handle uint64
}

// census dumps every rule over netlink and returns the names of its
// expressions as the kernel holds them. google/nftables silently skips
// expression kinds it cannot decode; comparing its result with this list
// tells which rules it did not read in full.
func census(netns int) (map[ruleKey][]string, error) {
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	defer conn.Close()
	req := netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETRULE),
			Flags: netlink.Request | netlink.Dump,
		},
		// nfgenmsg: family AF_UNSPEC (all), version, resource id.
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	}
	msgs, err := conn.Execute(req)
	if err != nil {
		return nil, fmt.Errorf("dump rules: %w", err)
	}
	out := map[ruleKey][]string{}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		k := ruleKey{family: m.Data[0]}
		var names []string
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return nil, err
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_RULE_TABLE:
				k.table = ad.String()
			case unix.NFTA_RULE_CHAIN:
				k.chain = ad.String()
			case unix.NFTA_RULE_HANDLE:
				k.handle = ad.Uint64()
			case unix.NFTA_RULE_EXPRESSIONS:
				ad.Nested(func(nad *netlink.AttributeDecoder) error {
					for nad.Next() {
						if nad.Type()&^netlink.Nested != unix.NFTA_LIST_ELEM {
							continue
						}
						nad.Nested(func(ead *netlink.AttributeDecoder) error {
							for ead.Next() {
								if ead.Type() == unix.NFTA_EXPR_NAME {
									names = append(names, ead.String())
								}
							}
							return nil
						})
					}
					return nil
				})
			}
		}
		if err := ad.Err(); err != nil {
			return nil, err
		}
		out[k] = names
	}
	return out, nil
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
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	defer conn.Close()
	req := netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETSET),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	}
	msgs, err := conn.Execute(req)
	if err != nil {
		return nil, fmt.Errorf("dump sets: %w", err)
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
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	defer conn.Close()
	req := netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETCHAIN),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	}
	msgs, err := conn.Execute(req)
	if err != nil {
		return nil, fmt.Errorf("dump chains: %w", err)
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
