package session_test

// The simulation's quick run (issue 22, "check whole histories"): random
// concurrent operations of several Managers of one namespace on a
// fault-injecting memstore, each history checked for linearizability
// against the model of the contract (internal/sim). Seeded: a seed injects
// the same faults into the same calls whatever the interleaving.
//
//	go test -race -run 'TestSimulation$' .                      # the CI run: seeds 1..12
//	go test -race -run 'TestSimulation$' . -sim.seed=7           # one seed again
//	go test -race -run 'TestSimulation$' . -sim.seeds=50         # more seeds (or SIM_SEEDS=50)
//	go test -run 'TestSimulation$' . -sim.faults=lost-reply:0.05  # other fault rates
//	SIM_HISTORIES=/tmp go test -run 'TestSimulation$' .           # also write each failing history whole

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/typedsession/session/internal/sim"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

var (
	simSeed    = flag.Uint64("sim.seed", 0, "run the simulation with this seed only")
	simSeeds   = flag.Int("sim.seeds", 0, "run the simulation with seeds 1..n (default 12; env SIM_SEEDS)")
	simClients = flag.Int("sim.clients", 8, "concurrent clients of the simulation")
	simOps     = flag.Int("sim.ops", 60, "operations per client of the simulation")
	simDisable = flag.String("sim.disable", "", "kinds of operation the simulation's clients do not run, comma-separated: load, save, save-changed, save-unchanged, update, delete, destroy, move, migrate-all")
	simFaults  = flag.String("sim.faults", "", "fault rates of the simulation, name:rate,... (names as sim.Fault prints them; default sim.DefaultRates)")
	simCheck   = flag.Duration("sim.check", 0, "bound of each linearizability check (default sim.CheckTimeout)")
)

// simTTLs are the Config.TTL values the seeds go through: none, an hour,
// and one the store clamps (issue 22's fifth example).
var simTTLs = []time.Duration{0, time.Hour, 200 * 365 * 24 * time.Hour}

func TestSimulation(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	if n, _ := strconv.Atoi(os.Getenv("SIM_SEEDS")); n > 0 && *simSeeds == 0 {
		*simSeeds = n
	}
	if *simSeeds > 0 {
		seeds = seeds[:0]
		for i := 1; i <= *simSeeds; i++ {
			seeds = append(seeds, uint64(i))
		}
	}
	if *simSeed != 0 {
		seeds = []uint64{*simSeed}
	}
	if *simCheck > 0 {
		old := sim.CheckTimeout
		sim.CheckTimeout = *simCheck
		t.Cleanup(func() { sim.CheckTimeout = old })
	}
	rates, err := parseRates(*simFaults)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var ops, parts int
	for _, seed := range seeds {
		r := runSim(t, seed, rates)
		ops, parts = ops+r.Ops, parts+r.Parts
		t.Log(r.Figures())
		if r.Failed() {
			if dir := os.Getenv("SIM_HISTORIES"); dir != "" {
				for _, f := range r.Findings {
					if f.Kind == "linearizability" || f.Kind == "check-timeout" {
						path, err := f.WriteHistory(dir, seed)
						t.Logf("whole history: %s (%v)", path, err)
					}
				}
			}
			t.Error(r.Report(fmt.Sprintf("go test -race -run 'TestSimulation$' . -sim.seed=%d -sim.clients=%d -sim.ops=%d%s", seed, *simClients, *simOps, faultsFlag())))
		}
	}
	took := time.Since(start)
	t.Logf("%d seeds, %d operations, %d histories in %v: %.0f operations/s, %.1f histories/s", len(seeds), ops, parts, took.Round(time.Millisecond),
		float64(ops)/took.Seconds(), float64(parts)/took.Seconds())
}

func faultsFlag() string {
	if *simFaults == "" {
		return ""
	}
	return " -sim.faults=" + *simFaults
}

// runSim runs one seed on a memstore that persists to a snapshot file, so
// that a restart (Close and reopen) keeps what was written.
func runSim(t *testing.T, seed uint64, rates sim.Rates) *sim.Result {
	t.Helper()
	path := filepath.Join(t.TempDir(), "snapshot")
	open := func() (store.Store, error) {
		return memstore.New(memstore.Options{BackupPath: path, BackupInterval: -1, CleanupInterval: -1})
	}
	st, err := open()
	if err != nil {
		t.Fatal(err)
	}
	var cur store.Store = st
	t.Cleanup(func() { cur.(*memstore.Store).Close() })
	r, err := sim.Run(t.Context(), sim.Config{
		Seed:  seed,
		Store: st,
		Reopen: func(old store.Store) (store.Store, error) {
			if err := old.(*memstore.Store).Close(); err != nil {
				return nil, err
			}
			n, err := open()
			if err == nil {
				cur = n
			}
			return n, err
		},
		Caps:    sim.Profiles[seed%uint64(len(sim.Profiles))],
		TTL:     simTTLs[(seed+seed/uint64(len(sim.Profiles)))%uint64(len(simTTLs))],
		Clients: *simClients, Ops: *simOps, Slots: 4,
		Rates:   rates,
		Disable: strings.FieldsFunc(*simDisable, func(r rune) bool { return r == ',' }),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// parseRates reads -sim.faults: name:rate pairs over sim.DefaultRates.
func parseRates(s string) (sim.Rates, error) {
	r := sim.DefaultRates
	if s == "" {
		return r, nil
	}
	for _, kv := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(kv, ":")
		f, err := sim.ParseFault(name)
		if err != nil || !ok {
			return r, fmt.Errorf("-sim.faults %q: want name:rate pairs: %v", kv, err)
		}
		if r[f], err = strconv.ParseFloat(val, 64); err != nil {
			return r, fmt.Errorf("-sim.faults %q: %v", kv, err)
		}
	}
	return r, nil
}
