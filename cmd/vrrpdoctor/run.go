package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

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
	config    string
	check     bool
	logFormat string
	logLevel  string
	// signals delivers SIGTERM, SIGINT and SIGHUP; nil subscribes to the
	// process's signals.
	signals <-chan os.Signal
	// ready, when set, is called once the daemon runs (tests).
	ready func(*vrrpruntime.Daemon)
}

func newRunCmd(s streams) *cobra.Command {
	o := runOptions{}
	cmd := &cobra.Command{
		Use:   "run [-c keepalived.conf] [--check-config]",
		Short: "Run the VRRP instances of a keepalived.conf (a keepalived replacement)",
		Long: `run is a VRRP daemon that reads keepalived's own configuration and runs its
vrrp_instances in the foreground, interoperating with keepalived: one node of a
pair can run keepalived and the other vrrpdoctor.

State changes, send failures and discarded adverts are logged on standard error
(text, or JSON with --log-format json).

Signals: SIGTERM and SIGINT stop every instance cleanly (a Master sends a
priority-0 advert so its backup takes over at once, and removes its virtual
addresses) and exit. SIGHUP re-reads the configuration: unchanged instances
keep their state, changed ones restart, and a configuration with errors is
refused while the running one carries on.

--check-config reads and checks the configuration against this host, prints
every error and warning with file:line:column, and exits (like keepalived -t).

Exit status: 0 clean stop or configuration OK, 1 configuration error,
2 the daemon could not start (e.g. not root).`,
		Example: `  vrrpdoctor run -c /etc/keepalived/keepalived.conf
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
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
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

func runRun(ctx context.Context, s streams, o runOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	log, err := newLogger(s.ErrOut, o.logFormat, o.logLevel)
	if err != nil {
		return &exitError{code: runExitConfig, err: err}
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
	dlog := log
	if o.check {
		dlog = slog.New(slog.DiscardHandler)
	}
	d, err := vrrpruntime.New(cfg, vrrpruntime.Options{Logger: dlog})
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
	sigs := o.signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		defer signal.Stop(ch)
		sigs = ch
	}
	if err := d.Start(); err != nil {
		return &exitError{code: runExitStart, err: err}
	}
	log.Info("vrrpdoctor running", "config", o.config, "instances", len(cfg.Instances), "pid", os.Getpid())
	if o.ready != nil {
		o.ready(d)
	}
	for {
		select {
		case <-ctx.Done():
			d.Stop()
			log.Info("vrrpdoctor stopped", "cause", context.Cause(ctx))
			return nil
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload(log, d, o.config)
				continue
			}
			log.Info("stopping", "signal", sig.String())
			d.Stop()
			log.Info("vrrpdoctor stopped")
			return nil
		}
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

// reload re-reads the configuration on SIGHUP. A configuration with errors
// is refused; the running one carries on.
func reload(log *slog.Logger, d *vrrpruntime.Daemon, path string) {
	log.Info("reloading", "config", path)
	var buf strings.Builder
	cfg, err := loadConfig(&buf, path)
	if err == nil {
		for _, w := range cfg.Warnings {
			log.Warn(w.Msg, "at", w.Pos.String(), "kind", w.Kind.String())
		}
		err = d.Reload(cfg)
		if err != nil {
			printConfigErr(&buf, err)
		}
	}
	if err != nil {
		log.Error("reload refused, the running configuration stays", "err", err,
			"problems", strings.TrimSpace(buf.String()))
	}
}
