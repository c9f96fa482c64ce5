package watch

import (
	"errors"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// procNetFile is a file of /proc/net that a watch reads again and again.
type procNetFile int

const (
	ipTablesNames procNetFile = iota
	ip6TablesNames
	igmpFile
	igmp6File
	numProcNetFiles
)

var procNetNames = [numProcNetFiles]string{"ip_tables_names", "ip6_tables_names", "igmp", "igmp6"}

// procNetFiles reads files of /proc/net that a watch reads every window or
// every few seconds: each is opened once, in the network namespace of the
// thread that first reads it (procDir/thread-self/net, else procDir/net; a
// /proc/net file keeps the namespace it was opened in), and read again from
// its start with pread — no open, close or path walk each time. Each file's
// buffer is reused: what read returns is valid until the file's next read.
type procNetFiles struct {
	procDir string
	fds     [numProcNetFiles]int
	open    [numProcNetFiles]bool
	paths   [numProcNetFiles]string
	bufs    [numProcNetFiles][]byte
}

// read returns the content of file f; errors are as os.ReadFile's (a file
// that does not exist is fs.ErrNotExist).
func (p *procNetFiles) read(procDir string, f procNetFile) ([]byte, error) {
	if p.procDir != procDir {
		p.close()
		p.procDir = procDir
	}
	if !p.open[f] {
		path := filepath.Join(procDir, "thread-self", "net", procNetNames[f])
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			var st unix.Stat_t
			if unix.Stat(filepath.Join(procDir, "thread-self"), &st) != nil {
				// No /proc/thread-self (before Linux 3.17).
				path = filepath.Join(procDir, "net", procNetNames[f])
				fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			}
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		p.fds[f], p.open[f], p.paths[f] = fd, true, path
	}
	buf := p.bufs[f]
	if buf == nil {
		buf = make([]byte, 1<<10)
	}
	// A seq_file read may stop short of the buffer before the end: read on
	// until it returns nothing.
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
		p.bufs[f] = buf
		m, err := unix.Pread(p.fds[f], buf[n:], int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(p.fds[f])
			p.open[f] = false
			return nil, &fs.PathError{Op: "read", Path: p.paths[f], Err: err}
		}
		if m == 0 {
			return buf[:n], nil
		}
		n += m
	}
}

func (p *procNetFiles) close() {
	for i, fd := range p.fds {
		if p.open[i] {
			unix.Close(fd)
			p.open[i] = false
		}
	}
}
