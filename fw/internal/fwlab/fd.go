package fwlab

import (
	"syscall"
)

func openNS(name string) (int, error) {
	return syscall.Open("/run/netns/"+name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
}

func closeFD(fd int) error { return syscall.Close(fd) }
