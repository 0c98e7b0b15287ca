package format

import (
	"reflect"
	"testing"
	"time"
)

// benchTimes is a session with times outside interfaces, for which every
// AppendPayload walks the value for zone offsets with seconds.
type benchTimes struct {
	Name    string `json:"name"`
	Created time.Time
	Login   struct {
		Code    string    `json:"code"`
		Expires time.Time `json:"expires,omitzero"`
	} `json:"login"`
	Visits []struct {
		At   time.Time `json:"at"`
		Page string    `json:"page"`
	} `json:"visits"`
}

func BenchmarkAppendPayloadTimes(b *testing.B) {
	f := New(nil, reflect.TypeFor[benchTimes]())
	v := benchTimes{Name: "n", Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	v.Login.Code, v.Login.Expires = "123456", v.Created.Add(time.Hour)
	for i := range 8 {
		v.Visits = append(v.Visits, struct {
			At   time.Time `json:"at"`
			Page string    `json:"page"`
		}{v.Created.Add(time.Duration(i) * time.Minute), "/p"})
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.AppendPayload(buf[:0], &v); err != nil {
			b.Fatal(err)
		}
	}
}
