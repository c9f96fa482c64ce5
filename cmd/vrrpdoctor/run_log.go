package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// newLogger makes the daemon's logger. Formats:
//
//   - text: logfmt (key=value), with time= unless standard error is
//     connected to the journal ($JOURNAL_STREAM names it), which stamps
//     every line itself;
//   - json: one JSON object per line;
//   - journal: logfmt without time=, each line prefixed with its syslog
//     priority (<3> error, <4> warning, <6> info, <7> debug) as
//     sd-daemon(3) describes, so that journalctl -p filters and colours
//     by level.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		if toJournal(w) {
			opts.ReplaceAttr = dropTime
		}
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "journal":
		opts.ReplaceAttr = dropTime
		return slog.New(&journalHandler{mu: &sync.Mutex{}, w: w, inner: slog.NewTextHandler(w, opts)}), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text, json or journal", format)
}

// dropTime removes the record's time.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// toJournal reports whether w is the stream systemd connected to the
// journal: $JOURNAL_STREAM holds its "device:inode" (systemd.exec(5)).
func toJournal(w io.Writer) bool {
	js := os.Getenv("JOURNAL_STREAM")
	f, ok := w.(*os.File)
	if js == "" || !ok {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return js == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// journalHandler prefixes each record of a text handler writing to w with
// its syslog priority.
type journalHandler struct {
	mu    *sync.Mutex // shared by the handlers derived from one another
	w     io.Writer
	inner slog.Handler
}

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	prio := 6 // LOG_INFO
	switch {
	case r.Level >= slog.LevelError:
		prio = 3 // LOG_ERR
	case r.Level >= slog.LevelWarn:
		prio = 4 // LOG_WARNING
	case r.Level < slog.LevelInfo:
		prio = 7 // LOG_DEBUG
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := fmt.Fprintf(h.w, "<%d>", prio); err != nil {
		return err
	}
	return h.inner.Handle(ctx, r)
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{mu: h.mu, w: h.w, inner: h.inner.WithAttrs(as)}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{mu: h.mu, w: h.w, inner: h.inner.WithGroup(name)}
}
