// Package hwm lets a probe program report its own peak RSS: getrusage of a
// child counts the memory of the parent it was forked from until exec, so
// the probes read their VmHWM themselves. It uses only package syscall,
// which every Go program links anyway.
package hwm

import "syscall"

// Print writes the VmHWM line of /proc/self/status to standard output.
func Print() {
	fd, err := syscall.Open("/proc/self/status", syscall.O_RDONLY, 0)
	if err != nil {
		panic(err)
	}
	defer syscall.Close(fd)
	var buf [4096]byte
	n, err := syscall.Read(fd, buf[:])
	if err != nil {
		panic(err)
	}
	const key = "VmHWM:"
	b := buf[:n]
	for i := 0; i+len(key) <= len(b); i++ {
		if (i == 0 || b[i-1] == '\n') && string(b[i:i+len(key)]) == key {
			j := i
			for j < len(b) && b[j] != '\n' {
				j++
			}
			syscall.Write(1, b[i:j+1])
			return
		}
	}
	panic("no VmHWM in /proc/self/status")
}
