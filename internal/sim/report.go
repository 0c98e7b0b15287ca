package sim

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Failed reports whether the run found a violation.
func (r *Result) Failed() bool { return len(r.Findings) > 0 }

// Figures is one line of what the run did.
func (r *Result) Figures() string {
	perKey := ""
	if r.PerKey > 0 {
		perKey = fmt.Sprintf(" (%d key by key at the end)", r.PerKey)
	}
	return fmt.Sprintf("seed %d [%s, TTL %v]: %d operations, %d changes behind the managers' back, %d histories checked%s, %d store calls, %d faults injected (%d restarts), %d handoffs, %v (check %v)",
		r.Config.Seed, r.Config.Caps, r.Config.TTL, r.Ops, r.Env, r.Parts, perKey, r.Stats.Calls, r.Stats.Injected(), r.Stats.Restarts, r.Handoffs,
		r.Took.Round(time.Millisecond), r.Check.Round(time.Millisecond))
}

// FaultCounts lists the faults injected by kind.
func (r *Result) FaultCounts() string {
	var parts []string
	for f := Fault(1); f < numFaults; f++ {
		if n := r.Stats.Faults[f]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", f, n))
		}
	}
	return strings.Join(parts, ", ")
}

// Report describes the findings, one per kind with its shortened
// history, and how to run the seed again (rerun, a command).
func (r *Result) Report(rerun string) string {
	var b strings.Builder
	byKind := map[string][]Finding{}
	var kinds []string
	for _, f := range r.Findings {
		if byKind[f.Kind] == nil {
			kinds = append(kinds, f.Kind)
		}
		byKind[f.Kind] = append(byKind[f.Kind], f)
	}
	sort.Strings(kinds)
	fmt.Fprintf(&b, "simulation %s\n  found %d violations of the contract:", r.Figures(), len(r.Findings))
	for _, k := range kinds {
		fmt.Fprintf(&b, " %s %d;", k, len(byKind[k]))
	}
	b.WriteString("\n")
	for _, k := range kinds {
		f := byKind[k][0]
		fmt.Fprintf(&b, "  %s (first of %d), slot %d: %s\n", k, len(byKind[k]), f.Slot, f.Detail)
		if f.History != "" {
			b.WriteString(f.History)
		}
	}
	fmt.Fprintf(&b, "  faults injected: %s\n  run this seed again: %s\n", r.FaultCounts(), rerun)
	return b.String()
}
