package sim

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/typedsession/session/migrate"
)

// Data is the session type of the simulation. Every write of an operation
// sets Tag to a token of its own, and an Update that changes the data
// also appends its token to Log, so a stored value names the write that
// made its data and every Update applied to it. The fields are in the
// order of their JSON names, as a migration step's map writes them.
type Data struct {
	Log []string `json:"log"`
	Tag string   `json:"tag"`
	// V2 is what version 2 added; it is always true (see Plan).
	V2 bool `json:"v2"`
}

// Plan is the simulation's migration plan: version 2 adds the member
// "v2", and its down function removes it, so that a Manager with
// WriteVersion 1 runs beside those of version 2.
func Plan() *migrate.Plan {
	return migrate.MustNew(migrate.RawReversible(1,
		func(doc map[string]any) error { doc["v2"] = true; return nil },
		func(doc map[string]any) error { delete(doc, "v2"); return nil }))
}

// Initial is the simulation's Config.Initial.
func Initial() Data { return Data{Log: []string{}, V2: true} }

// Value is what a stored value says about itself.
type Value struct {
	// ID is the value's write identity (its newest), or "raw:" and a
	// digest of the bytes for a value that is not an envelope; Base the
	// identity of the value it was built on ("" for none).
	ID, Base string
	Version  int
	Tag      string
	Log      []string
	// LogH is a digest of Log, PrevLogH of Log without its last token.
	LogH, PrevLogH uint64
	Damaged        bool
}

// Parse reads a stored value.
func Parse(b []byte) Value {
	var env struct {
		Version *int            `json:"typedsession"`
		Writes  []string        `json:"writes"`
		Data    json.RawMessage `json:"data"`
	}
	var d Data
	if json.Unmarshal(b, &env) != nil || env.Version == nil || len(env.Writes) == 0 || json.Unmarshal(env.Data, &d) != nil {
		h := fnv.New64a()
		h.Write(b)
		return Value{ID: fmt.Sprintf("raw:%016x", h.Sum64()), Damaged: true, Tag: "damaged"}
	}
	v := Value{ID: env.Writes[0], Version: *env.Version, Tag: d.Tag, Log: d.Log, LogH: logHash(d.Log)}
	if len(env.Writes) > 1 {
		v.Base = env.Writes[1]
	}
	if len(d.Log) > 0 {
		v.PrevLogH = logHash(d.Log[:len(d.Log)-1])
	} else {
		v.PrevLogH = logHash(nil)
	}
	return v
}

// Ident is Parse(b).ID, for Options.Ident.
func Ident(b []byte) string { return Parse(b).ID }

func logHash(log []string) uint64 {
	h := fnv.New64a()
	for _, t := range log {
		h.Write([]byte(t))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// Dup returns a token that Log holds twice, or "".
func (v Value) Dup() string {
	s := slices.Clone(v.Log)
	slices.Sort(s)
	for i := 1; i < len(s); i++ {
		if s[i] == s[i-1] {
			return s[i]
		}
	}
	return ""
}

func (v Value) String() string {
	if v.Damaged {
		return v.ID
	}
	return fmt.Sprintf("%s(v%d tag=%s log=%d)", v.ID, v.Version, v.Tag, len(v.Log))
}

// Forge is the simulation's Options.Forge: another process's write over
// cur, as a Manager of that process would make it (a new write identity
// on top of cur's, data with a tag of its own and cur's log), or damaged
// bytes: a truncated envelope, which Config.Quarantine moves aside.
func Forge(cur []byte, damaged bool, n uint64) []byte {
	id := fmt.Sprintf("F%011d", n)
	if damaged {
		return fmt.Appendf(nil, `{"typedsession":2,"writes":["%s"],"data":{"log":[],"tag":"D%d"`, id, n)
	}
	version, writes, log := 2, []string{id}, []string{}
	if cur != nil {
		if v := Parse(cur); !v.Damaged {
			version, log = v.Version, v.Log
			var env struct {
				Writes []string `json:"writes"`
			}
			if json.Unmarshal(cur, &env) == nil {
				writes = append(writes, env.Writes...)
			}
		}
	}
	writes = writes[:min(len(writes), 8)]
	ws, _ := json.Marshal(writes)
	ls, _ := json.Marshal(log)
	data := fmt.Sprintf(`{"log":%s,"tag":"F%d","v2":true}`, ls, n)
	if version == 1 {
		data = fmt.Sprintf(`{"log":%s,"tag":"F%d"}`, ls, n)
	}
	return fmt.Appendf(nil, `{"typedsession":%d,"writes":%s,"data":%s}`, version, ws, data)
}

// slotOf returns the slot of a store key of the simulation (namespace
// ns): "ns:s3" and "ns:s3.m7" are slot 3, and so is a quarantine key
// that ends in one of them; -1 for another key.
func slotOf(ns, key string) int {
	if i := strings.LastIndex(key, ns+":s"); i >= 0 {
		key = key[i+len(ns)+2:]
	} else {
		return -1
	}
	if i := strings.IndexByte(key, '.'); i >= 0 {
		key = key[:i]
	}
	n := 0
	for _, c := range key {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}
