package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMetricsScrape: after three hits, /metrics serves the session
// metrics under Prometheus names, without the users' names.
func TestMetricsScrape(t *testing.T) {
	a, err := newApp()
	if err != nil {
		t.Fatal(err)
	}
	defer a.close(context.Background())
	srv := httptest.NewServer(a.mux)
	defer srv.Close()
	for _, u := range []string{"alice", "alice", "bob"} {
		resp, err := http.Get(srv.URL + "/hit?user=" + u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/hit: %s", resp.Status)
		}
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`typedsession_operations_total{`,
		`typedsession_operation_duration_seconds_bucket{`,
		`typedsession_size_bytes_bucket{`,
		`typedsession_namespace="visits"`,
		`typedsession_operation="update"`,
		`typedsession_outcome="written"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in /metrics:\n%s", want, text)
		}
	}
	if line := grep(text, "typedsession_operations_total{"); !strings.HasSuffix(line, " 3") {
		t.Errorf("typedsession_operations_total: %q, want 3 updates", line)
	}
	if strings.Contains(text, "alice") || strings.Contains(text, "bob") {
		t.Errorf("a user's key reached the metrics:\n%s", text)
	}
}

func grep(text, prefix string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
