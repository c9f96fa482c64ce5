package trace

import (
	"testing"
	"time"
)

// FuzzDecodeEvent feeds arbitrary payloads to the trace message decoder
// and the packet assembler: errors are fine, panics are not, and a decoded
// event is always complete.
func FuzzDecodeEvent(f *testing.F) {
	a := newAssembler(TableName, map[uint32]bool{2: true}, time.Millisecond, nil)
	t0 := time.Unix(0, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEvent(b)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if e.Table == "" && e.Chain == "" && e.Type == "" {
			t.Fatalf("empty event decoded without error: %q", b)
		}
		if e.Type != TypeRule && e.Type != TypeReturn && e.Type != TypePolicy {
			t.Fatalf("type %q", e.Type)
		}
		_ = e.String()
		for _, p := range a.add(e, t0) {
			_ = p.String()
		}
		for _, p := range a.flush(t0, true) {
			_ = p.String()
		}
	})
}
