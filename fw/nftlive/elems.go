package nftlive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// elemWorkers is how many sockets dumpElements reads from at once.
const elemWorkers = 2

// setElems is what dumpElements read of one set: its elements, or why not.
type setElems struct {
	els []nftables.SetElement
	err error
}

// dumpElements reads the elements of many sets. The kernel dumps the
// elements of one set per request (NFT_MSG_GETSETELEM names the set), and a
// dump takes at least two replies, so requests cannot be queued on one
// socket: one behind a running dump is refused with EBUSY. google/nftables'
// GetSetElements spends about six system calls on each set (an
// acknowledgement, and a peek before every read); for the hundreds of
// anonymous sets of a large ruleset that is a fifth of the whole read. Here
// each set costs one write and two reads, on elemWorkers sockets at once.
func dumpElements(netns int, sets []setKey) (map[setKey]setElems, error) {
	results := make([]setElems, len(sets))
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, elemWorkers)
	for w := range elemWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
			if err != nil {
				errs[w] = fmt.Errorf("netlink: %w", err)
				return
			}
			defer conn.Close()
			raw, err := conn.SyscallConn()
			if err != nil {
				errs[w] = fmt.Errorf("netlink: %w", err)
				return
			}
			buf := make([]byte, 1<<16)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(sets) {
					return
				}
				results[i], err = dumpSetElems(raw, buf, sets[i], uint32(i+1))
				if err != nil {
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
	out := make(map[setKey]setElems, len(sets))
	for i, s := range sets {
		out[s] = results[i]
	}
	return out, nil
}

// dumpSetElems dumps the elements of one set. An error reading the socket is
// returned; one the kernel gives for the set is in the result.
func dumpSetElems(raw syscall.RawConn, buf []byte, s setKey, seq uint32) (setElems, error) {
	var r setElems
	for attempt := 0; ; attempt++ {
		req, err := elemRequest(s, seq)
		if err != nil {
			return r, err
		}
		if err := rawSend(raw, req); err != nil {
			return r, fmt.Errorf("dump elements of %s: %w", s.name, err)
		}
		r = setElems{}
		again := false
	read:
		for {
			nr, err := rawRecv(raw, buf)
			if err != nil {
				return r, fmt.Errorf("dump elements of %s: %w", s.name, err)
			}
			msgs, err := syscall.ParseNetlinkMessage(buf[:nr])
			if err != nil {
				return r, fmt.Errorf("dump elements of %s: %w", s.name, err)
			}
			for _, m := range msgs {
				if m.Header.Seq != seq {
					continue
				}
				switch m.Header.Type {
				case unix.NLMSG_DONE:
					break read
				case unix.NLMSG_ERROR:
					if len(m.Data) < 4 {
						return r, errors.New("dump set elements: short error message")
					}
					if code := -int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
						return setElems{err: syscall.Errno(code)}, nil
					}
					break read
				default:
					if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
						// The set changed during the dump.
						again = true
					}
					if r.err != nil {
						continue
					}
					els, err := decodeElements(m.Data)
					if err != nil {
						r.err = err
						continue
					}
					r.els = append(r.els, els...)
				}
			}
		}
		if !again {
			return r, nil
		}
		if attempt == 10 {
			return setElems{err: errors.New("the set kept changing while it was read")}, nil
		}
	}
}

// elemRequest builds the NFT_MSG_GETSETELEM dump request of one set.
func elemRequest(s setKey, seq uint32) ([]byte, error) {
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_SET_ELEM_LIST_TABLE, Data: []byte(s.table + "\x00")},
		{Type: unix.NFTA_SET_ELEM_LIST_SET, Data: []byte(s.name + "\x00")},
	})
	if err != nil {
		return nil, err
	}
	m := netlink.Message{
		Header: netlink.Header{
			Type:     netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETSETELEM),
			Flags:    netlink.Request | netlink.Dump,
			Sequence: seq,
		},
		Data: append([]byte{s.family, unix.NFNETLINK_V0, 0, 0}, attrs...),
	}
	m.Header.Length = uint32(unix.NLMSG_HDRLEN + len(m.Data))
	return m.MarshalBinary()
}

func rawSend(raw syscall.RawConn, b []byte) error {
	var serr error
	err := raw.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return serr
}

func rawRecv(raw syscall.RawConn, buf []byte) (int, error) {
	var n int
	var rerr error
	err := raw.Read(func(fd uintptr) bool {
		var flags int
		n, _, flags, _, rerr = unix.Recvmsg(int(fd), buf, nil, 0)
		if rerr == nil && flags&unix.MSG_TRUNC != 0 {
			rerr = fmt.Errorf("netlink message of more than %d bytes", len(buf))
		}
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

// decodeElements decodes the elements of one NFT_MSG_NEWSETELEM message
// (after its netlink header): key, key end, flags and data. Verdict data is
// left raw in Val, for verdictData.
func decodeElements(b []byte) ([]nftables.SetElement, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("set element message of %d bytes", len(b))
	}
	ad, err := netlink.NewAttributeDecoder(b[4:])
	if err != nil {
		return nil, fmt.Errorf("set elements: %w", err)
	}
	ad.ByteOrder = binary.BigEndian
	var out []nftables.SetElement
	for ad.Next() {
		if ad.Type()&^netlink.Nested != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
			continue
		}
		ad.Nested(func(list *netlink.AttributeDecoder) error {
			for list.Next() {
				var e nftables.SetElement
				catchAll := false
				list.Nested(func(el *netlink.AttributeDecoder) error {
					for el.Next() {
						switch el.Type() &^ netlink.Nested {
						case unix.NFTA_SET_ELEM_KEY:
							el.Nested(func(d *netlink.AttributeDecoder) error { e.Key = dataValue(d); return nil })
						case nftaSetElemKeyEnd:
							el.Nested(func(d *netlink.AttributeDecoder) error { e.KeyEnd = dataValue(d); return nil })
						case unix.NFTA_SET_ELEM_DATA:
							el.Nested(func(d *netlink.AttributeDecoder) error { e.Val = dataValue(d); return nil })
						case unix.NFTA_SET_ELEM_FLAGS:
							flags := el.Uint32()
							e.IntervalEnd = flags&unix.NFT_SET_ELEM_INTERVAL_END != 0
							catchAll = flags&nftSetElemCatchall != 0
						}
					}
					return nil
				})
				if catchAll {
					// elements() tells the catch-all by its missing key.
					e.Key, e.KeyEnd, e.IntervalEnd = nil, nil, false
				}
				out = append(out, e)
			}
			return nil
		})
	}
	if err := ad.Err(); err != nil {
		return nil, fmt.Errorf("set elements: %w", err)
	}
	return out, nil
}

// dataValue returns the NFTA_DATA_VALUE of an nft_data, or the raw
// NFTA_DATA_VERDICT attributes.
func dataValue(d *netlink.AttributeDecoder) []byte {
	var v []byte
	for d.Next() {
		switch d.Type() &^ netlink.Nested {
		case unix.NFTA_DATA_VALUE, unix.NFTA_DATA_VERDICT:
			v = d.Bytes()
		}
	}
	return v
}

// nftaSetElemKeyEnd is NFTA_SET_ELEM_KEY_END (linux/netfilter/nf_tables.h),
// the inclusive upper bound of an element of a set with concatenated
// intervals.
const nftaSetElemKeyEnd = 10

// nftSetElemCatchall is NFT_SET_ELEM_CATCHALL (linux/netfilter/nf_tables.h),
// the flag of a set's catch-all element ("*"), which has no key.
const nftSetElemCatchall = 0x2
