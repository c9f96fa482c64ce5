package watch

import (
	"bytes"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// iptables-legacy changes move no nftables generation. A cheap fingerprint
// of the legacy tables tells them instead: for each table the kernel lists
// (/proc/net/ip_tables_names, ip6_tables_names), the table's summary as
// iptables-legacy-save starts by reading it — IPT_SO_GET_INFO: its hooks'
// entry offsets, its rule count and its size. Adding, deleting or moving a
// rule changes it; replacing a rule by one of the same size in the same
// place does not (the periodic re-read catches that).

// Linux uapi: IPT_SO_GET_INFO and IP6T_SO_GET_INFO, and the size of struct
// ipt_getinfo / ip6t_getinfo (name[32], valid_hooks, hook_entry[5],
// underflow[5], num_entries, size).
const (
	soGetInfo   = 64
	getInfoSize = 32 + 4 + 5*4 + 5*4 + 4 + 4
)

// legacyFingerprint returns the fingerprint of the iptables-legacy tables
// of the calling thread's network namespace; "" when there are none. With
// files, the table lists are read through its open files.
func legacyFingerprint(procDir string, files *procNetFiles) (string, error) {
	if files == nil {
		files = &procNetFiles{}
		defer files.close()
	}
	var b strings.Builder
	for _, fam := range []struct {
		names  procNetFile
		domain int
		level  int
	}{
		{ipTablesNames, unix.AF_INET, unix.IPPROTO_IP},
		{ip6TablesNames, unix.AF_INET6, unix.IPPROTO_IPV6},
	} {
		names, err := files.read(procDir, fam.names)
		if err != nil || len(bytes.TrimSpace(names)) == 0 {
			continue // no legacy table of the family (or no x_tables at all)
		}
		fd, err := unix.Socket(fam.domain, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return "", fmt.Errorf("iptables-legacy fingerprint: %w", err)
		}
		for _, name := range strings.Fields(string(names)) {
			info, err := getInfo(fd, fam.level, name)
			if err != nil {
				unix.Close(fd)
				return "", fmt.Errorf("iptables-legacy fingerprint of %s: %w", name, err)
			}
			fmt.Fprintf(&b, "%d/%s:%x;", fam.domain, name, info[32:])
		}
		unix.Close(fd)
	}
	return b.String(), nil
}

// getInfo asks the kernel for a legacy table's summary (read-only: only
// tables the kernel lists are asked about, so none is created).
func getInfo(fd, level int, name string) ([]byte, error) {
	if len(name) >= 32 {
		return nil, fmt.Errorf("table name %q too long", name)
	}
	buf := make([]byte, getInfoSize)
	copy(buf, name)
	l := uint32(len(buf))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), soGetInfo,
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&l)), 0)
	if errno != 0 {
		return nil, errno
	}
	return buf[:l], nil
}
