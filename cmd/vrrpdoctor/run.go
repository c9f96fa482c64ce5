package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	goruntime "runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vrrpdoctor/vrrpdoctor/diag/metrics"
	"github.com/vrrpdoctor/vrrpdoctor/vrrpcore/keepalived"
	vrrpruntime "github.com/vrrpdoctor/vrrpdoctor/vrrpcore/runtime"
)

// DefaultConfig is where keepalived reads its configuration.
const DefaultConfig = "/etc/keepalived/keepalived.conf"

// Exit status of run.
const (
	runExitOK     = 0
	runExitConfig = 1 // the configuration does not check out
	runExitStart  = 2 // the daemon could not start (privileges, sockets)
)

type runOptions struct {
	config      string
	check       bool
	logFormat   string
	logLevel    string
	metricsAddr string
	noDiagnose  bool
	monitor     bool
	window      time.Duration
	// signals delivers SIGTERM, SIGINT and SIGHUP; nil subscribes to the
	// process's signals.
	signals <-chan os.Signal
	// ready, when set, is called once the daemon runs (tests); d is nil
	// in monitor mode.
	ready func(d *vrrpruntime.Daemon)
	// newDiagnoser builds the self-diagnosis; nil uses diag/watch.
	newDiagnoser func(diagSpec) (diagnoser, error)
}

func newRunCmd(s streams) *cobra.Command {
	o := runOptions{}
	cmd := &cobra.Command{
		Use:   "run [-c keepalived.conf] [--check-config] [--monitor] [--metrics-address host:port]",
		Short: "Run the VRRP instances of a keepalived.conf (a keepalived replacement), diagnosing itself",
		Long: `run is a VRRP daemon that reads keepalived's own configuration and runs its
vrrp_instances in the foreground, interoperating with keepalived: one node of a
pair can run keepalived and the other vrrpdoctor.

While it runs, it diagnoses itself as check does: it compares the adverts on
the wire (what tcpdump sees) with those reaching its VRRP socket, evaluates the
firewall, and logs each finding once when it appears and once when it clears,
with the same IDs as check (e.g. split-brain, firewall-input-drop).
--no-diagnose switches that off.

--monitor speaks no VRRP at all: it watches a host running keepalived (its
configuration, its virtual addresses, both taps, the firewall) and reports
findings continuously, for those who keep keepalived and want the doctor
beside it.

--metrics-address serves Prometheus metrics on /metrics and a health check on
/healthz (200 once running and the first diagnosis window is complete, 503
with the reason otherwise). The server listens in the network namespace the
daemon runs in.

State changes, send failures, discarded adverts and findings are logged on
standard error: text (logfmt; without time= when standard error is the
systemd journal), json, or journal (logfmt with syslog priority prefixes).

Under systemd (Type=notify or notify-reload) it reports READY=1 once its
instances are started, STATUS= with their states, WATCHDOG=1 at half of
WatchdogSec while its main loop is healthy, RELOADING=1 on SIGHUP and
STOPPING=1 on shutdown. See docs/daemon.md and the unit file
cmd/vrrpdoctor/systemd/vrrpdoctor.service.

Signals: SIGTERM and SIGINT stop every instance cleanly (a Master sends a
priority-0 advert so its backup takes over at once, and removes its virtual
addresses) and exit. SIGHUP re-reads the configuration: unchanged instances
keep their state, changed ones restart, removed ones resign (priority 0,
addresses removed), and a configuration with errors is refused with its
file:line while the running one carries on.

Like keepalived's VRRP process it runs on one CPU at a time (GOMAXPROCS=1),
and it keeps the Go runtime's soft memory limit a little above the memory it
needs, re-computed after every garbage collection; GOMAXPROCS and GOMEMLIMIT
set in the environment override these (GOMEMLIMIT=off: no limit).

--check-config reads and checks the configuration against this host, prints
every error and warning with file:line:column, and exits (like keepalived -t).

Exit status: 0 clean stop or configuration OK, 1 configuration error,
2 the daemon could not start (e.g. not root).`,
		Example: `  vrrpdoctor run -c /etc/keepalived/keepalived.conf
  vrrpdoctor run --metrics-address 127.0.0.1:9712
  vrrpdoctor run --monitor --metrics-address 127.0.0.1:9712
  vrrpdoctor run --check-config -c ./keepalived.conf
  vrrpdoctor run --log-format json --log-level debug`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRun(cmd.Context(), s, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.config, "config", "c", DefaultConfig, "keepalived configuration file")
	f.BoolVarP(&o.check, "check-config", "t", false, "check the configuration and exit")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text, json or journal")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&o.metricsAddr, "metrics-address", "", "serve Prometheus /metrics and /healthz on this host:port (e.g. 127.0.0.1:9712)")
	f.BoolVar(&o.noDiagnose, "no-diagnose", false, "do not diagnose the host while running")
	f.BoolVar(&o.monitor, "monitor", false, "speak no VRRP: watch a keepalived host and report findings")
	f.DurationVar(&o.window, "diagnose-window", 0, "length of each diagnosis window (default: from the advert intervals)")
	return cmd
}

// loadConfig reads and checks the configuration; on error it prints every
// problem with its position.
func loadConfig(w io.Writer, path string) (*keepalived.Config, error) {
	cfg, err := keepalived.Check(path, keepalived.SystemHost())
	if err != nil {
		var list keepalived.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintf(w, "%s\n", e)
			}
			return cfg, fmt.Errorf("%s: %d error(s) in the configuration", path, len(list))
		}
		return cfg, err
	}
	return cfg, nil
}

// daemonRun is one running `vrrpdoctor run`: the VRRP daemon (nil in
// monitor mode), the self-diagnosis (nil with --no-diagnose), the metrics
// server and the systemd notifier.
type daemonRun struct {
	o     runOptions
	log   *slog.Logger
	d     *vrrpruntime.Daemon
	diag  *selfDiag
	col   *metrics.Collector
	sd    *sdNotifier
	srv   *metrics.Server
	kick  chan struct{} // a state changed: refresh the status line
	alive atomic.Int64  // unix nanoseconds of the main loop's last turn
	// stopping is set once shutdown began.
	stopping atomic.Bool
}

func runRun(ctx context.Context, s streams, o runOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	log, err := newLogger(s.ErrOut, o.logFormat, o.logLevel)
	if err != nil {
		return &exitError{code: runExitConfig, err: err}
	}
	if o.monitor && o.noDiagnose {
		return &exitError{code: runExitConfig, err: errors.New("--monitor is the diagnosis alone: it cannot go with --no-diagnose")}
	}
	if !o.check {
		// A daemon's runtime settings (run_mem.go): one P, and a soft
		// memory limit a little above what it needs.
		defer limitProcs()()
		defer startMemTuner().stop()
	}
	cfg, err := loadConfig(s.ErrOut, o.config)
	if cfg != nil && (o.check || err == nil) {
		for _, w := range cfg.Warnings {
			if o.check {
				fmt.Fprintln(s.ErrOut, w.String())
			} else {
				log.Warn(w.Msg, "at", w.Pos.String(), "kind", w.Kind.String())
			}
		}
	}
	if err != nil {
		return &exitError{code: runExitConfig, err: err}
	}
	r := &daemonRun{o: o, log: log, kick: make(chan struct{}, 1)}
	if !o.noDiagnose && !o.check {
		mk := o.newDiagnoser
		if mk == nil {
			mk = newWatchDiagnoser
		}
		r.diag = &selfDiag{log: log, make: mk, spec: diagSpec{path: o.config, window: o.window, monitor: o.monitor}, changed: r.wake}
	}
	if o.metricsAddr != "" && !o.check {
		var src metrics.Sources
		if !o.monitor {
			src.Status = r.status
		}
		if r.diag != nil {
			src.Findings, src.Flows = r.diag.findings, r.diag.flows
		}
		ver, rev := buildInfo()
		r.col = metrics.New(src, metrics.BuildInfo{Version: ver, Commit: rev, GoVersion: goruntime.Version()})
	}
	if !o.monitor {
		dlog := log
		if o.check {
			dlog = slog.New(slog.DiscardHandler)
		}
		d, err := vrrpruntime.New(cfg, vrrpruntime.Options{Logger: dlog, OnEvent: r.onEvent})
		if o.check {
			if d != nil {
				for _, w := range d.Warnings() {
					fmt.Fprintln(s.ErrOut, w.String())
				}
				d.Stop()
			}
			if err != nil {
				printConfigErr(s.ErrOut, err)
				return &exitError{code: runExitConfig, err: fmt.Errorf("%s: the configuration does not check out on this host", o.config)}
			}
			fmt.Fprintf(s.Out, "%s: configuration OK (%d instance(s))\n", o.config, len(cfg.Instances))
			return nil
		}
		if err != nil {
			printConfigErr(s.ErrOut, err)
			return &exitError{code: runExitConfig, err: fmt.Errorf("%s: the configuration does not check out on this host", o.config)}
		}
		r.d = d
	} else if o.check {
		fmt.Fprintf(s.Out, "%s: configuration OK (%d instance(s))\n", o.config, len(cfg.Instances))
		return nil
	}
	return r.run(ctx, cfg)
}

// run starts everything and runs the main loop until a signal or ctx
// ends it.
func (r *daemonRun) run(ctx context.Context, cfg *keepalived.Config) error {
	o, log := r.o, r.log
	sigs := o.signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		defer signal.Stop(ch)
		sigs = ch
	}
	sd, err := newSDNotifier()
	if err != nil {
		log.Warn("systemd notification socket unusable", "err", err)
	}
	r.sd = sd
	defer sd.close()
	var ln net.Listener
	if o.metricsAddr != "" {
		ln, err = net.Listen("tcp", o.metricsAddr)
		if err != nil {
			r.stopDaemon()
			return &exitError{code: runExitStart, err: fmt.Errorf("--metrics-address: %w", err)}
		}
	}
	if r.d != nil {
		if err := r.d.Start(); err != nil {
			if ln != nil {
				ln.Close()
			}
			if permissionDenied(err) {
				err = fmt.Errorf("%w: run needs CAP_NET_RAW (VRRP sockets, gratuitous ARP) and CAP_NET_ADMIN (virtual addresses); run it as root or give it these capabilities (docs/daemon.md)", err)
			}
			return &exitError{code: runExitStart, err: err}
		}
	}
	if r.diag != nil {
		if err := r.diag.start(cfg); err != nil {
			if o.monitor {
				if ln != nil {
					ln.Close()
				}
				return &exitError{code: runExitStart, err: fmt.Errorf("monitor: %w", err)}
			}
			log.Error("self-diagnosis could not start; the daemon runs without it", "err", err)
		}
	}
	r.alive.Store(time.Now().UnixNano())
	if ln != nil {
		r.serveMetrics(ln)
	}
	mode := "vrrpdoctor running"
	if o.monitor {
		mode = "vrrpdoctor monitoring"
	}
	log.Info(mode, "config", o.config, "instances", len(cfg.Instances), "pid", os.Getpid(),
		"diagnose", r.diag != nil, "metrics", o.metricsAddr)
	if err := r.sd.ready(r.statusLine()); err != nil {
		log.Warn("systemd notification failed", "err", err)
	}
	if o.ready != nil {
		o.ready(r.d)
	}

	var watchdog <-chan time.Time
	if every := r.sd.watchdogEvery(); every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		watchdog = t.C
	}
	// The status line and /healthz's liveness are refreshed on state
	// changes and at least this often.
	var refresh <-chan time.Time
	if r.sd != nil || r.srv != nil {
		t := time.NewTicker(statusEvery)
		defer t.Stop()
		refresh = t.C
	}
	last := ""
	for {
		select {
		case <-ctx.Done():
			r.shutdown()
			log.Info("vrrpdoctor stopped", "cause", context.Cause(ctx))
			return nil
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				r.reload()
				continue
			}
			log.Info("stopping", "signal", sig.String())
			r.shutdown()
			log.Info("vrrpdoctor stopped")
			return nil
		case <-watchdog:
			// Status goes through every instance's loop: it answering
			// is the health the watchdog vouches for.
			r.statusLine()
			r.alive.Store(time.Now().UnixNano())
			if err := r.sd.ping(); err != nil {
				log.Warn("systemd watchdog ping failed", "err", err)
			}
		case <-r.kick:
		case <-refresh:
		}
		r.alive.Store(time.Now().UnixNano())
		if r.sd != nil {
			if st := r.statusLine(); st != last {
				last = st
				r.sd.status(st)
			}
		}
	}
}

// statusEvery is how often the main loop refreshes the status line and
// its liveness when nothing else wakes it.
const statusEvery = 10 * time.Second

func (r *daemonRun) status() vrrpruntime.Status {
	if r.d == nil {
		return vrrpruntime.Status{}
	}
	return r.d.Status()
}

// onEvent receives the daemon's events: counted for the metrics, sends
// handed to the diagnosis, state changes told to it (they end a quiet
// window) and wake the main loop.
func (r *daemonRun) onEvent(e vrrpruntime.Event) {
	if r.col != nil {
		r.col.Observe(e)
	}
	switch e.Kind {
	case vrrpruntime.EventAdvertSent, vrrpruntime.EventSendFailed:
		r.diag.noteSend(e)
	case vrrpruntime.EventStateChange:
		r.diag.noteState()
		r.wake()
	}
}

// wake asks the main loop to refresh the status line, without blocking.
func (r *daemonRun) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// statusLine is systemd's one-line status: each instance's state, then
// the active findings, e.g. "VI_1 MASTER, VI_2 BACKUP; findings: none".
func (r *daemonRun) statusLine() string {
	var b strings.Builder
	if r.d != nil {
		st := r.d.Status()
		for i, in := range st.Instances {
			if i > 0 {
				b.WriteString(", ")
			}
			if i == 8 {
				fmt.Fprintf(&b, "+%d more", len(st.Instances)-i)
				break
			}
			fmt.Fprintf(&b, "%s %s", in.Name, in.State)
		}
		if len(st.Instances) == 0 {
			b.WriteString("no instances")
		}
	} else {
		b.WriteString("monitoring keepalived")
	}
	if r.diag != nil {
		ids := r.diag.activeIDs()
		switch {
		case len(ids) > 0:
			fmt.Fprintf(&b, "; findings: %s", strings.Join(ids, ", "))
		case r.diag.ready():
			b.WriteString("; findings: none")
		default:
			b.WriteString("; diagnosis: first window")
		}
	}
	return b.String()
}

// serveMetrics serves /metrics and /healthz on ln.
func (r *daemonRun) serveMetrics(ln net.Listener) {
	r.srv = &metrics.Server{Collector: r.col, Health: r.health}
	go func() {
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, metrics.ErrServerClosed) {
			r.log.Error("metrics server stopped", "err", err)
		}
	}()
}

// health is /healthz: nil while the daemon runs, its main loop turns and
// the diagnosis (when on) has completed its first window.
func (r *daemonRun) health() error {
	if r.stopping.Load() {
		return errors.New("stopping")
	}
	if age := time.Since(time.Unix(0, r.alive.Load())); age > 3*statusEvery {
		return fmt.Errorf("main loop stalled for %v", age.Round(time.Second))
	}
	if r.diag != nil {
		if err := r.diag.failed(); err != nil {
			return fmt.Errorf("self-diagnosis not running: %w", err)
		}
		if !r.diag.ready() {
			return errors.New("self-diagnosis has not completed its first window")
		}
	}
	return nil
}

// reload re-reads the configuration on SIGHUP. A configuration with
// errors is refused; the running one carries on. The diagnosis is rebuilt
// for the new configuration.
func (r *daemonRun) reload() {
	log := r.log
	if err := r.sd.reloading(); err != nil {
		log.Warn("systemd notification failed", "err", err)
	}
	defer func() {
		if err := r.sd.ready(r.statusLine()); err != nil {
			log.Warn("systemd notification failed", "err", err)
		}
	}()
	log.Info("reloading", "config", r.o.config)
	var buf strings.Builder
	cfg, err := loadConfig(&buf, r.o.config)
	if err == nil {
		for _, w := range cfg.Warnings {
			log.Warn(w.Msg, "at", w.Pos.String(), "kind", w.Kind.String())
		}
		if r.d != nil {
			err = r.d.Reload(cfg)
			if err != nil {
				printConfigErr(&buf, err)
			}
		}
	}
	if err != nil {
		log.Error("reload refused, the running configuration stays", "err", err,
			"problems", strings.TrimSpace(buf.String()))
		return
	}
	if r.d == nil {
		log.Info("configuration reloaded", "instances", len(cfg.Instances))
	}
	if r.diag != nil {
		if err := r.diag.start(cfg); err != nil {
			log.Error("self-diagnosis could not restart for the new configuration", "err", err)
		}
	}
}

// shutdown stops the daemon (priority 0, addresses removed), the
// diagnosis and the metrics server.
func (r *daemonRun) shutdown() {
	r.stopping.Store(true)
	if err := r.sd.stopping(); err != nil {
		r.log.Warn("systemd notification failed", "err", err)
	}
	r.stopDaemon()
	if r.diag != nil {
		r.diag.stop()
	}
	if r.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r.srv.Shutdown(ctx)
	}
}

func (r *daemonRun) stopDaemon() {
	if r.d != nil {
		r.d.Stop()
	}
}

// printConfigErr prints a configuration error, one problem per line.
func printConfigErr(w io.Writer, err error) {
	var list keepalived.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintf(w, "%s\n", e)
		}
		return
	}
	fmt.Fprintf(w, "%v\n", err)
}
