package keepalived

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAgainstKeepalivedDump compares the values vrrpdoctor reads with those
// keepalived itself uses: keepalived 2.2.7 is started for a moment in a
// throwaway network namespace (the lab of keepalived_test.go) with -d, and
// the "VRRP Topology" part of its configuration dump is compared, instance
// by instance, with the Config.
func TestAgainstKeepalivedDump(t *testing.T) {
	needLab(t)
	for _, tc := range fileCases {
		if tc.ka.code >= 128 || tc.ourErr {
			continue // keepalived does not survive it, or vrrpdoctor refuses it
		}
		t.Run(tc.file+"@"+tc.id, func(t *testing.T) {
			path := filepath.Join(testdata, tc.file)
			cfg, err := ParseFile(path, WithConfigID(tc.id))
			if err != nil {
				t.Fatal(err)
			}
			dump := keepalivedDump(t, path, tc.id)
			var names []string
			for name := range dump {
				names = append(names, name)
			}
			sort.Strings(names)
			if len(names) != len(cfg.Instances) {
				t.Errorf("keepalived has instances %v, vrrpdoctor %d", names, len(cfg.Instances))
			}
			for _, name := range names {
				in := cfg.Instance(name)
				if in == nil {
					t.Errorf("keepalived has %s, vrrpdoctor does not", name)
					continue
				}
				ours := dumpView(in)
				for k, v := range dump[name] {
					if ours[k] != v {
						t.Errorf("%s: %s: keepalived %q, vrrpdoctor %q", name, k, v, ours[k])
					}
				}
				for _, k := range []string{"Virtual IP", "Virtual IP Excluded", "Unicast Peer", "Tracked interfaces", "Tracked scripts"} {
					if _, ok := dump[name][k]; !ok && ours[k] != "" {
						t.Errorf("%s: %s: keepalived has none, vrrpdoctor %q", name, k, ours[k])
					}
				}
			}
		})
	}
}

// dumpView renders an Instance as keepalived -d would.
func dumpView(in *Instance) map[string]string {
	m := map[string]string{
		"VRRP Version":                         fmt.Sprint(in.Version),
		"Wantstate":                            in.State.String(),
		"Interface":                            in.Interface,
		"Virtual Router ID":                    fmt.Sprint(in.VRID),
		"Priority":                             fmt.Sprint(in.Priority),
		"Accept":                               onOff(in.Accept),
		"Preempt":                              onOff(!in.Nopreempt),
		"Gratuitous ARP delay":                 fmt.Sprint(int(in.Garp.MasterDelay.Seconds())),
		"Gratuitous ARP repeat":                fmt.Sprint(in.Garp.MasterRepeat),
		"Gratuitous ARP refresh":               fmt.Sprint(int(in.Garp.MasterRefresh.Seconds())),
		"Gratuitous ARP refresh repeat":        fmt.Sprint(in.Garp.MasterRefreshRepeat),
		"Gratuitous ARP lower priority delay":  fmt.Sprint(int(in.Garp.LowerPrioDelay.Seconds())),
		"Gratuitous ARP lower priority repeat": fmt.Sprint(in.Garp.LowerPrioRepeat),
		"Down timer adverts":                   fmt.Sprint(in.DownTimerAdverts),
		"Send advert after receive lower priority advert":  fmt.Sprint(!in.LowerPrioNoAdvert),
		"Send advert after receive higher priority advert": fmt.Sprint(in.HigherPrioSendAdvert),
	}
	if in.Version == 2 {
		m["Advert interval"] = fmt.Sprintf("%d sec", in.AdvertInt/time.Second)
		m["Authentication type"] = map[AuthType]string{AuthNone: "none", AuthPass: "SIMPLE_PASSWORD", AuthAH: "IPSEC_AH"}[in.Auth.Type]
		if in.Auth.Type == AuthPass {
			m["Password"] = in.Auth.Pass
		}
	} else {
		m["Advert interval"] = fmt.Sprintf("%d milli-sec", in.AdvertInt/time.Millisecond)
	}
	if in.PreemptDelay > 0 {
		m["Preempt delay"] = fmt.Sprintf("%g secs", in.PreemptDelay.Seconds())
	}
	var vips, evips, peers, ifs, scripts []string
	for _, v := range in.VIPs {
		vips = append(vips, v.Prefix.String())
	}
	for _, v := range in.ExcludedVIPs {
		evips = append(evips, v.Prefix.String())
	}
	for _, p := range in.UnicastPeers {
		peers = append(peers, fmt.Sprintf("%s min_ttl %d max_ttl %d", p.Addr, p.MinTTL, p.MaxTTL))
	}
	for _, ti := range in.TrackInterfaces {
		ifs = append(ifs, fmt.Sprintf("%s weight %d%s", ti.Name, ti.Weight, rev(ti.Reverse)))
	}
	for _, ts := range in.TrackScripts {
		scripts = append(scripts, fmt.Sprintf("%s weight %d%s", ts.Name, ts.Weight, rev(ts.Reverse)))
	}
	for k, l := range map[string][]string{"Virtual IP": vips, "Virtual IP Excluded": evips, "Unicast Peer": peers,
		"Tracked interfaces": ifs, "Tracked scripts": scripts} {
		if len(l) > 0 {
			m[k] = strings.Join(l, ", ")
		}
	}
	return m
}

func onOff(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

func rev(b bool) string {
	if b {
		return " reverse"
	}
	return ""
}

var (
	logPrefix = regexp.MustCompile(`^\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4}: `)
	dumpKeys  = regexp.MustCompile(`^   (VRRP Version|Wantstate|Interface|Virtual Router ID|Priority|Advert interval|Accept|Preempt|Preempt delay|Authentication type|Password|Gratuitous ARP [a-z ]+|Down timer adverts|Send advert after receive [a-z ]+ advert) = (.*)$`)
	dumpLists = regexp.MustCompile(`^   (Virtual IP|Virtual IP Excluded|Unicast Peer|Tracked interfaces|Tracked scripts) ?(\(\d+\))? ?:$`)
)

// keepalivedDump runs keepalived -d on path in a throwaway network
// namespace until it has printed its VRRP topology, and returns, per
// instance, the settings it printed.
func keepalivedDump(t *testing.T, path, id string) map[string]map[string]string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := strings.Replace(labScript, `if [ -n "$1" ]; then exec keepalived -t -f "$0" -i "$1"; fi
exec keepalived -t -f "$0"`, `set -- -n -l -D -d -P -f "$0" -p "$2/k.pid" -r "$2/v.pid" -c "$2/c.pid" -b "$2/b.pid" ${1:+-i "$1"}
exec keepalived "$@"`, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-n", "sh", "-c", script, abs, id, dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Stop the whole group (keepalived and its VRRP child), always.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait() // after exit or the context's kill
		pw.Close() // ends the scan below
		close(done)
	}()
	defer func() {
		go io.Copy(io.Discard, pr) // let the output copier finish
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}()

	out := map[string]map[string]string{}
	var cur map[string]string
	list := ""
	var all []string
	sc := bufio.NewScanner(pr)
	inTopology := false
	for sc.Scan() {
		line := logPrefix.ReplaceAllString(sc.Text(), "")
		all = append(all, line)
		switch {
		case strings.Contains(line, "------< VRRP Topology >------"):
			inTopology = true
			continue
		case inTopology && strings.HasPrefix(line, "------<"):
			return out
		case !inTopology:
			continue
		case !strings.HasPrefix(line, " "):
			// Another keepalived process's message ("Startup complete")
			// interleaved with the dump: every dump line is indented.
			continue
		}
		if name, ok := strings.CutPrefix(line, " VRRP Instance = "); ok {
			cur = map[string]string{}
			out[name] = cur
			list = ""
			continue
		}
		if cur == nil {
			continue
		}
		if m := dumpKeys.FindStringSubmatch(line); m != nil {
			cur[m[1]], list = m[2], ""
			continue
		}
		if m := dumpLists.FindStringSubmatch(line); m != nil {
			list = m[1]
			continue
		}
		if list != "" && strings.HasPrefix(line, "     ") {
			item := strings.TrimSpace(line)
			if list == "Virtual IP" || list == "Virtual IP Excluded" {
				item, _, _ = strings.Cut(item, " ")
			}
			if cur[list] != "" {
				cur[list] += ", "
			}
			cur[list] += item
			continue
		}
		list = ""
	}
	t.Fatalf("no VRRP topology in keepalived's output:\n%s", strings.Join(all, "\n"))
	return nil
}
