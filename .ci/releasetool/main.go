// Command releasetool builds a module proxy in a folder (GOPROXY=file://DIR)
// that serves every module of the repository's working tree at one version,
// as if each had been tagged: the core as vX.Y.Z, a satellite in folder d as
// d/vX.Y.Z. The release check (.ci/release) builds a consumer module against
// it, with GOWORK=off, as a user would after the tags are pushed.
//
// Usage:
//
//	releasetool proxy -repo . -version v0.1.0 -out DIR [-skip DIR,...]
//	releasetool modules -repo . [-skip DIR,...]
//
// -skip names the folders of modules that are never released (a module
// that only tests the repository, such as docs/snippets): like the modules
// in folders whose name starts with a dot, they keep their files out of
// the module that holds their folder, and are not served.
//
// A module's files are the files git tracks or would track (untracked files
// that .gitignore does not exclude) under its folder, minus the folders of
// nested modules: what the module zip of a tag would hold, plus work not yet
// committed. The zips are written with golang.org/x/mod/zip, which checks
// the rules the go command applies (file names, sizes, case collisions).
//
// It is a module of its own so that golang.org/x/mod is no dependency of
// the modules it releases.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	modzip "golang.org/x/mod/zip"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "proxy":
		err = proxyCmd(os.Args[2:])
	case "modules":
		err = modulesCmd(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "releasetool:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: releasetool proxy -repo DIR -version vX.Y.Z -out DIR\n       releasetool modules -repo DIR")
	os.Exit(2)
}

// mod is one module of the repository.
type mod struct {
	Dir  string // slash-separated, relative to the repository root; "." for the root
	Path string // module path
	Tag  string // the tag that releases version v: "v" or "dir/v"
	// Hidden marks a module in a folder whose name starts with a dot: a
	// tool of the repository, never released.
	Hidden bool
}

func modulesCmd(args []string) error {
	fs := flag.NewFlagSet("modules", flag.ExitOnError)
	repo := fs.String("repo", ".", "repository root")
	skip := fs.String("skip", "", "comma-separated folders of modules that are not released")
	fs.Parse(args)
	files, err := repoFiles(*repo)
	if err != nil {
		return err
	}
	mods, err := modules(*repo, files, "v0.0.0", *skip)
	if err != nil {
		return err
	}
	for _, m := range mods {
		if !m.Hidden {
			fmt.Printf("%s\t%s\n", m.Dir, m.Path)
		}
	}
	return nil
}

func proxyCmd(args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ExitOnError)
	repo := fs.String("repo", ".", "repository root")
	version := fs.String("version", "v0.1.0", "the version every module is served at")
	out := fs.String("out", "", "folder to write the proxy to (GOPROXY=file://DIR)")
	skip := fs.String("skip", "", "comma-separated folders of modules that are not released")
	fs.Parse(args)
	if *out == "" {
		return errors.New("proxy: -out is required")
	}
	if !semver.IsValid(*version) || semver.Canonical(*version) != *version {
		return fmt.Errorf("proxy: %q is not a canonical semantic version such as v0.1.0", *version)
	}
	files, err := repoFiles(*repo)
	if err != nil {
		return err
	}
	mods, err := modules(*repo, files, *version, *skip)
	if err != nil {
		return err
	}
	owner := map[string]string{} // file -> module folder that holds it
	for _, f := range files {
		owner[f] = ownerOf(f, mods)
	}
	for _, m := range mods {
		if m.Hidden {
			continue
		}
		var zf []modzip.File
		for _, f := range files {
			if owner[f] != m.Dir {
				continue
			}
			rel := f
			if m.Dir != "." {
				rel = strings.TrimPrefix(f, m.Dir+"/")
			}
			zf = append(zf, file{rel: rel, abs: filepath.Join(*repo, filepath.FromSlash(f))})
		}
		if err := writeVersion(*out, m, *version, zf, filepath.Join(*repo, filepath.FromSlash(m.Dir), "go.mod")); err != nil {
			return err
		}
		fmt.Printf("%s@%s (tag %s): %d files\n", m.Path, *version, m.Tag, len(zf))
	}
	return nil
}

// repoFiles lists the files of the working tree git would commit: tracked
// files that still exist and untracked files .gitignore does not exclude.
func repoFiles(repo string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files in %s: %v", repo, err)
	}
	seen := map[string]bool{}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f == "" || seen[f] {
			continue
		}
		seen[f] = true
		fi, err := os.Lstat(filepath.Join(repo, filepath.FromSlash(f)))
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the working tree, or a symbolic link
		}
		files = append(files, f)
	}
	sort.Strings(files)
	return files, nil
}

// modules returns the modules whose go.mod is among files. Those in
// folders whose name starts with a dot (tools of the repository itself,
// such as this one) or named in skip (comma-separated) are marked Hidden:
// they own their files but are not released.
func modules(repo string, files []string, version, skip string) ([]mod, error) {
	skipped := map[string]bool{}
	for _, d := range strings.Split(skip, ",") {
		if d != "" {
			skipped[path.Clean(d)] = true
		}
	}
	var mods []mod
	for _, f := range files {
		if path.Base(f) != "go.mod" {
			continue
		}
		dir := path.Dir(f)
		if hidden(dir) || skipped[dir] {
			mods = append(mods, mod{Dir: dir, Hidden: true})
			continue
		}
		data, err := os.ReadFile(filepath.Join(repo, filepath.FromSlash(f)))
		if err != nil {
			return nil, err
		}
		mf, err := modfile.ParseLax(f, data, nil)
		if err != nil {
			return nil, err
		}
		if mf.Module == nil {
			return nil, fmt.Errorf("%s has no module line", f)
		}
		tag := version
		if dir != "." {
			tag = dir + "/" + version
		}
		if len(mf.Replace) > 0 {
			return nil, fmt.Errorf("%s has replace directives; a release must resolve its requirements without them (use go.work for development)", f)
		}
		mods = append(mods, mod{Dir: dir, Path: mf.Module.Mod.Path, Tag: tag})
	}
	if len(mods) == 0 {
		return nil, errors.New("no go.mod found")
	}
	return mods, nil
}

func hidden(dir string) bool {
	for _, e := range strings.Split(dir, "/") {
		if strings.HasPrefix(e, ".") && e != "." {
			return true
		}
	}
	return false
}

// ownerOf returns the folder of the innermost module that holds f.
func ownerOf(f string, mods []mod) string {
	best := ""
	bestLen := -1
	for _, m := range mods {
		if m.Dir == "." {
			if bestLen < 0 {
				best, bestLen = ".", 0
			}
			continue
		}
		if strings.HasPrefix(f, m.Dir+"/") && len(m.Dir) > bestLen {
			best, bestLen = m.Dir, len(m.Dir)
		}
	}
	return best
}

// writeVersion writes the list, .info, .mod and .zip files of m@version
// into the proxy folder out, as the GOPROXY protocol lays them out.
func writeVersion(out string, m mod, version string, files []modzip.File, gomod string) error {
	esc, err := module.EscapePath(m.Path)
	if err != nil {
		return err
	}
	dir := filepath.Join(out, filepath.FromSlash(esc), "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mv := module.Version{Path: m.Path, Version: version}
	var zbuf bytes.Buffer
	if err := modzip.Create(&zbuf, mv, files); err != nil {
		return fmt.Errorf("zip of %s (folder %s): %v", m.Path, m.Dir, err)
	}
	gm, err := os.ReadFile(gomod)
	if err != nil {
		return err
	}
	info, _ := json.Marshal(struct {
		Version string
		Time    time.Time
		Origin  any `json:",omitempty"`
	}{Version: version, Time: time.Now().UTC().Truncate(time.Second)})
	for name, data := range map[string][]byte{
		"list":            []byte(version + "\n"),
		version + ".info": info,
		version + ".mod":  gm,
		version + ".zip":  zbuf.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// file is one file of a module zip.
type file struct{ rel, abs string }

func (f file) Path() string                 { return f.rel }
func (f file) Lstat() (os.FileInfo, error)  { return os.Lstat(f.abs) }
func (f file) Open() (io.ReadCloser, error) { return os.Open(f.abs) }
