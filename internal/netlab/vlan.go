package netlab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ErrNoKernelVLAN means the kernel cannot make 802.1Q interfaces (built
// without CONFIG_VLAN_8021Q, or the 8021q module cannot be loaded).
var ErrNoKernelVLAN = errors.New("kernel has no 802.1Q VLAN support (CONFIG_VLAN_8021Q / module 8021q)")

// AddVLAN creates the 802.1Q subinterface "<parent>.<vid>" on parent, up,
// and returns its name. Frames it sends leave parent tagged with vid.
func (h *Host) AddVLAN(parent string, vid int) (string, error) {
	if vid < 1 || vid > 4094 {
		return "", fmt.Errorf("netlab: VLAN ID %d: want 1..4094", vid)
	}
	name := fmt.Sprintf("%s.%d", parent, vid)
	if err := checkIfname(name); err != nil {
		return "", err
	}
	_, err := h.lab.run(nil, "ip", "-n", h.ns, "link", "add", "link", parent, "name", name, "type", "vlan", "id", fmt.Sprint(vid))
	var ce *CmdError
	if errors.As(err, &ce) && strings.Contains(ce.Stderr, "Unknown device type") {
		return "", fmt.Errorf("netlab: %s: %w", h.name, ErrNoKernelVLAN)
	}
	if err != nil {
		return "", err
	}
	if err := h.LinkUp(name); err != nil {
		return "", err
	}
	return name, nil
}

// TagVLAN makes ifname behave as an 802.1Q subinterface for VLAN vid on a
// trunk, for kernels without 8021q: a tc (clsact) eBPF program pushes the tag
// onto every frame leaving ifname (bpf_skb_vlan_push) and another pops it
// from frames arriving (bpf_skb_vlan_pop). The kernel carries the tag the
// same way a VLAN device does (in the skb's VLAN metadata), so packet
// captures on ifname show tagged 802.1Q frames in both directions; the
// host's own stack sees untagged frames, as on a subinterface.
// Little-endian hosts only (amd64, arm64).
func (h *Host) TagVLAN(ifname string, vid int) error {
	if vid < 1 || vid > 4094 {
		return fmt.Errorf("netlab: VLAN ID %d: want 1..4094", vid)
	}
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		return errors.New("netlab: TagVLAN: eBPF encoding here is for little-endian hosts")
	}
	h.lab.logf("[%s] tc clsact on %s: egress bpf_skb_vlan_push(802.1Q, %d), ingress bpf_skb_vlan_pop", h.name, ifname, vid)
	// __be16 ETH_P_8021Q as the helper expects it in a register.
	proto := int32(binary.NativeEndian.Uint16([]byte{0x81, 0x00}))
	push, err := loadSchedCls("vlan_push", []bpfInsn{
		movImm(2, proto),
		movImm(3, int32(vid)),
		call(bpfFuncSkbVlanPush),
		movImm(0, 0), // TC_ACT_OK
		exit(),
	})
	if err != nil {
		return fmt.Errorf("netlab: TagVLAN on %s: %w", h.name, err)
	}
	defer unix.Close(push)
	pop, err := loadSchedCls("vlan_pop", []bpfInsn{
		call(bpfFuncSkbVlanPop),
		movImm(0, 0),
		exit(),
	})
	if err != nil {
		return fmt.Errorf("netlab: TagVLAN on %s: %w", h.name, err)
	}
	defer unix.Close(pop)

	ns, err := netns.GetFromName(h.ns)
	if err != nil {
		return fmt.Errorf("netlab: namespace of %s: %w", h.name, err)
	}
	defer ns.Close()
	nl, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlab: netlink in %s: %w", h.name, err)
	}
	defer nl.Close()
	link, err := nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("netlab: %s on %s: %w", ifname, h.name, err)
	}
	idx := link.Attrs().Index
	if err := nl.QdiscAdd(&netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{
		LinkIndex: idx, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT,
	}}); err != nil {
		return fmt.Errorf("netlab: clsact qdisc on %s of %s: %w", ifname, h.name, err)
	}
	for _, f := range []struct {
		parent uint32
		fd     int
		name   string
	}{{netlink.HANDLE_MIN_EGRESS, push, "vlan_push"}, {netlink.HANDLE_MIN_INGRESS, pop, "vlan_pop"}} {
		if err := nl.FilterAdd(&netlink.BpfFilter{
			FilterAttrs: netlink.FilterAttrs{
				LinkIndex: idx, Parent: f.parent, Handle: netlink.MakeHandle(0, 1),
				Protocol: unix.ETH_P_ALL, Priority: 1,
			},
			Fd: f.fd, Name: f.name, DirectAction: true,
		}); err != nil {
			return fmt.Errorf("netlab: bpf filter %s on %s of %s: %w", f.name, ifname, h.name, err)
		}
	}
	return nil
}

// eBPF helper function IDs (include/uapi/linux/bpf.h).
const (
	bpfFuncSkbVlanPush = 18
	bpfFuncSkbVlanPop  = 19
)

// bpfInsn is struct bpf_insn; regs holds dst_reg in the low and src_reg in
// the high nibble (little-endian bitfield order).
type bpfInsn struct {
	code uint8
	regs uint8
	off  int16
	imm  int32
}

func movImm(dst uint8, imm int32) bpfInsn {
	return bpfInsn{code: unix.BPF_ALU64 | unix.BPF_MOV | unix.BPF_K, regs: dst, imm: imm}
}
func call(fn int32) bpfInsn { return bpfInsn{code: unix.BPF_JMP | unix.BPF_CALL, imm: fn} }
func exit() bpfInsn         { return bpfInsn{code: unix.BPF_JMP | unix.BPF_EXIT} }

// loadSchedCls loads a BPF_PROG_TYPE_SCHED_CLS program and returns its fd.
func loadSchedCls(name string, insns []bpfInsn) (int, error) {
	license := []byte("GPL\x00")
	logBuf := make([]byte, 4096)
	attr := netlink.BPFAttr{
		ProgType: uint32(netlink.BPF_PROG_TYPE_SCHED_CLS),
		InsnCnt:  uint32(len(insns)),
		Insns:    uintptr(unsafe.Pointer(&insns[0])),
		License:  uintptr(unsafe.Pointer(&license[0])),
		LogLevel: 1,
		LogSize:  uint32(len(logBuf)),
		LogBuf:   uintptr(unsafe.Pointer(&logBuf[0])),
	}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(insns)
	runtime.KeepAlive(license)
	runtime.KeepAlive(logBuf)
	if errno != 0 {
		msg := strings.TrimSpace(string(logBuf[:max(0, strings.IndexByte(string(logBuf), 0))]))
		return -1, fmt.Errorf("loading eBPF program %s: %w: %s", name, errno, msg)
	}
	return int(fd), nil
}
