package keepalived

import (
	"fmt"
	"io/fs"
	"syscall"
)

// secretWarnings warns about every file holding an auth_pass that others
// than root can read: everyone (mode o+r, and every directory above it
// searchable by everyone), or a group other than root (g+r, the
// directories searchable by that group or by everyone). The VRRPv2
// password is weak protection already; a readable file hands it to every
// local user. Files that cannot be stat'ed (a Parse of bytes, an fs.FS
// without owners) are checked only as far as they can be.
func secretWarnings(fsys fileSystem, cfg *Config, warnf func(Pos, WarningKind, string, ...any)) {
	seen := map[string]bool{}
	for i := range cfg.Instances {
		pos, ok := cfg.Instances[i].Set["auth_pass"]
		if !ok || seen[pos.File] {
			continue
		}
		seen[pos.File] = true
		fi, err := fsys.stat(pos.File)
		if err != nil {
			continue
		}
		perm := fi.Mode().Perm()
		gid, hasGid := groupOf(fi)
		mode := fmt.Sprintf("%04o", uint32(perm))
		switch {
		case perm&0o004 != 0 && reachable(fsys, pos.File, 0o001, 0, false):
			warnf(pos, WarnInsecure, "%s holds auth_pass and is readable by everyone (mode %s): every local user can read the VRRP password; chmod 600 %s", pos.File, mode, pos.File)
		case perm&0o040 != 0 && hasGid && gid != 0 && reachable(fsys, pos.File, 0o001, gid, true):
			warnf(pos, WarnInsecure, "%s holds auth_pass and is readable by group %d (mode %s), not only by root: chmod 600 %s (or chgrp root)", pos.File, gid, mode, pos.File)
		}
	}
}

// groupOf is the file's group, when the file system says.
func groupOf(fi fs.FileInfo) (uint32, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Gid, true
}

// reachable reports whether every directory above name can be searched by
// others (otherBit), or, with byGroup, by members of gid. A directory that
// cannot be stat'ed counts as searchable (the check then errs on the side
// of the warning).
func reachable(fsys fileSystem, name string, otherBit fs.FileMode, gid uint32, byGroup bool) bool {
	for d, prev := fsys.dir(name), name; d != prev; d, prev = fsys.dir(d), d {
		fi, err := fsys.stat(d)
		if err != nil {
			continue
		}
		perm := fi.Mode().Perm()
		if perm&otherBit != 0 {
			continue
		}
		if g, ok := groupOf(fi); byGroup && ok && g == gid && perm&0o010 != 0 {
			continue
		}
		return false
	}
	return true
}
