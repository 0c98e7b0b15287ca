package main

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/format"
	"github.com/typedsession/session/store"
)

// Status is what the inspector makes of a stored value.
type Status string

// The statuses of a value.
const (
	StatusOK          Status = "ok"          // an envelope (JSON or binary)
	StatusV0          Status = "v0"          // JSON without an envelope: version 0
	StatusCorrupt     Status = "corrupt"     // an envelope that breaks the rules, or a value the store cannot read back
	StatusNotEnvelope Status = "foreign"     // not a typedsession value: neither JSON nor a binary envelope (another program's data, or a binary codec's version 0)
	StatusQuarantined Status = "quarantined" // moved aside by Config.Quarantine
)

// info describes one stored value, without keeping the value.
type info struct {
	Key      string
	Size     int
	TTL      time.Duration // NoExpiry, or the time left; meaningful if TTLKnown
	TTLKnown bool
	Status   Status
	Env      format.Envelope // Payload shares the value
	Binary   bool            // the envelope is the binary frame
	Err      error           // why the value is corrupt
}

// describe decodes raw (the value under key) with format.Decode, reading
// it only.
func describe(key string, raw []byte) info {
	in := info{Key: key, Size: len(raw)}
	in.Binary = bytes.HasPrefix(raw, []byte("\x00TS"))
	e, err := format.Decode(raw, !in.Binary)
	if err == nil && !in.Binary {
		err = format.Check(raw, &e)
	}
	switch {
	case err != nil && !in.Binary && !jsonLike(raw):
		in.Status, in.Err = StatusNotEnvelope, errors.New("not a typedsession value: neither JSON nor a binary envelope (another program's data, or version 0 data of a binary codec, which a migration step from 0 can adopt)")
	case err != nil:
		in.Status, in.Err = StatusCorrupt, err
	case e.Version == 0:
		in.Status, in.Env = StatusV0, e
	default:
		in.Status, in.Env = StatusOK, e
	}
	if strings.HasPrefix(key, session.QuarantinePrefix) {
		in.Status = StatusQuarantined
	}
	return in
}

// jsonLike reports whether raw looks like it was meant to be JSON: its
// first non-space byte opens an object, an array or a string.
func jsonLike(raw []byte) bool {
	t := bytes.TrimLeft(raw, " \t\r\n")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[' || t[0] == '"')
}

// versionText is the VERSION column.
func (in *info) versionText() string {
	switch in.Status {
	case StatusOK:
		return fmt.Sprint(in.Env.Version)
	case StatusV0:
		return "0"
	}
	return "-"
}

// ttlText is the TTL column: "none", the time left rounded to a second,
// or "unknown" where the store cannot tell.
func ttlText(d time.Duration, known bool) string {
	switch {
	case !known:
		return "unknown"
	case d == store.NoExpiry || d < 0:
		return "none"
	}
	return shortDuration(d)
}

// shortDuration prints d as 3d4h, 2h5m, 4m10s, 12s.
func shortDuration(d time.Duration) string {
	d = d.Truncate(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h, m, s := d/time.Hour, (d%time.Hour)/time.Minute, (d%time.Minute)/time.Second
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh%dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm%ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

// keyText prints a key as it is, or quoted when it holds a character a
// terminal would not show as itself (a newline, an escape), so that one
// key is always one line of output.
func keyText(k string) string {
	for _, r := range k {
		if !unicode.IsPrint(r) {
			return strconv.Quote(k)
		}
	}
	return k
}

// sizeText prints n bytes as 512 B, 1.5 KiB, 2.0 MiB.
func sizeText(n int64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
