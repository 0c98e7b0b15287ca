package snippets

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// repoRoot is the repository, seen from this module's folder.
const repoRoot = "../.."

// TestSnippets type-checks every ```go block of README.md and docs/*.md in
// one go vet (see the package documentation for how).
func TestSnippets(t *testing.T) {
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append([]string{filepath.Join(repoRoot, "README.md")}, docs...)
	var blocks []block
	for _, path := range docs {
		bs, err := extract(path)
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, bs...)
	}
	if len(blocks) < 10 {
		t.Fatalf("found %d Go snippets in %v; the extractor lost some", len(blocks), docs)
	}
	check(t, blocks)
}

// TestBrokenSnippetFails makes sure that the check can fail: a snippet
// that uses an undefined name fails the build, and the error names the
// Markdown file and line.
func TestBrokenSnippetFails(t *testing.T) {
	md := filepath.Join(t.TempDir(), "broken.md")
	doc := "# Broken\n\nText.\n\n```go\nfmt.Println(undefinedName)\n```\n"
	if err := os.WriteFile(md, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	blocks, err := extract(md)
	if err != nil || len(blocks) != 1 {
		t.Fatalf("extract = %v, %v; want one block", blocks, err)
	}
	out, _, err := generateAndBuild(t, blocks)
	if err == nil {
		t.Fatal("a snippet with an undefined name compiled")
	}
	if want := "broken.md:6"; !strings.Contains(out, want) || !strings.Contains(out, "undefinedName") {
		t.Errorf("build output does not point at %s:\n%s", want, out)
	}
}

// block is one ```go block of a Markdown file.
type block struct {
	path  string // the Markdown file, absolute
	line  int    // line of the block's first line of code
	code  string // the code, its fence's indentation removed
	needs string // "pkg.Func" or "pkg.Type.Method" that must exist, or ""
	skip  string // why the block is skipped for good, or ""
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.path, b.line) }

var (
	fenceRE  = regexp.MustCompile("^([ \t]*)```go[ \t]*$")
	markerRE = regexp.MustCompile(`^\s*<!--\s*snippet:\s*(needs|skip)\s+(.*?)\s*-->\s*$`)
)

// extract returns the ```go blocks of the Markdown file at path, with the
// marker comment on the line before each, if any.
func extract(path string) ([]block, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, err
	}
	var (
		blocks []block
		cur    *block
		indent string
		prev   string // the last line before the fence that was not blank
		code   strings.Builder
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if cur != nil {
			if strings.TrimSpace(line) == "```" {
				cur.code = code.String()
				blocks = append(blocks, *cur)
				cur = nil
				continue
			}
			code.WriteString(strings.TrimPrefix(line, indent))
			code.WriteByte('\n')
			continue
		}
		if m := fenceRE.FindStringSubmatch(line); m != nil {
			cur = &block{path: abs, line: n + 1}
			indent = m[1]
			code.Reset()
			if mm := markerRE.FindStringSubmatch(prev); mm != nil {
				if mm[1] == "needs" {
					cur.needs = mm[2]
				} else {
					cur.skip = mm[2]
				}
			}
		}
		if strings.TrimSpace(line) != "" {
			prev = line
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("%s: a ```go block is not closed", cur)
	}
	return blocks, sc.Err()
}

// check type-checks blocks, failing t with the errors.
func check(t *testing.T, blocks []block) {
	t.Helper()
	start := time.Now()
	out, n, err := generateAndBuild(t, blocks)
	if err != nil {
		t.Fatalf("snippets do not compile (fix the Markdown at the positions below):\n%s", out)
	}
	t.Logf("%d of %d snippets checked in %v", n, len(blocks), time.Since(start).Round(time.Millisecond))
}

// generateAndBuild writes each block as a package of a temporary copy of
// this module and runs one go vet over them all. It returns vet's output
// and the number of blocks checked (the others were skipped).
func generateAndBuild(t *testing.T, blocks []block) (string, int, error) {
	t.Helper()
	names := importTable(t)
	prelude := readPrelude(t)
	dir := t.TempDir()
	if keep := os.Getenv("SNIPPETS_DIR"); keep != "" {
		// Keep the generated module for a look: SNIPPETS_DIR=/tmp/s go test
		dir = keep
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyModule(t, dir)
	built := 0
	for i, b := range blocks {
		if b.skip != "" {
			t.Logf("%s: skipped: %s", b, b.skip)
			continue
		}
		if b.needs != "" {
			ok, err := exists(b.needs, names)
			if err != nil {
				t.Fatalf("%s: <!-- snippet: needs %s -->: %v", b, b.needs, err)
			}
			if !ok {
				t.Logf("%s: skipped until %s exists", b, b.needs)
				continue
			}
		}
		files, err := generate(b, names, prelude)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		pkg := filepath.Join(dir, fmt.Sprintf("s%03d", i))
		if err := os.MkdirAll(pkg, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, src := range files {
			if err := os.WriteFile(filepath.Join(pkg, name), src, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		built++
	}
	if built == 0 {
		return "", 0, nil
	}
	// go vet type-checks every package (and runs vet's checks) in one
	// command. go build would also compile each: every package that
	// instantiates session.Manager[T] compiles its methods again, about
	// 2 s of CPU per snippet.
	cmd := exec.Command("go", "vet", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	return string(out), built, err
}

// copyModule writes this module's go.mod into dir, with every module of
// the repository's go.work replaced by its folder (the snippets' module is
// built outside the workspace), and go.sum.
func copyModule(t *testing.T, dir string) {
	t.Helper()
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	work, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	use := regexp.MustCompile(`(?m)^\s*(\.(?:/\S*)?)\s*$`)
	modLine := regexp.MustCompile(`(?m)^module\s+(\S+)`)
	for _, m := range use.FindAllSubmatch(work, -1) {
		folder := filepath.Join(root, string(m[1]))
		gm, err := os.ReadFile(filepath.Join(folder, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		if path := modLine.FindSubmatch(gm); path != nil && string(path[1]) != "github.com/typedsession/session/docs/snippets" {
			mod = append(mod, []byte("\nreplace "+string(path[1])+" => "+folder+"\n")...)
		}
	}
	sum, err := os.ReadFile("go.sum")
	if err != nil {
		t.Fatal(err)
	}
	if ws, err := os.ReadFile(filepath.Join(root, "go.work.sum")); err == nil {
		sum = append(sum, ws...)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), mod, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
}

// importTable maps the package name of every package deps.go imports to
// its import path.
func importTable(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "deps.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"list", "-f", "{{.Name}} {{.ImportPath}}"}
	for _, spec := range f.Imports {
		p, _ := strconv.Unquote(spec.Path.Value)
		args = append(args, p)
	}
	cmd := exec.Command("go", args...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list of deps.go's imports: %v", err)
	}
	names := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, path, _ := strings.Cut(line, " ")
		if prev, dup := names[name]; dup {
			t.Fatalf("deps.go imports two packages named %s (%s, %s); a snippet could not tell them apart", name, prev, path)
		}
		names[name] = path
	}
	return names
}

// readPrelude returns prelude.go's declarations, without its package
// clause and imports.
func readPrelude(t *testing.T) []ast.Decl {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "prelude.go", nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var decls []ast.Decl
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.IMPORT {
			continue
		}
		decls = append(decls, d)
	}
	return decls
}

// generate returns the files of the package that compiles b.
func generate(b block, names map[string]string, prelude []ast.Decl) (map[string][]byte, error) {
	directive := fmt.Sprintf("//line %s:%d\n", b.path, b.line)
	fset := token.NewFileSet()
	// A whole file, compiled as it is.
	if f, err := parser.ParseFile(fset, "", b.code, parser.PackageClauseOnly); err == nil && f.Name != nil {
		return map[string][]byte{"snippet.go": []byte(directive + b.code)}, nil
	}
	// Declarations, at the top level.
	src := "package snippet\n\n" + directive + b.code
	f, declErr := parser.ParseFile(fset, "", src, 0)
	if declErr == nil {
		declared := map[string]bool{}
		for name := range f.Scope.Objects {
			declared[name] = true
		}
		return withPrelude(names, prelude, declared, src, f)
	}
	// Statements, in a function body.
	src = "package snippet\n\nfunc _() {\n" + directive + b.code
	f, err := parser.ParseFile(fset, "", src+"}\n", 0)
	if err != nil {
		return nil, fmt.Errorf("neither declarations nor statements: %v", declErr)
	}
	body := f.Decls[0].(*ast.FuncDecl).Body
	var uses []string
	for _, name := range declaredIn(body) {
		uses = append(uses, "_ = "+name)
	}
	if len(uses) > 0 {
		src += "\t" + strings.Join(uses, "; ") + " // the snippet need not use all it declares\n"
	}
	src += "}\n"
	if f, err = parser.ParseFile(fset, "", src, 0); err != nil {
		return nil, err
	}
	return withPrelude(names, prelude, nil, src, f)
}

// withPrelude returns the fragment file (f, parsed from src) with its
// imports, and the prelude's declarations that the fragment does not
// declare, with theirs.
func withPrelude(names map[string]string, prelude []ast.Decl, declared map[string]bool, src string, f *ast.File) (map[string][]byte, error) {
	snippet := addImports(src, f.Unresolved, names)
	pf := &ast.File{Name: ast.NewIdent("snippet")}
	for _, d := range prelude {
		if d := without(d, declared); d != nil {
			pf.Decls = append(pf.Decls, d)
		}
	}
	var buf bytes.Buffer
	if err := format.Node(&buf, token.NewFileSet(), pf); err != nil {
		return nil, err
	}
	// Parse the printed prelude again to learn which packages it names.
	pfile, err := parser.ParseFile(token.NewFileSet(), "", buf.Bytes(), 0)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		"snippet.go": []byte(snippet),
		"prelude.go": []byte(addImports(buf.String(), pfile.Unresolved, names)),
	}, nil
}

// addImports inserts, after the package clause of src, the imports of the
// packages among unresolved that the table knows.
func addImports(src string, unresolved []*ast.Ident, names map[string]string) string {
	need := map[string]bool{}
	for _, id := range unresolved {
		if p, ok := names[id.Name]; ok {
			need[p] = true
		}
	}
	if len(need) == 0 {
		return src
	}
	paths := make([]string, 0, len(need))
	for p := range need {
		paths = append(paths, strconv.Quote(p))
	}
	sort.Strings(paths)
	clause, rest, _ := strings.Cut(src, "\n")
	return clause + "\n\nimport (\n\t" + strings.Join(paths, "\n\t") + "\n)\n" + rest
}

// without returns d minus the specs that declare a name in declared, or
// nil when nothing is left.
func without(d ast.Decl, declared map[string]bool) ast.Decl {
	switch d := d.(type) {
	case *ast.FuncDecl:
		if d.Recv == nil && declared[d.Name.Name] {
			return nil
		}
		return d
	case *ast.GenDecl:
		var specs []ast.Spec
		for _, s := range d.Specs {
			switch s := s.(type) {
			case *ast.TypeSpec:
				if declared[s.Name.Name] {
					continue
				}
			case *ast.ValueSpec:
				keep := false
				for _, n := range s.Names {
					keep = keep || !declared[n.Name]
				}
				if !keep {
					continue
				}
			}
			specs = append(specs, s)
		}
		if len(specs) == 0 {
			return nil
		}
		g := *d
		g.Specs = specs
		if len(specs) == 1 {
			g.Lparen = token.NoPos // print as one declaration
		}
		return &g
	}
	return d
}

// declaredIn returns the names that the statements of body declare at its
// top level (:= and var), "_" excluded.
func declaredIn(body *ast.BlockStmt) []string {
	var names []string
	seen := map[string]bool{}
	add := func(id *ast.Ident) {
		if id.Name != "_" && !seen[id.Name] {
			seen[id.Name] = true
			names = append(names, id.Name)
		}
	}
	for _, s := range body.List {
		switch s := s.(type) {
		case *ast.AssignStmt:
			if s.Tok == token.DEFINE {
				for _, e := range s.Lhs {
					if id, ok := e.(*ast.Ident); ok {
						add(id)
					}
				}
			}
		case *ast.DeclStmt:
			if g, ok := s.Decl.(*ast.GenDecl); ok && g.Tok == token.VAR {
				for _, spec := range g.Specs {
					for _, id := range spec.(*ast.ValueSpec).Names {
						add(id)
					}
				}
			}
		}
	}
	return names
}

// exists reports whether what ("pkg.Func" or "pkg.Type.Method") is
// declared in the repository's source of the package deps.go knows as pkg.
func exists(what string, names map[string]string) (bool, error) {
	parts := strings.Split(what, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return false, fmt.Errorf("%q is not pkg.Func or pkg.Type.Method", what)
	}
	path, ok := names[parts[0]]
	const module = "github.com/typedsession/session"
	if !ok || (path != module && !strings.HasPrefix(path, module+"/")) {
		return false, fmt.Errorf("%s is not a package of this repository that deps.go imports", parts[0])
	}
	dir := filepath.Join(repoRoot, strings.TrimPrefix(strings.TrimPrefix(path, module), "/"))
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.SkipObjectResolution)
	if err != nil {
		return false, err
	}
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Name.Name != parts[len(parts)-1] {
					continue
				}
				if len(parts) == 2 && fd.Recv == nil {
					return true, nil
				}
				if len(parts) == 3 && fd.Recv != nil && recvType(fd.Recv.List[0].Type) == parts[1] {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// recvType returns the name of a receiver's type: T of T, *T, T[X], *T[X].
func recvType(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}
