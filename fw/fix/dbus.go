package fix

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/godbus/dbus/v5"
)

// firewalld's D-Bus names.
const (
	fwdName       = "org.fedoraproject.FirewallD1"
	fwdPath       = dbus.ObjectPath("/org/fedoraproject/FirewallD1")
	fwdConfigPath = dbus.ObjectPath("/org/fedoraproject/FirewallD1/config")
)

// Bus adds and removes firewalld rich rules of a zone over firewalld's D-Bus
// API, runtime and permanent. Policies are left to firewall-cmd.
type Bus struct {
	Conn *dbus.Conn
}

// ConnectBus connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS is
// honoured).
func ConnectBus(ctx context.Context) (*Bus, error) {
	c, err := dbus.ConnectSystemBus(dbus.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	return &Bus{Conn: c}, nil
}

// Close closes the connection.
func (b *Bus) Close() error { return b.Conn.Close() }

// rich adds (add) or removes a rich rule of zone, in the runtime and the
// permanent configuration. A rule already there (adding) or already gone
// (removing) is not an error.
func (b *Bus) rich(ctx context.Context, zone, rule string, add bool) error {
	verb := "removeRichRule"
	if add {
		verb = "addRichRule"
	}
	obj := b.Conn.Object(fwdName, fwdPath)
	args := []any{zone, rule}
	if add {
		args = append(args, int32(0)) // no timeout
	}
	if err := obj.CallWithContext(ctx, fwdName+".zone."+verb, 0, args...).Err; err != nil && !benign(err) {
		return fmt.Errorf("firewalld %s (runtime, zone %s): %w", verb, zone, err)
	}
	var path dbus.ObjectPath
	if err := b.Conn.Object(fwdName, fwdConfigPath).CallWithContext(ctx, fwdName+".config.getZoneByName", 0, zone).Store(&path); err != nil {
		return fmt.Errorf("firewalld permanent zone %s: %w", zone, err)
	}
	if err := b.Conn.Object(fwdName, path).CallWithContext(ctx, fwdName+".config.zone."+verb, 0, rule).Err; err != nil && !benign(err) {
		return fmt.Errorf("firewalld %s (permanent, zone %s): %w", verb, zone, err)
	}
	return nil
}

// benign reports firewalld's "already there" and "not there" answers.
func benign(err error) bool {
	var de dbus.Error
	if errors.As(err, &de) {
		for _, b := range de.Body {
			if s, ok := b.(string); ok && (strings.HasPrefix(s, "ALREADY_ENABLED") || strings.HasPrefix(s, "NOT_ENABLED")) {
				return true
			}
		}
	}
	return strings.Contains(err.Error(), "ALREADY_ENABLED") || strings.Contains(err.Error(), "NOT_ENABLED")
}

// zoneOfSelector is the zone of a "--zone=Z" selector ("" for a policy).
func zoneOfSelector(sel string) string {
	z, _ := strings.CutPrefix(sel, "--zone=")
	if z == sel {
		return ""
	}
	return z
}
