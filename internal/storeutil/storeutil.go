// Package storeutil holds what the file- and SQL-backed stores share: one
// background loop, one error wrapper naming the operation and the key, and
// one atomic file write. Standard library only; no backend imports another.
package storeutil

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"time"
)

// Loop runs fn every interval on its own goroutine until Stop is called.
// An error from fn goes to onError (which may be nil); the loop goes on.
type Loop struct {
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// StartLoop starts fn every interval. An interval <= 0 starts nothing and
// returns a Loop whose Stop returns at once.
func StartLoop(interval time.Duration, fn func(context.Context) error, onError func(error)) *Loop {
	l := &Loop{done: make(chan struct{})}
	if interval <= 0 {
		close(l.done)
		l.cancel = func() {}
		return l
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go func() {
		defer close(l.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := fn(ctx); err != nil && ctx.Err() == nil && onError != nil {
					onError(err)
				}
			}
		}
	}()
	return l
}

// Stop cancels the running fn's context and waits for the goroutine to
// return. It is safe to call more than once.
func (l *Loop) Stop() {
	l.once.Do(l.cancel)
	<-l.done
}

// Wrap returns err annotated with the backend, the operation and the key
// (shortened by [QuoteKey]), or nil for a nil err. errors.Is and errors.As
// see through it.
func Wrap(backend, op, key string, err error) error {
	if err == nil {
		return nil
	}
	if key == "" {
		return fmt.Errorf("%s: %s: %w", backend, op, err)
	}
	return fmt.Errorf("%s: %s %s: %w", backend, op, QuoteKey(key), err)
}

// NilInside reports whether v, an interface value that is not nil, holds
// a nil pointer, map, slice, func or chan: what a constructor that failed
// returns (a nil *memstore.Store, a nil *redis.Client), which a check
// against nil does not catch and whose first method call panics.
func NilInside(v any) bool {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return rv.IsNil()
	}
	return false
}

// QuoteKey quotes key for an error message, shortened to its first 64
// bytes and its length when it is longer, so that an error never carries a
// key of kilobytes.
func QuoteKey(key string) string {
	const max = 64
	if len(key) <= max {
		return strconv.Quote(key)
	}
	cut := max
	for cut > 0 && key[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return strconv.Quote(key[:cut]) + "… (" + strconv.Itoa(len(key)) + " bytes)"
}

// WriteFileAtomic writes path so that a reader, and the file system after a
// crash, sees either the old file or the whole new one: it writes a temp
// file in the same folder (named "."+base+".tmp-*", which callers' cleanup
// of leftovers can match), calls write on it, fsyncs it, renames it over
// path and fsyncs the folder. perm is the file's mode. On error the temp
// file is removed and path is untouched.
func WriteFileAtomic(path string, perm os.FileMode, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, TempPattern(base))
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if perm != 0o600 { // CreateTemp makes 0600 files
		if err = f.Chmod(perm); err != nil {
			return err
		}
	}
	if err = write(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// TempPattern is the os.CreateTemp pattern WriteFileAtomic uses for base.
func TempPattern(base string) string { return "." + base + ".tmp-*" }

// RemoveStaleTemps removes the temp files that WriteFileAtomic leaves for
// base in dir when a process dies mid-write, if they are older than
// minAge (0: any age; use a positive age when another process may be
// writing at the same moment). It returns the first error other than a
// file already gone.
func RemoveStaleTemps(dir, base string, minAge time.Duration) error {
	matches, err := filepath.Glob(filepath.Join(dir, filepath.FromSlash(globEscape(TempPattern(base)))))
	if err != nil {
		return err
	}
	var first error
	for _, m := range matches {
		if minAge > 0 {
			fi, err := os.Stat(m)
			if err != nil || time.Since(fi.ModTime()) < minAge {
				continue
			}
		}
		if err := os.Remove(m); err != nil && !os.IsNotExist(err) && first == nil {
			first = err
		}
	}
	return first
}

// globEscape escapes glob metacharacters in s except the final '*'.
func globEscape(s string) string {
	out := make([]byte, 0, len(s)+4)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c == '*' && i != len(s)-1) || c == '?' || c == '[' || c == '\\' {
			out = append(out, '\\')
		}
		out = append(out, c)
	}
	return string(out)
}
