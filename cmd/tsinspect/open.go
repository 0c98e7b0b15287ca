package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx"
	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite" // SQLite driver "sqlite"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/filestore"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/redisstore"
	"github.com/typedsession/session/store/sqlstore"
)

// openOptions are the store options given on the command line.
type openOptions struct {
	Prefix string        // redisstore Options.Prefix
	Table  string        // sqlstore Options.Table
	Create bool          // create a missing table, folder or SQLite file (import)
	Wait   time.Duration // how long to wait for a server to answer
	// Warn hears what a store reports through its error hook: an entry
	// that a listing cannot name (a damaged file of a long key, a row under
	// a key no method can reach). Nil drops them.
	Warn func(error)
}

// warn passes err to Warn, if set.
func (o openOptions) warn(err error) {
	if o.Warn != nil {
		o.Warn(err)
	}
}

// target is an opened store.
type target struct {
	store.Store
	Kind     string // "redis", "redis-cluster", "postgres", "sqlite", "filestore", "memstore-snapshot"
	Where    string // what was opened, without a password
	ReadOnly string // why writes are refused, or "" when they are allowed
	closers  []func() error
}

// Close releases the store and its client.
func (t *target) Close() error {
	var errs []error
	for i := len(t.closers) - 1; i >= 0; i-- {
		errs = append(errs, t.closers[i]())
	}
	return errors.Join(errs...)
}

// writable returns an error when the target refuses writes.
func (t *target) writable() error {
	if t.ReadOnly != "" {
		return fmt.Errorf("%s %s is opened read-only: %s", t.Kind, t.Where, t.ReadOnly)
	}
	return nil
}

var (
	sqliteMagic   = []byte("SQLite format 3\x00")
	memstoreMagic = []byte("\x00typedsession-memstore")
)

// openStore opens the store named by loc: a URL (redis://, rediss://,
// redis-cluster://h1:p1,h2:p2, rediss-cluster://…, postgres://,
// postgresql://, sqlite://path, file://dir, memstore://path) or a path (a
// directory is a filestore, a file is told by its first bytes: SQLite or a
// memstore snapshot; with Create, a missing path ending in .db, .sqlite or
// .sqlite3 is a SQLite file to create, and any other missing path a
// filestore folder).
func openStore(ctx context.Context, loc string, o openOptions) (*target, error) {
	if o.Wait <= 0 {
		o.Wait = 5 * time.Second
	}
	if loc == "" {
		return nil, errors.New("no store given: pass --store URL or set TSINSPECT_STORE (redis://host:6379/0, postgres://…, sqlite://file.db, file://dir, a directory, a memstore snapshot file)")
	}
	scheme, rest, hasScheme := strings.Cut(loc, "://")
	if !hasScheme {
		return openPath(ctx, loc, o)
	}
	if o.Prefix != "" && scheme != "redis" && scheme != "rediss" && scheme != "redis-cluster" && scheme != "rediss-cluster" {
		return nil, fmt.Errorf("--prefix is the Redis key prefix (redisstore Options.Prefix); %s stores have none: use --namespace or a key prefix to filter", scheme)
	}
	if o.Table != "" && scheme != "postgres" && scheme != "postgresql" && scheme != "sqlite" {
		return nil, fmt.Errorf("--table applies to postgres:// and sqlite:// stores only")
	}
	switch scheme {
	case "redis", "rediss":
		return openRedis(ctx, loc, o)
	case "redis-cluster", "rediss-cluster":
		return openCluster(ctx, scheme, rest, o)
	case "postgres", "postgresql":
		return openSQL(ctx, "pgx", loc, "postgres", redact(loc), o)
	case "sqlite":
		return openSQLite(ctx, rest, o)
	case "file":
		return openFilestore(rest, o)
	case "memstore":
		return openSnapshot(rest)
	}
	return nil, fmt.Errorf("store %q: unknown scheme %q; use redis://, rediss://, redis-cluster://, postgres://, sqlite://, file:// or memstore://, or a path", redact(loc), scheme)
}

func openPath(ctx context.Context, path string, o openOptions) (*target, error) {
	if o.Prefix != "" {
		return nil, errors.New("--prefix is the Redis key prefix (redisstore Options.Prefix); a path names a store without one")
	}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".db", ".sqlite", ".sqlite3":
			return openSQLite(ctx, path, o)
		}
		if o.Create {
			if o.Table != "" {
				return nil, fmt.Errorf("--table applies to postgres:// and sqlite:// stores only; %q is missing and not named .db, .sqlite or .sqlite3, so --create makes it a filestore folder (use sqlite://%s for a SQLite file)", path, path)
			}
			return openFilestore(path, o)
		}
		return nil, fmt.Errorf("store %q: no such file or directory (a filestore folder, a SQLite file or a memstore snapshot; import --create creates a missing folder, or a SQLite file named .db, .sqlite or .sqlite3)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("store %q: %w", path, err)
	}
	if fi.IsDir() {
		if o.Table != "" {
			return nil, errors.New("--table applies to postgres:// and sqlite:// stores only")
		}
		return openFilestore(path, o)
	}
	head := make([]byte, 32)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("store %q: %w", path, err)
	}
	n, _ := io.ReadFull(f, head)
	f.Close()
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, sqliteMagic):
		return openSQLite(ctx, path, o)
	case bytes.HasPrefix(head, memstoreMagic), bytes.HasPrefix(bytes.TrimSpace(head), []byte("{")), bytes.HasPrefix(bytes.TrimSpace(head), []byte("[")):
		if o.Table != "" {
			return nil, errors.New("--table applies to postgres:// and sqlite:// stores only")
		}
		return openSnapshot(path)
	}
	return nil, fmt.Errorf("store %q: not a SQLite database, not a memstore snapshot and not a directory", path)
}

func redact(loc string) string {
	u, err := url.Parse(loc)
	if err != nil || u.User == nil {
		return loc
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// quiet is a go-redis logger that drops the client's own log lines (a
// failed dial): the inspector says what failed in its error.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func openRedis(ctx context.Context, loc string, o openOptions) (*target, error) {
	redis.SetLogger(quiet{})
	opts, err := redis.ParseURL(loc)
	if err != nil {
		return nil, fmt.Errorf("store %q: not a Redis URL: %w", redact(loc), err)
	}
	opts.ContextTimeoutEnabled = true
	opts.DialTimeout = o.Wait
	c := redis.NewClient(opts)
	if err := pingRedis(ctx, c, o.Wait); err != nil {
		c.Close()
		return nil, fmt.Errorf("Redis at %s does not answer: %w", opts.Addr, err)
	}
	return &target{Store: redisstore.New(c, redisstore.Options{Prefix: o.Prefix}), Kind: "redis", Where: redact(loc), closers: []func() error{c.Close}}, nil
}

func openCluster(ctx context.Context, scheme, rest string, o openOptions) (*target, error) {
	var user, pass string
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		user, pass, _ = strings.Cut(rest[:at], ":")
		rest = rest[at+1:]
	}
	rest, _, _ = strings.Cut(rest, "/")
	var addrs []string
	for _, a := range strings.Split(rest, ",") {
		if a = strings.TrimSpace(a); a != "" {
			if !strings.Contains(a, ":") {
				a += ":6379"
			}
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("store %s://…: give the cluster's seed nodes, as %s://host1:port1,host2:port2", scheme, scheme)
	}
	opts := &redis.ClusterOptions{Addrs: addrs, Username: user, Password: pass, ContextTimeoutEnabled: true, DialTimeout: o.Wait}
	if scheme == "rediss-cluster" {
		opts.TLSConfig = tlsConfig()
	}
	redis.SetLogger(quiet{})
	c := redis.NewClusterClient(opts)
	if err := pingRedis(ctx, c, o.Wait); err != nil {
		c.Close()
		return nil, fmt.Errorf("Redis Cluster at %s does not answer: %w", strings.Join(addrs, ","), err)
	}
	return &target{Store: redisstore.New(c, redisstore.Options{Prefix: o.Prefix}), Kind: "redis-cluster", Where: strings.Join(addrs, ","), closers: []func() error{c.Close}}, nil
}

func pingRedis(ctx context.Context, c redis.UniversalClient, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	return c.Ping(ctx).Err()
}

func openSQLite(ctx context.Context, path string, o openOptions) (*target, error) {
	if path == "" {
		return nil, errors.New("store sqlite://: give the database file, as sqlite://path/to/file.db")
	}
	if _, err := os.Stat(path); err != nil {
		if !errors.Is(err, os.ErrNotExist) || !o.Create {
			return nil, fmt.Errorf("SQLite file %q: %w", path, err)
		}
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)"
	return openSQL(ctx, "sqlite", dsn, "sqlite", path, o)
}

func openSQL(ctx context.Context, driver, dsn, kind, where string, o openOptions) (*target, error) {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, where, err)
	}
	if driver == "sqlite" {
		db.SetMaxOpenConns(1)
	}
	pctx, cancel := context.WithTimeout(ctx, o.Wait)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot connect to %s at %s: %w", kind, where, err)
	}
	st, err := sqlstore.NewContext(pctx, db, sqlstore.Options{Table: o.Table, SkipCreate: !o.Create, CleanupInterval: -1, OnError: o.warn})
	if err != nil {
		db.Close()
		if !o.Create {
			return nil, fmt.Errorf("%s %s: %w (tsinspect creates a table only with import --create)", kind, where, err)
		}
		return nil, fmt.Errorf("%s %s: %w", kind, where, err)
	}
	return &target{Store: st, Kind: kind, Where: where, closers: []func() error{db.Close, st.Close}}, nil
}

func openFilestore(dir string, o openOptions) (*target, error) {
	if dir == "" {
		return nil, errors.New("store file://: give the folder, as file:///var/lib/bot/sessions")
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist) && o.Create:
	case err != nil:
		return nil, fmt.Errorf("filestore %q: %w", dir, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("filestore %q: not a directory", dir)
	}
	st, err := filestore.New(dir, filestore.Options{CleanupInterval: -1, OnError: o.warn})
	if err != nil {
		return nil, fmt.Errorf("filestore %q: %w", dir, err)
	}
	return &target{Store: st, Kind: "filestore", Where: dir, closers: []func() error{st.Close}}, nil
}

// openSnapshot loads a memstore snapshot read-only: the file is copied to a
// temporary folder and memstore.New restores the copy, so that neither the
// restore nor the store's final snapshot at Close touches the file the
// running app owns (which would overwrite any edit at its next backup
// anyway).
func openSnapshot(path string) (*target, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("memstore snapshot %q: %w", path, err)
	}
	defer src.Close()
	tmp, err := os.MkdirTemp("", "tsinspect-snapshot-")
	if err != nil {
		return nil, err
	}
	cp := filepath.Join(tmp, "snapshot")
	dst, err := os.Create(cp)
	if err == nil {
		_, err = io.Copy(dst, src)
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("memstore snapshot %q: copying it: %w", path, err)
	}
	st, err := memstore.New(memstore.Options{BackupPath: cp, BackupInterval: -1, CleanupInterval: -1, OnError: func(error) {}})
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("memstore snapshot %q: %w", path, err)
	}
	return &target{
		Store: st, Kind: "memstore-snapshot", Where: path,
		ReadOnly: "a running app would overwrite any edit at its next backup; stop it and edit its store through the app instead",
		closers:  []func() error{func() error { st.Close(); return os.RemoveAll(tmp) }},
	}, nil
}
