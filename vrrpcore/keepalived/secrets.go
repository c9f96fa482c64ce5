package keepalived

import (
	"fmt"
	"syscall"
)

// secretWarnings warns about every file holding an auth_pass that others
// than root can read: everyone (mode o+r), or a group other than root
// (g+r). The VRRPv2 password is weak protection already; a readable file
// hands it to every local user. Files that cannot be stat'ed (a Parse of
// bytes, an fs.FS without owners) are checked only as far as they can be.
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
		st, _ := fi.Sys().(*syscall.Stat_t)
		switch {
		case perm&0o004 != 0:
			warnf(pos, WarnSuspicious, "%s holds auth_pass and is readable by everyone (mode %s): every local user can read the VRRP password; chmod 600 %s", pos.File, fmt.Sprintf("%04o", uint32(perm)), pos.File)
		case perm&0o040 != 0 && st != nil && st.Gid != 0:
			warnf(pos, WarnSuspicious, "%s holds auth_pass and is readable by group %d (mode %s), not only by root: chmod 600 %s (or chgrp root)", pos.File, st.Gid, fmt.Sprintf("%04o", uint32(perm)), pos.File)
		}
	}
}
