package main

import (
	"github.com/vrrpdoctor/vrrpdoctor/diag/metrics"
	"github.com/vrrpdoctor/vrrpdoctor/diag/watch"
)

// watchDiagnoser is a diag/watch Watcher as run's diagnoser.
type watchDiagnoser struct{ *watch.Watcher }

// newWatchDiagnoser builds the Watcher run uses: about this process's own
// VRRP (Monitor false) or about a keepalived host (--monitor).
func newWatchDiagnoser(s diagSpec) (diagnoser, error) {
	w, err := watch.New(watch.Config{
		Config:     s.cfg,
		ConfigPath: s.path,
		Window:     s.window,
		Monitor:    s.monitor,
		Logger:     s.log,
		OnChange: func(c watch.Change) {
			s.onChange(findingChange{Time: c.Time, Finding: c.Finding, Active: c.Active})
		},
	})
	if err != nil {
		return nil, err
	}
	return watchDiagnoser{w}, nil
}

// Flows converts the watcher's flows for the metrics.
func (w watchDiagnoser) Flows() []metrics.Flow {
	fs := w.Watcher.Flows()
	out := make([]metrics.Flow, len(fs))
	for i, f := range fs {
		out[i] = metrics.Flow{
			Interface: f.Interface, Family: f.Family, VRID: f.VRID, Src: f.Src,
			Wire: f.Wire, Socket: f.Socket, DeliveryRatio: f.DeliveryRatio,
		}
	}
	return out
}
