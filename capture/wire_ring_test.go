package capture

import "testing"

func TestRingGeometry(t *testing.T) {
	for _, tt := range []struct {
		buffer, blockSize, blocks int
	}{
		{DefaultWireBuffer, 256 << 10, 32},
		{1 << 20, 256 << 10, 4},
		{1<<20 + 1, 256 << 10, 5},
		{512 << 10, 128 << 10, 4},
		{256 << 10, 64 << 10, 4}, // the daemon's self-diagnosis tap
		{128 << 10, 32 << 10, 4},
		{1, 32 << 10, 4},
		{200 << 10, 32 << 10, 7},
	} {
		bs, n := ringGeometry(tt.buffer)
		if bs != tt.blockSize || n != tt.blocks {
			t.Errorf("ringGeometry(%d) = %d × %d, want %d × %d", tt.buffer, n, bs, tt.blocks, tt.blockSize)
		}
		if bs&(bs-1) != 0 || bs < 32<<10 || n < ringMinBlocks || n*bs < tt.buffer {
			t.Errorf("ringGeometry(%d) = %d × %d: not a ring of at least %d power-of-two blocks holding the buffer", tt.buffer, n, bs, ringMinBlocks)
		}
	}
}
