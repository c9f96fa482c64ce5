package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := execute([]string{"version"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	got := out.String()
	for _, want := range []string{"vrrpdoctor ", "commit: ", runtime.Version()} {
		if !strings.Contains(got, want) {
			t.Errorf("version output %q lacks %q", got, want)
		}
	}
}

func TestUnknownCommandExitCode(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := execute([]string{"no-such-verb"}, nil, &out, &errOut); code == 0 {
		t.Fatalf("unknown command exited 0")
	}
	if !strings.Contains(errOut.String(), "no-such-verb") {
		t.Errorf("stderr %q does not name the unknown command", errOut.String())
	}
}
