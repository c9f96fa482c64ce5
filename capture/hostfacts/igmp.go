package hostfacts

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Membership is one multicast group an interface has joined, as the kernel
// lists it in /proc/net/igmp or /proc/net/igmp6.
type Membership struct {
	Ifindex   int
	Interface string
	Group     netip.Addr
	Users     int // sockets (and kernel users) holding the membership
}

// ParseIGMP parses /proc/net/igmp (IPv4 memberships). Its group addresses
// are the kernel's 32-bit value printed in hex, i.e. in host byte order.
// Errors name the line.
func ParseIGMP(b []byte) ([]Membership, error) {
	var (
		out     []Membership
		ifindex int
		ifname  string
		inIface bool
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if line == 1 {
			if !strings.HasPrefix(text, "Idx") {
				return nil, fmt.Errorf("igmp line 1: header %q does not start with Idx", text)
			}
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		fields := strings.Fields(text)
		if text[0] != ' ' && text[0] != '\t' {
			// Interface line: "3	eth0      :     2      V3"
			if len(fields) < 3 {
				return nil, fmt.Errorf("igmp line %d: interface line %q has %d fields", line, text, len(fields))
			}
			n, err := strconv.Atoi(fields[0])
			if err != nil || n < 0 {
				return nil, fmt.Errorf("igmp line %d: interface index %q", line, fields[0])
			}
			ifindex, ifname, inIface = n, strings.TrimSuffix(fields[1], ":"), true
			continue
		}
		// Group line: "				120000E0     1 0:00000000		0"
		if !inIface {
			return nil, fmt.Errorf("igmp line %d: group before any interface", line)
		}
		if len(fields) < 2 {
			return nil, fmt.Errorf("igmp line %d: group line %q has %d fields", line, text, len(fields))
		}
		v, err := strconv.ParseUint(fields[0], 16, 32)
		if err != nil || len(fields[0]) != 8 {
			return nil, fmt.Errorf("igmp line %d: group %q is not 8 hex digits", line, fields[0])
		}
		users, err := strconv.Atoi(fields[1])
		if err != nil || users < 0 {
			return nil, fmt.Errorf("igmp line %d: users %q", line, fields[1])
		}
		var a [4]byte
		binary.NativeEndian.PutUint32(a[:], uint32(v))
		out = append(out, Membership{Ifindex: ifindex, Interface: ifname, Group: netip.AddrFrom4(a), Users: users})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("igmp line %d: %w", line+1, err)
	}
	return out, nil
}

// ParseIGMP6 parses /proc/net/igmp6 (IPv6 memberships): one line per
// group, "ifindex name group users flags timer", the group as 32 hex
// digits in network order. Errors name the line.
func ParseIGMP6(b []byte) ([]Membership, error) {
	var out []Membership
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 4 {
			return nil, fmt.Errorf("igmp6 line %d: %d fields, want at least 4", line, len(fields))
		}
		ifindex, err := strconv.Atoi(fields[0])
		if err != nil || ifindex < 0 {
			return nil, fmt.Errorf("igmp6 line %d: interface index %q", line, fields[0])
		}
		var a [16]byte
		if len(fields[2]) != 32 {
			return nil, fmt.Errorf("igmp6 line %d: group %q is not 32 hex digits", line, fields[2])
		}
		if _, err := hex.Decode(a[:], []byte(fields[2])); err != nil {
			return nil, fmt.Errorf("igmp6 line %d: group %q: %v", line, fields[2], err)
		}
		users, err := strconv.Atoi(fields[3])
		if err != nil || users < 0 {
			return nil, fmt.Errorf("igmp6 line %d: users %q", line, fields[3])
		}
		out = append(out, Membership{Ifindex: ifindex, Interface: fields[1], Group: netip.AddrFrom16(a), Users: users})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("igmp6 line %d: %w", line+1, err)
	}
	return out, nil
}
