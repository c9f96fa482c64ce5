// Command idlefloor is the least a Go program does to be an idle VRRP
// Master: once a second a timerfd wakes it in the netpoller and it sends
// one VRRPv2 advert to 224.0.0.18 from a raw socket, with raw system calls
// and one P, as `vrrpdoctor run` does. It has no state machine, no
// goroutine hop and no diagnosis: its CPU time, measured beside keepalived
// and `vrrpdoctor run --no-diagnose` (bench/idlefloor.sh), is the floor the
// Go runtime sets for an idle daemon on this machine.
//
// Run it in a lab network namespace only (bench/idlefloor.sh does):
// it sends on the interface named by -i.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

func main() {
	ifname := flag.String("i", "eth0", "interface to send on")
	flag.Parse()
	runtime.GOMAXPROCS(1)
	if err := run(*ifname); err != nil {
		fmt.Fprintln(os.Stderr, "idlefloor:", err)
		os.Exit(1)
	}
}

func run(ifname string) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return err
	}
	c, err := net.ListenPacket("ip4:112", "0.0.0.0")
	if err != nil {
		return err
	}
	p := ipv4.NewPacketConn(c)
	if err := p.SetMulticastInterface(ifi); err != nil {
		return err
	}
	if err := p.SetMulticastTTL(255); err != nil {
		return err
	}
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	// VRRPv2 advert: VRID 1, priority 150, one address, advert_int 1.
	msg := []byte{0x21, 1, 150, 1, 0, 1, 0, 0, 198, 51, 100, 100, 0, 0, 0, 0, 0, 0, 0, 0}
	sum := uint32(0)
	for i := 0; i < len(msg); i += 2 {
		sum += uint32(msg[i])<<8 | uint32(msg[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	msg[6], msg[7] = byte(^sum>>8), byte(^sum)
	sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: [4]byte{224, 0, 0, 18}}
	iov := unix.Iovec{Base: &msg[0]}
	iov.SetLen(len(msg))
	hdr := unix.Msghdr{Name: (*byte)(unsafe.Pointer(&sa)), Namelen: unix.SizeofSockaddrInet4, Iov: &iov}
	hdr.SetIovlen(1)

	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return err
	}
	tf := os.NewFile(uintptr(tfd), "timerfd")
	traw, err := tf.SyscallConn()
	if err != nil {
		return err
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(time.Second)), Interval: unix.NsecToTimespec(int64(time.Second))}
	if err := unix.TimerfdSettime(tfd, 0, &spec, nil); err != nil {
		return err
	}
	var buf [8]byte
	read := func(fd uintptr) bool {
		_, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), 8)
		return e != unix.EAGAIN
	}
	var serr unix.Errno
	send := func(fd uintptr) bool {
		_, _, serr = unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&hdr)), 0)
		return serr != unix.EAGAIN
	}
	for {
		if err := traw.Read(read); err != nil {
			return err
		}
		if err := raw.Write(send); err != nil {
			return err
		}
		if serr != 0 {
			return fmt.Errorf("sendmsg: %w", serr)
		}
	}
}
