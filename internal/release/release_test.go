package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// goreleaserInstall is how .ci/run installs goreleaser.
const goreleaserInstall = "go install github.com/goreleaser/goreleaser/v2@v2.15.1"

// need returns the path of program, or fails (CI=true) or skips the test
// with how to install it.
func need(t *testing.T, program, install string) string {
	t.Helper()
	if p, err := exec.LookPath(program); err == nil {
		return p
	}
	if program == "goreleaser" {
		// go install's target, which may not be on PATH.
		dirs := []string{os.Getenv("GOBIN")}
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath := strings.TrimSpace(string(out))
			dirs = append(dirs, filepath.Join(filepath.SplitList(gopath)[0], "bin"))
		}
		for _, dir := range dirs {
			if p := filepath.Join(dir, program); dir != "" && isExecutable(p) {
				return p
			}
		}
	}
	msg := program + " not found: " + install
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// repoRoot is the module root two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, ".goreleaser.yaml")); err != nil {
		t.Fatalf("no .goreleaser.yaml at the repository root: %v", err)
	}
	return root
}

// run runs a command in dir and fails the test with its output on error.
func run(ctx context.Context, t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %s: %v", name, strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out.String(), 60))
	}
	return out.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// artifact is an entry of goreleaser's dist/artifacts.json.
type artifact struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Goarch string `json:"goarch"`
	Goarm  string `json:"goarm"`
	Type   string `json:"type"`
}

// TestGoreleaserSnapshot runs `goreleaser check` and a snapshot release
// (nothing published) in a clone of the repository's HEAD, so the working
// tree gets no dist/ and no generated files, then checks the binaries,
// archives, deb and rpm packages and checksums it made.
func TestGoreleaserSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three release binaries and six packages; skipped in -short mode")
	}
	goreleaser := need(t, "goreleaser", goreleaserInstall+" (as .ci/run does)")
	git := need(t, "git", "install Debian package git")
	dpkgDeb := need(t, "dpkg-deb", "install Debian package dpkg")
	root := repoRoot(t)

	timeout := 15 * time.Minute
	if d, ok := t.Deadline(); ok && time.Until(d)-30*time.Second < timeout {
		timeout = time.Until(d) - 30*time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	run(ctx, t, root, git, "clone", "--quiet", root, src)
	head := strings.TrimSpace(run(ctx, t, src, git, "rev-parse", "HEAD"))
	t.Logf("goreleaser %s on commit %s", goreleaserVersion(goreleaser), head)

	run(ctx, t, src, goreleaser, "check")
	run(ctx, t, src, goreleaser, "release", "--snapshot", "--clean", "--skip=publish")
	dist := filepath.Join(src, "dist")

	var meta struct {
		Version string `json:"version"`
		Commit  string `json:"commit"`
	}
	readJSON(t, filepath.Join(dist, "metadata.json"), &meta)
	if meta.Commit != head {
		t.Errorf("metadata commit %q, want HEAD %q", meta.Commit, head)
	}
	if !strings.Contains(meta.Version, "-next+"+head[:7]) {
		t.Errorf("snapshot version %q does not name the commit (want ...-next+%s)", meta.Version, head[:7])
	}
	var arts []artifact
	readJSON(t, filepath.Join(dist, "artifacts.json"), &arts)
	for i := range arts {
		if !filepath.IsAbs(arts[i].Path) { // relative to the project dir
			arts[i].Path = filepath.Join(src, arts[i].Path)
		}
	}

	want := expectedContents(t, src)
	for _, tg := range targets {
		bin := findArtifact(t, arts, "Binary", tg, "")
		if err := staticErr(bin.Path, tg); err != nil {
			t.Error(err)
		}
		binBytes := readFile(t, bin.Path)

		deb := findArtifact(t, arts, "Linux Package", tg, ".deb")
		checkDeb(ctx, t, dpkgDeb, deb.Path, tg, meta.Version, want, binBytes)

		rpm := findArtifact(t, arts, "Linux Package", tg, ".rpm")
		checkRPM(t, rpm.Path, tg, meta.Version, want, binBytes)

		arc := findArtifact(t, arts, "Archive", tg, ".tar.gz")
		checkArchive(t, arc.Path, binBytes)
	}

	amd64 := findArtifact(t, arts, "Binary", targets[0], "").Path
	out := run(ctx, t, src, amd64, "version")
	for _, w := range []string{"vrrpdoctor " + meta.Version + "\n", "commit: " + head + "\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("`vrrpdoctor version` printed %q, lacks %q", out, w)
		}
	}
	checkChecksums(t, dist, arts)
}

func goreleaserVersion(bin string) string {
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		return "(version unknown)"
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "mod" {
			return f[2]
		}
	}
	return "(version unknown)"
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	if err := json.Unmarshal(readFile(t, path), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func findArtifact(t *testing.T, arts []artifact, typ string, tg target, suffix string) artifact {
	t.Helper()
	var found []artifact
	for _, a := range arts {
		if a.Type == typ && a.Goarch == tg.goarch && a.Goarm == tg.goarm && strings.HasSuffix(a.Name, suffix) {
			found = append(found, a)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %q artifacts *%s for %s%s, want 1: %+v", len(found), typ, suffix, tg.goarch, tg.goarm, found)
	}
	return found[0]
}

// packagedFile is a file a package must hold: its content and mode.
type packagedFile struct {
	data []byte // nil: the binary of the package's architecture
	mode fs.FileMode
}

// expectedContents lists every file a deb or rpm must hold, from the clone
// and the files goreleaser's before hooks generated there. The zsh
// completion's directory differs by distribution and is filled in by the
// caller.
func expectedContents(t *testing.T, src string) map[string]packagedFile {
	t.Helper()
	gen := filepath.Join(src, ".gen")
	want := map[string]packagedFile{
		"/usr/bin/vrrpdoctor":                                  {nil, 0o755},
		"/usr/share/bash-completion/completions/vrrpdoctor":    {readFile(t, filepath.Join(gen, "completions", "vrrpdoctor.bash")), 0o644},
		"/usr/share/fish/vendor_completions.d/vrrpdoctor.fish": {readFile(t, filepath.Join(gen, "completions", "vrrpdoctor.fish")), 0o644},
		"ZSH/_vrrpdoctor":                                      {readFile(t, filepath.Join(gen, "completions", "_vrrpdoctor")), 0o644},
		"/usr/share/doc/vrrpdoctor/README.md":                  {readFile(t, filepath.Join(src, "README.md")), 0o644},
	}
	pages, _ := filepath.Glob(filepath.Join(gen, "man", "*.1.gz"))
	names := map[string]bool{}
	for _, p := range pages {
		names[filepath.Base(p)] = true
		want["/usr/share/man/man1/"+filepath.Base(p)] = packagedFile{readFile(t, p), 0o644}
	}
	for _, n := range []string{"vrrpdoctor.1.gz", "vrrpdoctor-analyze.1.gz", "vrrpdoctor-version.1.gz", "vrrpdoctor-completion-bash.1.gz"} {
		if !names[n] {
			t.Errorf("before hooks generated no %s (have %v)", n, sortedKeys(names))
		}
	}
	docs, _ := filepath.Glob(filepath.Join(src, "docs", "*.md"))
	docs = append(docs, filepath.Join(src, "docs", "prometheus-alerts.yml"))
	for _, d := range docs {
		want["/usr/share/doc/vrrpdoctor/docs/"+filepath.Base(d)] = packagedFile{readFile(t, d), 0o644}
	}
	if unit := filepath.Join(src, "cmd", "vrrpdoctor", "systemd", "vrrpdoctor.service"); fileExists(unit) {
		want["/usr/lib/systemd/system/vrrpdoctor.service"] = packagedFile{readFile(t, unit), 0o644}
	}
	return want
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// forPackager resolves the zsh placeholder of expectedContents.
func forPackager(want map[string]packagedFile, zshDir string) map[string]packagedFile {
	out := make(map[string]packagedFile, len(want))
	for k, v := range want {
		out[strings.Replace(k, "ZSH", zshDir, 1)] = v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkPackage compares the regular files of a package with want.
func checkPackage(t *testing.T, pkg string, got map[string][]byte, modes map[string]fs.FileMode, want map[string]packagedFile, bin []byte) {
	t.Helper()
	for _, p := range sortedKeys(want) {
		w := want[p]
		data, ok := got[p]
		if !ok {
			t.Errorf("%s: no %s", pkg, p)
			continue
		}
		wantData := w.data
		if wantData == nil {
			wantData = bin
		}
		if !bytes.Equal(data, wantData) {
			t.Errorf("%s: %s (%d bytes) differs from its source (%d bytes)", pkg, p, len(data), len(wantData))
		}
		if modes[p] != w.mode {
			t.Errorf("%s: %s has mode %v, want %v", pkg, p, modes[p], w.mode)
		}
		if strings.HasPrefix(p, "/usr/share/man/man1/") {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Errorf("%s: %s is not gzip: %v", pkg, p, err)
				continue
			}
			page, err := io.ReadAll(zr)
			if err != nil || !bytes.HasPrefix(bytes.TrimPrefix(page, []byte(".nh\n")), []byte(".TH ")) {
				t.Errorf("%s: %s is not a man page (%v): %.60q", pkg, p, err, page)
			}
		}
	}
	for _, p := range sortedKeys(got) {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected file %s", pkg, p)
		}
	}
}

func checkDeb(ctx context.Context, t *testing.T, dpkgDeb, path string, tg target, version string, want map[string]packagedFile, bin []byte) {
	t.Helper()
	name := filepath.Base(path)
	fields := run(ctx, t, filepath.Dir(path), dpkgDeb, "--field", path, "Package", "Version", "Architecture")
	wantFields := "Package: vrrpdoctor\nVersion: " + strings.Replace(version, "-", "~", 1) + "\nArchitecture: " + tg.debArch + "\n"
	if fields != wantFields {
		t.Errorf("%s: control fields\n%s\nwant\n%s", name, fields, wantFields)
	}
	// The listing as dpkg-deb shows it, to name the paths in the report.
	listing := run(ctx, t, filepath.Dir(path), dpkgDeb, "--contents", path)
	t.Logf("%s:\n%s", name, listing)

	// Read the data archive through dpkg-deb and compare every file.
	cmd := exec.CommandContext(ctx, dpkgDeb, "--fsys-tarfile", path)
	tarData, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: dpkg-deb --fsys-tarfile: %v", name, err)
	}
	files := map[string][]byte{}
	modes := map[string]fs.FileMode{}
	tr := tar.NewReader(bytes.NewReader(tarData))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: data archive: %v", name, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s: %s: %v", name, h.Name, err)
		}
		p := strings.TrimPrefix(h.Name, ".")
		files[p] = b
		modes[p] = fs.FileMode(h.Mode) & fs.ModePerm
		if h.Uname != "root" || h.Gname != "root" {
			t.Errorf("%s: %s owned by %s:%s, want root:root", name, p, h.Uname, h.Gname)
		}
	}
	checkPackage(t, name, files, modes, forPackager(want, "/usr/share/zsh/vendor-completions"), bin)
}

func checkRPM(t *testing.T, path string, tg target, version string, want map[string]packagedFile, bin []byte) {
	t.Helper()
	name := filepath.Base(path)
	p, err := readRPM(readFile(t, path))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	wantVersion := strings.Replace(version, "-", "~", 1)
	if p.Name != "vrrpdoctor" || p.Version != wantVersion || p.Release != "1" || p.Arch != tg.rpmArch {
		t.Errorf("%s: %s %s-%s %s, want vrrpdoctor %s-1 %s", name, p.Name, p.Version, p.Release, p.Arch, wantVersion, tg.rpmArch)
	}
	payload, err := p.payloadFiles()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	// The header's file list must describe the payload.
	modes := map[string]fs.FileMode{}
	var listing strings.Builder
	for _, f := range p.Files {
		if !f.Mode.IsRegular() {
			continue
		}
		listing.WriteString(f.Mode.String() + " " + f.Path + "\n")
		modes[f.Path] = f.Mode.Perm()
		data, ok := payload[f.Path]
		if !ok {
			t.Errorf("%s: header lists %s, payload lacks it", name, f.Path)
		} else if int64(len(data)) != f.Size {
			t.Errorf("%s: header gives %s %d bytes, payload has %d", name, f.Path, f.Size, len(data))
		}
	}
	t.Logf("%s:\n%s", name, listing.String())
	for p := range payload {
		if _, ok := modes[p]; !ok {
			t.Errorf("%s: payload has %s, header does not list it", name, p)
		}
	}
	checkPackage(t, name, payload, modes, forPackager(want, "/usr/share/zsh/site-functions"), bin)
}

// checkArchive checks the tar.gz holds the binary, README, man pages and
// completions.
func checkArchive(t *testing.T, path string, bin []byte) {
	t.Helper()
	name := filepath.Base(path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	have := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s: %s: %v", name, h.Name, err)
		}
		have[h.Name] = b
	}
	if !bytes.Equal(have["vrrpdoctor"], bin) {
		t.Errorf("%s: vrrpdoctor missing or not the built binary", name)
	}
	for _, n := range []string{"README.md", "completions/vrrpdoctor.bash", "completions/_vrrpdoctor", "completions/vrrpdoctor.fish", "manpages/vrrpdoctor.1.gz"} {
		if len(have[n]) == 0 {
			t.Errorf("%s: no %s (has %v)", name, n, sortedKeys(have))
		}
	}
}

// checkChecksums checks checksums.txt covers every archive and package
// with its real SHA-256.
func checkChecksums(t *testing.T, dist string, arts []artifact) {
	t.Helper()
	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(readFile(t, filepath.Join(dist, "checksums.txt")))), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("checksums.txt: bad line %q", line)
		}
		sums[f[1]] = f[0]
	}
	n := 0
	for _, a := range arts {
		if a.Type != "Archive" && a.Type != "Linux Package" {
			continue
		}
		n++
		sum := sha256.Sum256(readFile(t, a.Path))
		if got := sums[a.Name]; got != hex.EncodeToString(sum[:]) {
			t.Errorf("checksums.txt: %s: %q, file hashes to %x", a.Name, got, sum)
		}
	}
	if n != 3*len(targets) || len(sums) != n {
		t.Errorf("%d archives and packages, %d checksums; want %d of each", n, len(sums), 3*len(targets))
	}
}
